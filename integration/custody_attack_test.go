package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ctrforensics/ctrforensics/forensic/bundle"
	"github.com/ctrforensics/ctrforensics/snapshot"
)

// TestCollectKilledWhileSealing kills collect with SIGKILL at several moments
// of sealing and packing a bundle large enough for that to take a while; then
// `cleanup` must leave no partial output and no lease of ours (issue 13
// item 4: the lease naming the partial output was released before sealing).
func TestCollectKilledWhileSealing(t *testing.T) {
	c := h.runContainer(t, "collect-seal-kill", "overlayfs")
	h.attack(t, c, `dd if=/dev/urandom of=/tmp/big bs=1M count=256 2>/dev/null`)
	moments := []struct {
		name  string
		ready func(partial string) bool
		delay time.Duration
	}{
		{"bag-info written", exists(bundle.BagInfo), 0},
		{"custody started", exists(bundle.CustodyFile), 0},
		{"packing begun", packing, 0},
		{"packing", packing, 200 * time.Millisecond},
		{"packing late", packing, 400 * time.Millisecond},
	}
	hit := 0
	for _, m := range moments {
		t.Run(m.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "bag.tar.gz")
			cmd := exec.Command(h.bin, "--address", h.daemon.Address, "-n", h.daemon.Namespace, "collect", "-o", out, c.id)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			if !waitFor(done, func() bool { return m.ready(partialIn(dir)) }) {
				t.Logf("collect finished before %s: moment missed", m.name)
				return
			}
			time.Sleep(m.delay)
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			if cmd.ProcessState.Success() {
				t.Logf("collect finished before it was killed %s", m.name)
				return
			}
			hit++
			rep := h.mustCLI(t, "cleanup")
			if !strings.Contains(rep, "removed: partial bag ") {
				t.Errorf("cleanup did not remove the partial bag:\n%s", rep)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("left in the output directory after cleanup: %v", left)
			}
			if ls := ourLeases(t); len(ls) != 0 {
				t.Errorf("leases left after cleanup: %v", ls)
			}
		})
	}
	if hit < 3 {
		t.Errorf("only %d of %d moments were hit: make the container larger", hit, len(moments))
	}
}

// exists reports whether a bag path exists in the partial bundle.
func exists(name string) func(string) bool {
	return func(partial string) bool {
		if partial == "" {
			return false
		}
		bags, _ := filepath.Glob(filepath.Join(partial, "*", name))
		return len(bags) > 0
	}
}

// packing reports whether the partial bundle is being packed into a tar.
func packing(partial string) bool {
	if partial == "" {
		return false
	}
	_, err := os.Stat(partial + ".tar")
	return err == nil
}

// partialIn returns the partial output directory in dir, or "".
func partialIn(dir string) string {
	m, _ := filepath.Glob(filepath.Join(dir, "*"+bundle.PartialMarker+"*"))
	for _, p := range m {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p
		}
	}
	return ""
}

// waitFor polls cond every millisecond until it holds (true) or done is
// closed (false).
func waitFor(done <-chan struct{}, cond func() bool) bool {
	for {
		if cond() {
			return true
		}
		select {
		case <-done:
			return cond()
		case <-time.After(time.Millisecond):
		}
	}
}

// ourLeases lists the leases ctrforensics made in the test namespace.
func ourLeases(t *testing.T) []string {
	t.Helper()
	ls, err := h.client.LeasesService().List(h.ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		if _, ok := l.Labels[snapshot.LabelPurpose]; ok {
			out = append(out, l.ID+" "+l.Labels[snapshot.LabelPurpose])
		}
	}
	return out
}
