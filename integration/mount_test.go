package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/ctrforensics/ctrforensics/snapshot"
)

const webImage = "docker.io/ctrforensics/demo-web:1"

// stateRecords lists the mount records in the test's state directory.
func stateRecords(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(h.stateDir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestFailedMountLeavesNothing makes `mount` fail before and after it has
// created its record, lease and view: nothing may be left, neither in
// containerd nor on disk (the directories it created for DIR included), and
// umount and cleanup have nothing to do.
func TestFailedMountLeavesNothing(t *testing.T) {
	native := h.runContainer(t, "failed-mount-native", "native")
	notUnpacked := suspect(t).Name() // unpacked for overlayfs only
	host := captureHost(t)
	records := stateRecords(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown snapshotter", []string{"--snapshotter", "nope", webImage}, `no snapshotter "nope"`},
		{"image not unpacked", []string{"--snapshotter", "native", notUnpacked}, "not unpacked for snapshotter native"},
		{"no such image", []string{"nope-image"}, `neither a container nor an image named "nope-image"`},
		{"upper only of a native snapshot", []string{"--upper-only", native.id}, "overlay"},
	}
	for _, tt := range tests {
		for _, existing := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, DIR exists %v", tt.name, existing), func(t *testing.T) {
				top := filepath.Join(t.TempDir(), "a")
				dir := filepath.Join(top, "b", "view")
				if existing {
					if err := os.MkdirAll(dir, 0o755); err != nil {
						t.Fatal(err)
					}
				}
				args := append(append([]string{"mount", "--state-dir", h.stateDir}, tt.args...), dir)
				r := h.cli(t, args...)
				if r.code != 2 || !strings.Contains(r.stderr, tt.want) {
					t.Errorf("mount: exit %d, want 2 and %q: %s", r.code, tt.want, r.stderr)
				}
				_, err := os.Stat(top)
				if existing && err != nil {
					t.Errorf("DIR existed before and is gone: %v", err)
				}
				if !existing && !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the directories mount created are left: %v", err)
				}
				if got := stateRecords(t); !slices.Equal(got, records) {
					t.Errorf("mount records: %v, before %v", got, records)
				}
				compareHost(t, "after a failed mount", host, captureHost(t))
				if r := h.cli(t, "umount", "--state-dir", h.stateDir, dir); r.code != 2 ||
					!strings.Contains(r.stderr, "not a ctrforensics mount") {
					t.Errorf("umount after a failed mount: exit %d: %s%s", r.code, r.stdout, r.stderr)
				}
				r = h.cliWith(t, func(cmd *exec.Cmd) { cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir()) },
					"--address", h.daemon.Address, "-n", h.daemon.Namespace, "cleanup", "--state-dir", h.stateDir)
				if r.code != 0 || strings.TrimSpace(r.stdout) != "nothing to clean up" {
					t.Errorf("cleanup after a failed mount: exit %d: %s%s", r.code, r.stdout, r.stderr)
				}
			})
		}
	}
}

// TestKilledMountUmountReportsWhatExisted kills `mount` at many moments after its
// handler is installed and runs umount: umount must report removing exactly
// the mount, view and lease that existed after the kill, and leave the host
// as before.
func TestKilledMountUmountReportsWhatExisted(t *testing.T) {
	c := h.runContainer(t, "umount-report", "overlayfs")
	host := captureHost(t)
	counts := map[string]int{}
	for _, target := range []string{webImage, c.id} {
		for ms := 0; ms <= 40; ms += 2 {
			what := fmt.Sprintf("%s killed after %dms", target, ms)
			dir := filepath.Join(t.TempDir(), "view")
			p := startHandled(t, nil, "mount", "--state-dir", h.stateDir, target, dir)
			p.signalAfter(time.Duration(ms)*time.Millisecond, syscall.SIGKILL)
			time.Sleep(200 * time.Millisecond) // a call in flight when the client died lands in containerd
			rec, err := snapshot.ReadMountRecord(h.stateDir, dir)
			if err != nil {
				counts["nothing recorded"]++
				compareHost(t, what, host, captureHost(t))
				continue
			}
			existed := existing(t, rec)
			counts[fmt.Sprintf("%d existed", len(existed))]++
			r := h.cli(t, "umount", "--state-dir", h.stateDir, dir)
			if r.code != 0 {
				t.Errorf("%s: umount: exit %d: %s", what, r.code, r.stderr)
				continue
			}
			reported, _ := strings.CutPrefix(strings.TrimSpace(r.stdout), "removed: ")
			got := slices.DeleteFunc(strings.Split(reported, ", "), func(s string) bool { return s == "mount record" })
			slices.Sort(got)
			if !slices.Equal(got, existed) {
				t.Errorf("%s: umount reported %q; what existed: %q", what, got, existed)
			}
			compareHost(t, what+" and umount", host, captureHost(t))
		}
	}
	t.Logf("outcomes: %v", counts)
}

