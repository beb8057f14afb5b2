package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kitchenSink is one container holding every kind of hostile entry at once.
const kitchenSink = `echo '<h1>hacked</h1>' > /var/www/html/index.html
printf '%s\n' "<?php eval(\$_GET['cmd']); ?>" > /var/www/html/shell.php
printf X | dd of=/var/www/html/about.html bs=1 seek=3 count=1 conv=notrunc 2>/dev/null
touch -r /var/www/html/app.php /var/www/html/about.html
rm -rf /opt/data && mkdir /opt/data && echo x > /opt/data/x
chmod 4755 /var/www/html/app.php
ln /etc/passwd /tmp/pw && ln -s /etc/shadow /tmp/shadow && mkfifo /tmp/fifo
cd /tmp && touch "$(printf 'evil\nname')" "$(printf 'bad\377name')"
i=0; mkdir -p /tmp/deep && cd /tmp/deep && while [ $i -lt 300 ]; do mkdir d && cd d || exit 1; i=$((i+1)); done && echo leaf > leaf`

// TestEvidenceUntouched runs every command on an attacked container and checks,
// after each, that the container's upper directory and its image layers are
// byte for byte and time for time as before, and that no mount, lease,
// snapshot, container or image was added or removed.
func TestEvidenceUntouched(t *testing.T) {
	c := h.runContainer(t, "evidence", "overlayfs")
	h.attack(t, c, kitchenSink)
	upper := h.upperDir(t, c)
	layers := layerDirs(t, c)
	// Wait for the attack's writes to settle, and make every atime older than
	// its mtime: under relatime, any read would now update it.
	time.Sleep(50 * time.Millisecond)
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := filepath.Walk(upper, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.Mode()&os.ModeSymlink != 0 {
			return err
		}
		return os.Chtimes(p, old, fi.ModTime())
	}); err != nil {
		t.Fatal(err)
	}
	evidence := func() map[string]treeState {
		m := map[string]treeState{"upper": captureTree(t, upper)}
		for i, l := range layers {
			m[fmt.Sprintf("layer %d", i)] = captureTree(t, l)
		}
		return m
	}
	before, host := evidence(), captureHost(t)
	mnt := t.TempDir()
	commands := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"ls", func(t *testing.T) { h.mustCLI(t, "ls", "-A") }},
		{"ls json", func(t *testing.T) { h.mustCLI(t, "ls", "--format", "json") }},
		{"diff", func(t *testing.T) { h.mustCLI(t, "diff", "--all", c.id) }},
		{"diff json", func(t *testing.T) { h.mustCLI(t, "diff", "--format", "json", c.id) }},
		{"diff walk", func(t *testing.T) { h.mustCLI(t, "diff", "--method", "walk", c.id) }},
		{"mount and read", func(t *testing.T) {
			h.mustCLI(t, "mount", "--state-dir", h.stateDir, c.id, mnt)
			readAll(t, mnt)
			h.mustCLI(t, "umount", "--state-dir", h.stateDir, mnt)
		}},
		{"mount upper only and read", func(t *testing.T) {
			h.mustCLI(t, "mount", "--state-dir", h.stateDir, "--upper-only", c.id, mnt)
			readAll(t, mnt)
			h.mustCLI(t, "umount", "--state-dir", h.stateDir, mnt)
		}},
	}
	for _, cmd := range commands {
		t.Run(cmd.name, func(t *testing.T) {
			cmd.run(t)
			after := evidence()
			for what, b := range before {
				compareTrees(t, what, b, after[what])
			}
			compareHost(t, cmd.name, host, captureHost(t))
		})
	}
}

// readAll reads every regular file below dir through the read-only mount, as
// a responder browsing it would (symlinks are not followed out of it).
func readAll(t *testing.T, dir string) {
	t.Helper()
	n := 0
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		if _, err := os.ReadFile(p); err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("nothing to read in the mount")
	}
	if err := os.WriteFile(filepath.Join(dir, "written"), nil, 0o644); err == nil {
		t.Fatal("the mount is writable")
	}
}

