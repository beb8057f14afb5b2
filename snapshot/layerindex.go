package snapshot

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/ctrforensics/ctrforensics/snapshot/contentdir"
)

// LayerIndexSubdir is where, below a user's cache directory, image commands
// keep layer indexes by default (see Client.LayerIndexDir).
const LayerIndexSubdir = "ctrforensics/layer-index"

// Why image commands keep no layer index by default.
const (
	// IndexLiveDaemon: the content store is on the examined host, so an index
	// would be written to its disk, and later trusted although that host may
	// rewrite it.
	IndexLiveDaemon = "the content store is a live daemon's: an index would be written to the examined host's disk, which may rewrite it"
	// IndexHeldRoot: a running containerd holds the disk root's database, so
	// it is a live host's.
	IndexHeldRoot = "a running containerd holds the disk root's database: it is a live host's, whose disk would be written"
	// IndexWritableRoot: the disk root is on a writable mount, which may be
	// the disk of the host the command runs on (a dead host's disk is
	// mounted read-only).
	IndexWritableRoot = "the disk root is on a writable mount: it may be this host's own disk"
	// IndexSameFilesystem: the cache directory is on the filesystem of the
	// disk root or of its content store, the evidence.
	IndexSameFilesystem = "the cache directory is on the disk root's own filesystem"
)

// LayerIndexDir returns where image commands keep layer indexes when no
// directory is given: LayerIndexSubdir below cacheDir, the user's cache
// directory, for a disk root mounted read-only that no running containerd
// holds, when neither the root nor its content store is on cacheDir's
// filesystem: how a lab reads a dead host's disk. Otherwise it returns "" and
// why none is kept: on a live host an index would be a write to the examined
// host's disk (where deleted files may still be recovered), and a later run
// would trust a file that host can rewrite.
func (c *Client) LayerIndexDir(cacheDir string) (dir, why string) {
	switch {
	case c.disk == nil:
		return "", IndexLiveDaemon
	case c.disk.held():
		return "", IndexHeldRoot
	case !onReadOnlyMount(c.disk.path) || !onReadOnlyMount(c.disk.contentDir()):
		return "", IndexWritableRoot
	case cacheDir == "":
		return "", "no user cache directory"
	}
	dir = filepath.Join(cacheDir, LayerIndexSubdir)
	if err := c.CheckLayerIndexDir(dir); err != nil {
		var onEvidence *IndexDirOnEvidenceError
		if errors.As(err, &onEvidence) {
			return "", IndexSameFilesystem
		}
		return "", err.Error()
	}
	return dir, ""
}

// IndexDirOnEvidenceError says a layer index directory is on the filesystem
// of the disk root under examination: the examined host could have planted
// indexes there, and writing one would write to the evidence.
type IndexDirOnEvidenceError struct {
	Dir, Root string
}

func (e *IndexDirOnEvidenceError) Error() string {
	return fmt.Sprintf("layer index directory %s is on the filesystem of the disk root %s: an index there could have been planted by the examined host, and writing one writes to the evidence", e.Dir, e.Root)
}

// CheckLayerIndexDir fails when dir (or, when it does not exist yet, where
// it would be created) is on the filesystem of the disk root or of its
// content store, or when that cannot be told. For a live daemon it checks
// nothing: every directory of its host is the examined host's.
func (c *Client) CheckLayerIndexDir(dir string) error {
	if c.disk == nil {
		return nil
	}
	for _, evidence := range []string{c.disk.path, c.disk.contentDir()} {
		same, err := sameFilesystem(dir, evidence)
		if err != nil {
			return fmt.Errorf("cannot tell whether layer index directory %s is on the disk root's filesystem: %w", dir, err)
		}
		if same {
			return &IndexDirOnEvidenceError{Dir: dir, Root: c.disk.path}
		}
	}
	return nil
}

// held tells whether a live daemon held one of the root's databases when it
// was opened.
func (d *diskRoot) held() bool {
	for _, db := range d.record.Databases {
		if db.Locked {
			return true
		}
	}
	return false
}

// contentDir is the root's content store directory.
func (d *diskRoot) contentDir() string {
	return filepath.Join(d.path, contentdir.Dir)
}