// existing returns, sorted and worded as umount reports them, the mount, view
// and lease of rec that exist.
func existing(t *testing.T, rec *snapshot.MountRecord) []string {
	t.Helper()
	ctx := h.ctx(t)
	var out []string
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(b), " "+rec.Mountpoint+" ") {
		out = append(out, "mount "+rec.Mountpoint)
	}
	for _, v := range rec.Views {
		_, err := h.client.SnapshotService(v.Snapshotter).Stat(ctx, v.Key)
		if err == nil {
			out = append(out, "view "+v.Snapshotter+"/"+v.Key)
		} else if !errdefs.IsNotFound(err) {
			t.Fatal(err)
		}
	}
	ls, err := h.client.LeasesService().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.ID == rec.Lease {
			out = append(out, "lease "+l.ID)
		}
	}
	slices.Sort(out)
	return out
}

// TestMountNoSpecial mounts a container holding a FIFO and device nodes with
// and without --no-special: without, mount warns that FIFOs are live; with,
// every FIFO and device reads as an empty read-only file, so reading the
// whole view (grep -r) finishes, overlay whiteouts stay, the evidence is
// untouched, and umount removes every cover.
func TestMountNoSpecial(t *testing.T) {
	c := h.runContainer(t, "no-special", "overlayfs")
	h.attack(t, c, `mkfifo /tmp/fifo && mknod /tmp/null c 1 3 && mknod /tmp/loop b 7 0 && rm /var/www/html/about.html`)
	upper := h.upperDir(t, c)
	time.Sleep(50 * time.Millisecond)
	before, host := captureTree(t, upper), captureHost(t)
	dir := filepath.Join(t.TempDir(), "view")
	mount := func(args ...string) string {
		return h.mustCLI(t, append(append([]string{"mount", "--state-dir", h.stateDir}, args...), c.id, dir)...)
	}
	umount := func() string { return h.mustCLI(t, "umount", "--state-dir", h.stateDir, dir) }
	lstatMode := func(p string) os.FileMode {
		fi, err := os.Lstat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode()
	}

	out := mount()
	if !strings.Contains(out, "FIFOs in the view are live") {
		t.Errorf("mount does not warn about FIFOs: %q", out)
	}
	if m := lstatMode("tmp/fifo"); m&os.ModeNamedPipe == 0 {
		t.Errorf("without --no-special tmp/fifo is %v", m)
	}
	umount()

	for _, upperOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("upper only %v", upperOnly), func(t *testing.T) {
			args := []string{"--no-special"}
			if upperOnly {
				args = append(args, "--upper-only")
			}
			out := mount(args...)
			if !strings.Contains(out, "hid 3 FIFOs, sockets and devices") {
				t.Errorf("mount --no-special said %q", out)
			}
			for _, p := range []string{"tmp/fifo", "tmp/null", "tmp/loop"} {
				if m := lstatMode(p); !m.IsRegular() {
					t.Errorf("%s is %v, want an empty regular file", p, m)
				}
				if err := os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o644); err == nil {
					t.Errorf("%s is writable", p)
				}
			}
			if upperOnly {
				if m := lstatMode("var/www/html/about.html"); m&os.ModeCharDevice == 0 {
					t.Errorf("the whiteout of about.html is %v, want kept as a character device", m)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			grep := exec.CommandContext(ctx, "grep", "-r", "-D", "read", "no-such-text", dir)
			if out, err := grep.CombinedOutput(); ctx.Err() != nil {
				t.Errorf("grep -r over the view blocked: %v %s", err, out)
			}
			if out := umount(); !strings.Contains(out, "3 covers of special files") {
				t.Errorf("umount said %q", out)
			}
			compareTrees(t, "upper", before, captureTree(t, upper))
			compareHost(t, "after mount --no-special and umount", host, captureHost(t))
		})
	}
}
