package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMountNoSpecialHostileTree plants special files where covering and
// uncovering them is hardest: at the bottom of a directory chain whose path is
// longer than PATH_MAX (the cover can be mounted by descriptor but not
// unmounted by path), and under names the mount table escapes (space, newline,
// backslash). mount --no-special must hide them all, also when the
// descriptor limit is far below the chain's depth, and umount must remove
// every cover, the view and the lease, leaving the upper directory and the
// host as they were.
func TestMountNoSpecialHostileTree(t *testing.T) {
	c := h.runContainer(t, "no-special-hostile", "overlayfs")
	h.attack(t, c, `cd /tmp && mkfifo 'a b' "$(printf 'new\nline')" 'back\slash' && i=0 &&
while [ $i -lt 2040 ]; do mkdir d && cd d || exit 1; i=$((i+1)); done && mkfifo fifo`)
	upper := h.upperDir(t, c)
	time.Sleep(50 * time.Millisecond)
	before, host := captureTree(t, upper), captureHost(t)
	for _, nofile := range []string{"", "256"} {
		t.Run("nofile "+nofile, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "view")
			args := []string{"--address", h.daemon.Address, "-n", h.daemon.Namespace,
				"mount", "--state-dir", h.stateDir, "--no-special", c.id, dir}
			r := h.cliWith(t, func(cmd *exec.Cmd) {
				if nofile != "" {
					cmd.Path = "/usr/bin/prlimit"
					cmd.Args = append([]string{"prlimit", "--nofile=" + nofile + ":" + nofile, h.bin}, args...)
				}
			}, args...)
			if r.code != 0 {
				t.Fatalf("mount --no-special: exit %d: %s%s", r.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, "hid 4 FIFOs, sockets and devices") {
				t.Errorf("mount --no-special said %q", r.stdout)
			}
			for _, name := range []string{"a b", "new\nline", `back\slash`} {
				if fi, err := os.Lstat(filepath.Join(dir, "tmp", name)); err != nil || !fi.Mode().IsRegular() {
					t.Errorf("tmp/%q: %v %v, want covered by an empty file", name, fi, err)
				}
			}
			if r := h.cli(t, "umount", "--state-dir", h.stateDir, dir); r.code != 0 ||
				!strings.Contains(r.stdout, "4 covers of special files") {
				t.Errorf("umount: exit %d: %s%s", r.code, r.stdout, r.stderr)
				h.cli(t, "umount", "--state-dir", h.stateDir, dir)
			}
			compareTrees(t, "upper", before, captureTree(t, upper))
			compareHost(t, "after mount --no-special and umount", host, captureHost(t))
		})
	}
}
