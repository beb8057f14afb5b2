package integration

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ctrforensics/ctrforensics/internal/testimage"
)

// TestImageOutputKilled kills `image export` and `image save` with SIGKILL
// while they write their output: the temporary file they leave is named on
// their lease, so `cleanup` removes it and leaves nothing else behind.
func TestImageOutputKilled(t *testing.T) {
	ctx := h.ctx(t)
	big := make([]byte, 96<<20) // incompressible, so that writing takes a while
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	img := &testimage.Image{Name: "docker.io/ctrforensics/big:1", Layers: []testimage.Layer{{
		Compression: testimage.None,
		Files:       []testimage.File{testimage.Dir("/data", 0o755), {Path: "/data/blob", Type: '0', Mode: 0o644, Content: big}},
	}}}
	built, err := img.Build()
	if err != nil {
		t.Fatal(err)
	}
	h.importArchive(t, built)
	defer h.client.ImageService().Delete(ctx, img.Name)
	for _, sub := range []string{"export", "save"} {
		t.Run(sub, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out.tar")
			cmd := exec.Command(h.bin, "--address", h.daemon.Address, "-n", h.daemon.Namespace, "image", sub, "-o", out, img.Name)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			if !waitFor(done, func() bool { return tempWritten(dir) }) {
				t.Fatalf("image %s finished before its temporary file had content: make the image larger", sub)
			}
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			if cmd.ProcessState.Success() {
				t.Skipf("image %s finished before it was killed", sub)
			}
			rep := h.mustCLI(t, "cleanup")
			if !strings.Contains(rep, "removed: partial output "+out+".tmp-") {
				t.Errorf("cleanup did not name the partial output:\n%s", rep)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("left in the output directory after cleanup: %v", left)
			}
			if ls := ourLeases(t); len(ls) != 0 {
				t.Errorf("leases left after cleanup: %v", ls)
			}
		})
	}
}

// tempWritten tells whether dir holds a temporary output file with content.
func tempWritten(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*.tmp-*"))
	for _, p := range m {
		if fi, err := os.Stat(p); err == nil && fi.Size() > 0 {
			return true
		}
	}
	return false
}
