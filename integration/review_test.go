package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
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

// TestHangupWhilePaused hangs up `collect --pause` once the task is paused,
// as a dropped SSH session does: the run must resume the task and remove its
// lease, mounts and partial output itself, with nobody left to run cleanup.
func TestHangupWhilePaused(t *testing.T) {
	c := h.runContainer(t, "hangup-paused", "overlayfs")
	h.attack(t, c, `echo defaced > /var/www/html/index.html`)
	env := []string{"TMPDIR=" + t.TempDir()}
	host := captureHost(t)
	out := t.TempDir()
	for i, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGHUP, syscall.SIGHUP} {
		p := startHandled(t, env, "collect", "--pause", "-o", filepath.Join(out, fmt.Sprintf("bag-%d.tar.gz", i)), c.id)
		waitPaused(t, c)
		code := p.signalAfter(time.Duration(i)*5*time.Millisecond, sig)
		what := fmt.Sprintf("%v once paused (+%dms)", sig, i*5)
		if code != 0 && code != 130 {
			t.Errorf("%s: exit %d: %s", what, code, p.stderr.String())
		}
		paused, leaked := checkInterrupted(t, what, p, code, c, host)
		if paused || leaked > 0 {
			t.Errorf("%s: task left paused %v, leases leaked %d", what, paused, leaked)
		}
		if code != 0 {
			if entries, _ := os.ReadDir(out); len(entries) != 0 {
				t.Errorf("%s: partial output left: %v", what, entries)
			}
		}
		os.RemoveAll(out)
		os.MkdirAll(out, 0o755)
	}
}

// TestDiffIntoClosedPipe pipes `diff` into a reader that stops at once
// (`| head -c1`): the write to the closed pipe must not kill the run before
// it removed its mounts and lease.
func TestDiffIntoClosedPipe(t *testing.T) {
	c := h.runContainer(t, "diff-closed-pipe", "overlayfs")
	h.attack(t, c, `mkdir /tmp/many && cd /tmp/many && i=0 && while [ $i -lt 3000 ]; do : > file-with-a-long-name-$i; i=$((i+1)); done`)
	host := captureHost(t)
	for _, args := range [][]string{{"diff"}, {"diff", "--format", "json"}, {"diff", "--method", "walk"}} {
		argv := append([]string{"-c", `"$0" "$@" | head -c1 >/dev/null`, h.bin, "--address", h.daemon.Address,
			"-n", h.daemon.Namespace}, append(args, c.id)...)
		cmd := exec.Command("/bin/sh", argv...)
		cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s | head -c1: %v %s", strings.Join(args, " "), err, out)
		}
		compareHost(t, strings.Join(args, " ")+" | head -c1", host, captureHost(t))
		removeLeaked(t, host)
	}
}

// TestCollectRefusesOutputInsideTheEvidence gives collect an output inside the
// container's own file system, as a responder in a hurry might (through
// /proc/PID/root, the task's rootfs mount or the snapshot's upper directory):
// collect must refuse it (exit 2) before writing anything, so that the
// container's layer stays as it was.
func TestCollectRefusesOutputInsideTheEvidence(t *testing.T) {
	c := h.runContainer(t, "output-inside", "overlayfs")
	h.attack(t, c, `echo defaced > /var/www/html/index.html`)
	upper := h.upperDir(t, c)
	rootfs := filepath.Join(filepath.Dir(h.daemon.Address), "..", "state", "io.containerd.runtime.v2.task", h.daemon.Namespace, c.id, "rootfs")
	if _, err := os.Stat(rootfs); err != nil {
		rootfs = fmt.Sprintf("/proc/%d/root", c.task.Pid())
	}
	time.Sleep(50 * time.Millisecond)
	before := captureTree(t, upper)
	for _, out := range []string{
		fmt.Sprintf("/proc/%d/root/tmp/bag.tar", c.task.Pid()),
		fmt.Sprintf("/proc/%d/root/tmp/new/bag", c.task.Pid()),
		filepath.Join(rootfs, "var/www/bag.tar.gz"),
		filepath.Join(upper, "tmp", "bag"),
		filepath.Join(upper, "bag.tar"),
	} {
		r := h.cli(t, "collect", "-o", out, c.id)
		if r.code != 2 || !strings.Contains(r.stderr, "inside") {
			t.Errorf("collect -o %s: exit %d, want 2 and a refusal: %s%s", out, r.code, r.stdout, r.stderr)
		}
		compareTrees(t, "upper after collect -o "+out, before, captureTree(t, upper))
	}
	native := h.runContainer(t, "output-outside-native", "native")
	out := filepath.Join(t.TempDir(), "bag.tar")
	if r := h.cli(t, "collect", "-o", out, native.id); r.code != 0 {
		t.Errorf("collect of a native container to %s: exit %d: %s", out, r.code, r.stderr)
	}
}

