package integration

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// chainDepth is the depth of the chain of directories TestDiffAndCollectDeepChain plants:
// deeper than the descriptor limit the tool runs under (ulimit -n 1024) and
// than PATH_MAX many times over.
const chainDepth = 20000

// TestDiffAndCollectDeepChain plants a 20,000-deep chain of directories in a container and
// checks that, under `ulimit -n 1024`, both diff methods list every level and
// agree, and that collect gives a bag verify accepts.
func TestDiffAndCollectDeepChain(t *testing.T) {
	if testing.Short() {
		t.Skip("a 20,000-deep tree and a bag of about a gigabyte")
	}
	c := h.runContainer(t, "deep", "overlayfs")
	upper := h.upperDir(t, c)
	// Planted in the upper directory by descriptor: a shell would hit PATH_MAX.
	// Removed before the container is, whose snapshot removal would not cope.
	t.Cleanup(func() {
		if err := removeChain(upper); err != nil {
			t.Errorf("remove the chain: %v", err)
		}
	})
	if err := makeChain(upper, chainDepth); err != nil {
		t.Fatal(err)
	}
	limited := func(cmd *exec.Cmd) { // soft and hard: Go raises the soft limit to the hard one
		cmd.Args = append([]string{"sh", "-c", `ulimit -n 1024 && exec "$@"`, "sh"}, cmd.Args...)
		cmd.Path = "/bin/sh"
	}
	run := func(args ...string) string {
		t.Helper()
		r := h.cliWith(t, limited, append([]string{"--address", h.daemon.Address, "-n", h.daemon.Namespace}, args...)...)
		if r.code != 0 {
			t.Fatalf("ulimit -n 1024; ctrforensics %s: exit %d: %.500s", strings.Join(args, " "), r.code, r.stderr)
		}
		return r.stdout
	}
	t.Run("diff", func(t *testing.T) {
		fast := run("diff", "--method", "overlay", c.id)
		walk := run("diff", "--method", "walk", c.id)
		if fast != walk {
			t.Errorf("the methods differ: %d and %d bytes", len(fast), len(walk))
		}
		lines := strings.Split(strings.TrimSuffix(fast, "\n"), "\n")
		if len(lines) != chainDepth+1 || lines[0] != "A /deep" || lines[len(lines)-1] != "A /deep"+strings.Repeat("/d", chainDepth) {
			t.Errorf("%d lines, want %d from A /deep to the deepest level", len(lines), chainDepth+1)
		}
	})
	t.Run("collect", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "bag")
		run("collect", "-o", out, c.id)
		if v := h.mustCLI(t, "verify", out); !strings.Contains(v, "VALID") {
			t.Errorf("verify: %s", v)
		}
	})
}

const chainDirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// makeChain creates root/deep/d/d/... depth levels below deep, by descriptor.
func makeChain(root string, depth int) error {
	fd, err := unix.Open(root, chainDirFlags, 0)
	if err != nil {
		return err
	}
	name := "deep"
	for i := 0; i <= depth; i++ {
		if err := unix.Mkdirat(fd, name, 0o755); err != nil {
			unix.Close(fd)
			return err
		}
		next, err := unix.Openat(fd, name, chainDirFlags, 0)
		unix.Close(fd)
		if err != nil {
			return err
		}
		fd, name = next, "d"
	}
	return unix.Close(fd)
}

// removeChain removes root/deep and the chain below it one level at a time,
// keeping two directories open: the child is moved up, its parent removed.
func removeChain(root string) error {
	fd, err := unix.Open(root, chainDirFlags, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for {
		top, err := unix.Openat(fd, "deep", chainDirFlags, 0)
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		if err != nil {
			return err
		}
		err = unix.Renameat(top, "d", fd, "deep.next")
		unix.Close(top)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
		if err := unix.Unlinkat(fd, "deep", unix.AT_REMOVEDIR); err != nil {
			return err
		}
		if err == nil {
			if err := unix.Renameat(fd, "deep.next", fd, "deep"); err != nil && !errors.Is(err, unix.ENOENT) {
				return err
			}
		}
	}
}
