package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOfflineCollectKilled SIGKILLs a collect from a disk root (no daemon, so
// no lease records its partial bag) while it hashes; `cleanup` with --root,
// and without it, must find the partial bag through the run record the
// collect left in the state directory, remove it and the record, and leave
// nothing behind: no output, no record, no mount.
func TestOfflineCollectKilled(t *testing.T) {
	c := h.runContainer(t, "offline-collect-kill", "overlayfs")
	h.attack(t, c, `truncate -s 12G /tmp/huge`)
	root := readOnlyRoot(t, filepath.Join(t.TempDir(), "root"))
	for _, tt := range []struct {
		name    string
		cleanup func(t *testing.T, stateDir string) result
	}{
		{"cleanup --root", func(t *testing.T, stateDir string) result {
			return offline(t, root, "cleanup", "--state-dir", stateDir)
		}},
		{"cleanup", func(t *testing.T, stateDir string) result {
			return h.cli(t, "cleanup", "--state-dir", stateDir)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			host := captureHost(t)
			dir, stateDir := t.TempDir(), t.TempDir()
			out := filepath.Join(dir, "bag.tar")
			cmd := exec.Command(h.bin, "--root", root, "-n", h.daemon.Namespace, "collect", "--state-dir", stateDir, "-o", out, c.id)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			partial := waitForGlob(t, out+".partial-*", &stderr)
			waitForTempMount(t, cmd, &stderr)
			time.Sleep(100 * time.Millisecond)
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			records, _ := filepath.Glob(filepath.Join(stateDir, "run-*.json"))
			r := tt.cleanup(t, stateDir)
			t.Logf("cleanup after the kill:\n%s", r.stdout)
			if r.code != 0 {
				t.Fatalf("cleanup: exit %d: %s%s", r.code, r.stdout, r.stderr)
			}
			want := []string{"removed: partial bag " + partial + "\n"}
			for _, rec := range records {
				want = append(want, "removed: run record "+filepath.Base(rec))
			}
			if len(records) != 1 {
				t.Errorf("run records of the killed collect: %v", records)
			}
			for _, want := range want {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("cleanup did not report %q:\n%s", want, r.stdout)
				}
			}
			for what, d := range map[string]string{"output": dir, "state": stateDir} {
				if left, _ := os.ReadDir(d); len(left) != 0 {
					t.Errorf("left in the %s directory: %v", what, left)
				}
			}
			compareHost(t, "after the killed collect and cleanup", host, captureHost(t))
			// Other runs on this host may leave their own things; nothing of
			// this one is left.
			if r := tt.cleanup(t, stateDir); strings.Contains(r.stdout, "partial") || strings.Contains(r.stdout, "run record") {
				t.Errorf("second cleanup: %s%s", r.stdout, r.stderr)
			}
		})
	}
}

// waitForGlob waits until a file matches pattern and returns it.
func waitForGlob(t *testing.T, pattern string, stderr *bytes.Buffer) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return m[0]
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("nothing matches %s (stderr: %s)", pattern, stderr.String())
	return ""
}