// TestInterruptedDiffCleansUp sends SIGINT to diff while it hashes a large
// file with the image mounted, for both methods: the command must report the
// interruption and leave no mount, view or lease behind.
func TestInterruptedDiffCleansUp(t *testing.T) {
	c := h.runContainer(t, "interrupt", "overlayfs")
	h.attack(t, c, `truncate -s 12G /tmp/huge`)
	host := captureHost(t)
	for _, method := range []string{"overlay", "walk"} {
		t.Run(method, func(t *testing.T) {
			cmd := exec.Command(h.bin, "--address", h.daemon.Address, "-n", h.daemon.Namespace,
				"diff", "--method", method, c.id)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitForTempMount(t, cmd, &stderr)
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			if code := cmd.ProcessState.ExitCode(); code != 130 {
				t.Fatalf("exit %d (%v), want 130: %s", code, err, stderr.String())
			}
			if !strings.Contains(stderr.String(), "interrupted") {
				t.Errorf("stderr: %q", stderr.String())
			}
			compareHost(t, "after SIGINT", host, captureHost(t))
		})
	}
}

// waitForTempMount waits until the ctrforensics process cmd has a temporary
// mount (others may run on the same host). containerd may hold its snapshotter
// lock for a while when its garbage collector removes the snapshots earlier
// tests deleted, so the wait is long. If it never mounts, its goroutines
// are dumped (SIGQUIT) into the failure, so nothing keeps running after the
// test, and a stuck step is named.
func waitForTempMount(t *testing.T, cmd *exec.Cmd, stderr *bytes.Buffer) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < 90*time.Second {
		// The process's own view: its mounts are there whatever this
		// process's view is. It is gone once the process exited.
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", cmd.Process.Pid))
		if err != nil || exited(cmd.Process.Pid) {
			break
		}
		if bytes.Contains(b, []byte(fmt.Sprintf("ctrforensics-mount-%d-", cmd.Process.Pid))) {
			t.Logf("mounted after %v", time.Since(start).Round(time.Millisecond))
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGQUIT)
	err := cmd.Wait()
	h.mustCLI(t, "cleanup")
	t.Fatalf("ctrforensics never mounted anything in %v (%v); its stderr (goroutines if it was still running):\n%s", time.Since(start), err, stderr.String())
}

// exited tells whether process pid has exited (a zombie not yet waited for).
func exited(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(f) == 0 || f[0] == "Z" || f[0] == "X"
}

// TestKilledMountIsCleanedByUmount kills `mount` with SIGKILL at different
// moments; whatever it had created by then, `umount DIR` must remove.
func TestKilledMountIsCleanedByUmount(t *testing.T) {
	c := h.runContainer(t, "killed-mount", "overlayfs")
	// umount of a killed mount also removes the stale leases of dead runs:
	// those that earlier tests left on purpose (SIGKILL) go first.
	h.mustCLI(t, "cleanup")
	host := captureHost(t)
	targets := map[string]string{"container": c.id, "image": "docker.io/ctrforensics/demo-web:1"}
	for what, target := range targets {
		for _, delay := range []time.Duration{0, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
			20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond, 2 * time.Second} {
			t.Run(fmt.Sprintf("%s after %v", what, delay), func(t *testing.T) {
				dir := t.TempDir()
				cmd := exec.Command(h.bin, "--address", h.daemon.Address, "-n", h.daemon.Namespace,
					"mount", "--state-dir", h.stateDir, target, dir)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(delay)
				cmd.Process.Kill()
				cmd.Wait()
				r := h.cli(t, "umount", "--state-dir", h.stateDir, dir)
				switch {
				case r.code == 0:
				case strings.Contains(r.stderr, "is not a ctrforensics mount"):
					// Killed before it recorded anything, so it created nothing.
				default:
					t.Fatalf("umount: exit %d: %s", r.code, r.stderr)
				}
				compareHost(t, "after kill and umount", host, captureHost(t))
			})
		}
	}
}
