package scan

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ctrforensics/ctrforensics/forensic/finding"
	"github.com/ctrforensics/ctrforensics/forensic/imagefs"
	"github.com/ctrforensics/ctrforensics/forensic/packages"
)

// TestDebianRootHasNoHighFinding scans an untouched debootstrap'ed Debian
// root (the tar scripts/bench-debian.sh caches, or CTRFORENSICS_DEBIAN_TAR)
// as a one-layer image, with the package check of its 4,739 package files
// (CTRF-FS-011): the false positives the README reports.
func TestDebianRootHasNoHighFinding(t *testing.T) {
	tarPath := os.Getenv("CTRFORENSICS_DEBIAN_TAR")
	if tarPath == "" {
		home, _ := os.UserHomeDir()
		tarPath = filepath.Join(home, ".cache/ctrforensics/debian-bookworm-minbase.tar")
	}
	if _, err := os.Stat(tarPath); err != nil {
		t.Skipf("no Debian root tar (run scripts/bench-debian.sh): %v", err)
	}
	layers := []imagefs.Layer{{Open: func(context.Context) (io.ReadCloser, error) { return os.Open(tarPath) }}}
	pkgs, err := packages.VerifyImage(context.Background(), layers, packages.Options{}, imagefs.Options{})
	if err != nil || len(pkgs) < 1000 {
		t.Fatalf("package check: %d results, %v", len(pkgs), err)
	}
	rep, err := Scan(context.Background(), LayersInput(layers), Options{Packages: pkgs})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Skipped {
		t.Logf("skipped %s: %s", s.Path, s.Reason)
	}
	count := map[finding.Severity]int{}
	for _, f := range rep.Findings {
		count[f.Severity]++
		t.Logf("%s %s %s: %s", f.Severity, f.Rule, f.Path, f.Reason)
		if f.Severity >= finding.High {
			t.Errorf("high finding on an untouched Debian root: %s %s: %s", f.Rule, f.Path, f.Reason)
		}
	}
	t.Logf("%d files, %d bytes read, findings: high %d, medium %d, low %d; %d skipped",
		rep.Files, rep.Read, count[finding.High], count[finding.Medium], count[finding.Low], len(rep.Skipped))
}
