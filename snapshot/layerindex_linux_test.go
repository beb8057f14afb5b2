package snapshot

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/forensic/bundle"
	"github.com/ctrforensics/ctrforensics/snapshot/contentdir"
)

// TestLayerIndexDir checks where image commands keep layer indexes by
// default: only for a read-only disk root no daemon holds, and only in a
// cache directory on another filesystem than the root, whichever way the
// cache path reaches it.
func TestLayerIndexDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a read-only root and a tmpfs")
	}
	lab := mountFor(t, "tmpfs", "tmpfs", 0) // the examiner's disk
	evidence := t.TempDir()                 // the dead host's disk, on /tmp's filesystem
	if err := os.Mkdir(filepath.Join(evidence, contentdir.Dir), 0o700); err != nil {
		t.Fatal(err)
	}
	ro := mountFor(t, evidence, "", unix.MS_BIND) // mounted read-only below
	if err := unix.Mount("", ro, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(t.TempDir(), filepath.Join(lab, "onto-evidence")); err != nil {
		t.Fatal(err)
	}
	disk := func(path string, locked bool) *Client {
		return &Client{disk: &diskRoot{path: path, record: bundle.DiskRoot{Databases: []bundle.DatabaseDigest{{Locked: locked}}}}}
	}
	tests := []struct {
		name   string
		client *Client
		cache  string
		dir    string // "" when none is kept
		why    string
	}{
		{"live daemon", &Client{}, lab, "", IndexLiveDaemon},
		{"held root", disk(ro, true), lab, "", IndexHeldRoot},
		{"writable root", disk(evidence, false), lab, "", IndexWritableRoot},
		{"no cache directory", disk(ro, false), "", "", "no user cache directory"},
		{"cache on the root's filesystem", disk(ro, false), t.TempDir(), "", IndexSameFilesystem},
		{"cache through a symlink onto the root's filesystem", disk(ro, false), filepath.Join(lab, "onto-evidence", "cache"), "", IndexSameFilesystem},
		{"dead root, cache on the lab's disk", disk(ro, false), lab, filepath.Join(lab, LayerIndexSubdir), ""},
		{"dead root, cache not created yet", disk(ro, false), filepath.Join(lab, "a", "b"), filepath.Join(lab, "a", "b", LayerIndexSubdir), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, why := tt.client.LayerIndexDir(tt.cache)
			if dir != tt.dir || why != tt.why {
				t.Errorf("LayerIndexDir(%s) = %q, %q; want %q, %q", tt.cache, dir, why, tt.dir, tt.why)
			}
		})
	}
	var onEvidence *IndexDirOnEvidenceError
	if err := disk(ro, false).CheckLayerIndexDir(filepath.Join(evidence, "index")); !errors.As(err, &onEvidence) {
		t.Errorf("an index directory on the root's filesystem: %v", err)
	}
	if err := disk(ro, false).CheckLayerIndexDir(filepath.Join(lab, "index")); err != nil {
		t.Errorf("an index directory on the lab's disk: %v", err)
	}
	if err := (&Client{}).CheckLayerIndexDir(filepath.Join(evidence, "index")); err != nil {
		t.Errorf("a live daemon's index directory: %v", err)
	}
}

// mountFor mounts source (of type fstype, or a bind mount) on a new
// directory, unmounted at the end.
func mountFor(t *testing.T, source, fstype string, flags uintptr) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount(source, dir, fstype, flags, ""); err != nil {
		t.Fatalf("mount %s on %s: %v", source, dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}