// TestMountRefusesMountpointInsideTheContainer mounts a container onto a
// directory inside its own file system: mount must refuse (exit 2) before it
// creates the directory, leaving the container's layer as it was.
func TestMountRefusesMountpointInsideTheContainer(t *testing.T) {
	c := h.runContainer(t, "mountpoint-inside", "overlayfs")
	upper := h.upperDir(t, c)
	time.Sleep(50 * time.Millisecond)
	before, host := captureTree(t, upper), captureHost(t)
	for _, dir := range []string{
		fmt.Sprintf("/proc/%d/root/mnt/view", c.task.Pid()),
		filepath.Join(upper, "view"),
	} {
		r := h.cli(t, "mount", "--state-dir", h.stateDir, c.id, dir)
		if r.code != 2 || !strings.Contains(r.stderr, "inside the container's file system") {
			t.Errorf("mount %s: exit %d, want 2 and a refusal: %s%s", dir, r.code, r.stdout, r.stderr)
			h.cli(t, "umount", "--state-dir", h.stateDir, dir)
		}
		compareTrees(t, "upper after mount at "+dir, before, captureTree(t, upper))
		compareHost(t, "after mount at "+dir, host, captureHost(t))
	}
}

// TestKilledMountNoSpecialUmount kills `mount --no-special` at many moments
// while it covers a few hundred FIFOs, then runs umount and cleanup: no
// cover, view, lease or record may be left, and the layer is as it was.
func TestKilledMountNoSpecialUmount(t *testing.T) {
	c := h.runContainer(t, "killed-no-special", "overlayfs")
	h.attack(t, c, `mkdir /tmp/f && cd /tmp/f && i=0 && while [ $i -lt 300 ]; do mkfifo p$i; i=$((i+1)); done`)
	upper := h.upperDir(t, c)
	// umount also removes what dead runs left (records, leases): what
	// earlier tests left on purpose goes first, so that it is not counted.
	h.mustCLI(t, "cleanup", "--state-dir", h.stateDir)
	time.Sleep(50 * time.Millisecond)
	before, host := captureTree(t, upper), captureHost(t)
	records := stateRecords(t)
	counts := map[string]int{}
	for ms := 0; ms <= 60; ms += 4 {
		what := fmt.Sprintf("killed after %dms", ms)
		dir := filepath.Join(t.TempDir(), "view")
		p := startHandled(t, nil, "mount", "--state-dir", h.stateDir, "--no-special", c.id, dir)
		p.signalAfter(time.Duration(ms)*time.Millisecond, syscall.SIGKILL)
		time.Sleep(100 * time.Millisecond)
		if left, _ := os.ReadFile("/proc/self/mountinfo"); strings.Count(string(left), dir+"/") > 0 {
			counts["covers left by the kill"]++
		}
		r := h.cli(t, "umount", "--state-dir", h.stateDir, dir)
		counts[fmt.Sprintf("umount exit %d", r.code)]++
		if r.code != 0 && !strings.Contains(r.stderr, "not a ctrforensics mount") {
			t.Errorf("%s: umount: exit %d: %s", what, r.code, r.stderr)
		}
		r = h.cliWith(t, func(cmd *exec.Cmd) { cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir()) },
			"--address", h.daemon.Address, "-n", h.daemon.Namespace, "cleanup", "--state-dir", h.stateDir)
		if r.code != 0 {
			t.Errorf("%s: cleanup: exit %d: %s", what, r.code, r.stderr)
		}
		compareHost(t, what+", umount and cleanup", host, captureHost(t))
		if got := stateRecords(t); strings.Join(got, " ") != strings.Join(records, " ") {
			t.Errorf("%s: records %v, before %v", what, got, records)
		}
	}
	compareTrees(t, "upper", before, captureTree(t, upper))
	t.Logf("outcomes: %v", counts)
}

// TestCleanupRemovesUnfinishedMountRecord leaves what `mount` killed while
// writing its record leaves (the record's temporary file, named with the
// dead pid): cleanup must remove it and say so.
func TestCleanupRemovesUnfinishedMountRecord(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("0123456789abcdef.json.tmp-%d", dead.Process.Pid)
	if err := os.WriteFile(filepath.Join(h.stateDir, name), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := h.cli(t, "cleanup", "--state-dir", h.stateDir)
	if r.code != 0 || !strings.Contains(r.stdout, name) {
		t.Errorf("cleanup: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(h.stateDir, name)); !os.IsNotExist(err) {
		t.Errorf("the unfinished record is still there: %v", err)
	}
}
