package mountutil

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// taskWithTmpfs starts a process in a mount namespace of its own with a
// tmpfs at dir holding a file and a symlink to the host's root, as a
// container's /dev/shm might, and returns its pid.
func taskWithTmpfs(t *testing.T, dir string) int {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespaces)")
	}
	script := `mount -t tmpfs tmpfs "$1" && echo secret > "$1/f" && ln -s / "$1/escape" && mkdir "$1/sub" && echo ready && exec sleep 600`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("task did not start: %q %v", buf, err)
	}
	return cmd.Process.Pid
}

func TestCloneTaskMount(t *testing.T) {
	dir := t.TempDir()
	pid := taskWithTmpfs(t, dir)
	d, err := CloneTaskMount(pid, dir, "tmpfs")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b, err := os.ReadFile(filepath.Join(d.Root(), "f"))
	if err != nil || string(b) != "secret\n" {
		t.Fatalf("read through the clone: %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(d.Root(), "new"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Fatalf("write through the clone: %v, want EROFS", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("the task's tmpfs is visible on the host at %s: %v", dir, entries)
	}
	if ok, _ := IsMountpoint(dir); ok {
		t.Fatal("the clone appeared in the host's mount table")
	}
	for _, tc := range []struct{ name, dest, fstype string }{
		{"symlink to the host root", filepath.Join(dir, "escape"), "tmpfs"},
		{"through a symlink", filepath.Join(dir, "escape", strings.TrimPrefix(dir, "/")), "tmpfs"},
		{"wrong type", dir, "ext4"},
		{"not a mount", filepath.Join(dir, "sub"), "tmpfs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := CloneTaskMount(pid, tc.dest, tc.fstype)
			if err == nil {
				d.Close()
			}
			if !errors.Is(err, ErrNotTheMount) {
				t.Fatalf("CloneTaskMount(%s, %s) = %v, want ErrNotTheMount", tc.dest, tc.fstype, err)
			}
		})
	}
}

func TestCloneReadOnlyKeepsAtimes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (open_tree)")
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Unix(1000, 0)
	if err := os.Chtimes(f, old, old); err != nil {
		t.Fatal(err)
	}
	d, err := CloneReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := os.ReadFile(filepath.Join(d.Root(), "f")); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(f, &st); err != nil {
		t.Fatal(err)
	}
	if st.Atim.Sec != 1000 {
		t.Fatalf("atime moved to %d reading through the clone", st.Atim.Sec)
	}
}
