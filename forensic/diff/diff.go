// Package diff computes what changed in a container's filesystem against its
// image, as a sorted list of forensic.Change: OverlayDiff walks only an
// overlayfs upper directory (O(changes)), TreeDiff compares two complete trees.
// Both read through read-only mounts the caller provides, by descriptor
// (never following a symlink, with O_NOATIME, never opening a FIFO or device),
// keep a bounded number of descriptors open however deep the tree, and must
// agree on every tree (their tests check it).
package diff

import (
	"fmt"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/internal/fsread"
)

// DefaultMaxHashBytes is the size above which a file is not hashed unless the
// caller raises the limit: large enough for any ordinary file, small enough that a
// hostile sparse file of a terabyte cannot stall an analysis.
const DefaultMaxHashBytes = fsread.DefaultMaxBytes

// Method names how a change set was computed.
type Method string

// The diff methods.
const (
	// MethodOverlay walks only an overlayfs upper directory: O(changes).
	MethodOverlay Method = "overlay"
	// MethodWalk compares the whole container tree with the whole image tree.
	MethodWalk Method = "walk"
)

// Options tune a diff.
type Options struct {
	// MaxHashBytes is the size above which a file is not hashed; 0 means
	// DefaultMaxHashBytes.
	MaxHashBytes int64
	// UserXattr says the overlay keeps its attributes in the user namespace
	// (a userxattr mount) instead of the trusted one.
	UserXattr bool
	// IgnoreDirMtime leaves directory mtimes out of the comparison, for trees
	// whose directory times are not preserved (containerd's native snapshotter
	// sets them when it copies a snapshot). A directory is then reported only
	// when something else about it, or below it, changed.
	IgnoreDirMtime bool
}

// Diff is the result of comparing a container's filesystem with its image.
type Diff struct {
	// Changes are sorted by path, bytewise.
	Changes []forensic.Change
	Method  Method
	// Notes report what was not fully examined, so that nothing is skipped silently.
	Notes []string
	// FilesHashed and BytesHashed count the content read.
	FilesHashed, BytesHashed int64
}

// FallbackError is returned by OverlayDiff when the upper directory uses an
// overlayfs feature the fast path cannot interpret; the caller should compare
// the merged trees with TreeDiff instead.
type FallbackError struct {
	Path   string
	Reason string
}

func (e *FallbackError) Error() string {
	return fmt.Sprintf("overlay fast path not usable: %s at %s", e.Reason, forensic.EscapePath(e.Path))
}
