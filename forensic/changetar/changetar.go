// Package changetar writes a container's changes as an OCI layer tar: applied
// over the image, it gives the container's filesystem. It reads the
// container's tree through a read-only mount, by descriptor (never following a
// symlink, with O_NOATIME, never opening a FIFO or device), and keeps a bounded
// number of descriptors open however deep the tree.
//
// A name an OCI layer cannot carry (a path component starting with ".wh.",
// which an applier reads as a whiteout: a file named ".wh.passwd" would delete
// "passwd") is never written to the layer; WriteUnsafeTar archives those
// entries, under their own names, in a separate plain tar.
package changetar

import (
	"strings"

	"github.com/ctrforensics/ctrforensics/forensic"
)

// WhiteoutPrefix starts the name of an OCI whiteout entry; ".wh..wh..opq"
// marks an opaque directory.
const WhiteoutPrefix = ".wh."

// UnsafeName reports whether an OCI layer cannot carry the absolute path p
// under its own name: one of its components starts with WhiteoutPrefix.
// Every component of an absolute path follows a slash.
func UnsafeName(p string) bool {
	return strings.Contains(p, "/"+WhiteoutPrefix)
}

// UnsafeChanges returns the changes WriteChangesTar leaves out because of
// their names: what WriteUnsafeTar archives.
func UnsafeChanges(changes []forensic.Change) []forensic.Change {
	var out []forensic.Change
	for _, c := range changes {
		if UnsafeName(c.Path) {
			out = append(out, c)
		}
	}
	return out
}

// Kind says which changes an archive holds, and how.
type Kind int

const (
	// Layer is an OCI layer: the changes whose names a layer can carry,
	// deletions as whiteouts (WriteChangesTar).
	Layer Kind = iota
	// Unsafe is a plain tar of the changes whose names a layer cannot carry
	// (WriteUnsafeTar).
	Unsafe
	// Plain is a plain tar of every change but deletions (WritePlainTar).
	Plain
)

// holds reports whether an archive of kind k holds the path p.
func (k Kind) holds(p string) bool {
	return k == Plain || UnsafeName(p) == (k == Unsafe)
}

// Options tune the archive.
type Options struct {
	// MaxBytes is the size above which a file's content is left out (its
	// metadata is archived); 0 means the diff's default hashing limit.
	MaxBytes int64
}

// TarStats says what WriteChangesTar archived and what it could not.
type TarStats struct {
	Entries, Bytes int64
	// Notes name every change not archived as it is, and why.
	Notes []string
	// Padding counts the zero bytes after the end of the archive that stand
	// in for content planned but not archived (see Archive).
	Padding int64
}
