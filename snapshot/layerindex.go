package snapshot

import "path/filepath"

// LayerIndexSubdir is where, below a user's cache directory, image commands
// keep layer indexes by default (see Client.LayerIndexDir).
const LayerIndexSubdir = "ctrforensics/layer-index"

// NoLayerIndexReason says why image commands keep no layer index by default.
type NoLayerIndexReason string

// The reasons for keeping no layer index by default.
const (
	// IndexLiveDaemon: the content store is on the examined host, so an index
	// would be written to its disk, and later trusted although that host may
	// rewrite it.
	IndexLiveDaemon NoLayerIndexReason = "the content store is a live daemon's: an index would be written to the examined host's disk, which may rewrite it"
	// IndexHeldRoot: a running containerd holds the disk root's database, so
	// it is a live host's.
	IndexHeldRoot NoLayerIndexReason = "a running containerd holds the disk root's database: it is a live host's, whose disk would be written"
	// IndexSameFilesystem: the cache directory is on the disk root's own
	// filesystem, the evidence.
	IndexSameFilesystem NoLayerIndexReason = "the cache directory is on the disk root's own filesystem"
	// IndexNoCacheDir: the user has no cache directory.
	IndexNoCacheDir NoLayerIndexReason = "no user cache directory"
)

// LayerIndexDir returns where image commands keep layer indexes when no
// directory is given: LayerIndexSubdir below cacheDir, the user's cache
// directory, for a disk root that no running containerd holds and that is
// on another filesystem than cacheDir, which is how a lab reads a dead host's
// disk. Otherwise it returns "" and why none is kept: on a live host an index
// would be a write to the examined host's disk (where deleted files may still
// be recovered), and a later run would trust a file that host can rewrite.
func (c *Client) LayerIndexDir(cacheDir string) (string, NoLayerIndexReason) {
	switch {
	case c.disk == nil:
		return "", IndexLiveDaemon
	case c.disk.held():
		return "", IndexHeldRoot
	case cacheDir == "":
		return "", IndexNoCacheDir
	}
	dir := filepath.Join(cacheDir, LayerIndexSubdir)
	if same, err := sameFilesystem(dir, c.disk.path); err != nil || same {
		return "", IndexSameFilesystem
	}
	return dir, ""
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
