// Package forensic is the vocabulary every analysis of ctrforensics shares: a
// Change between a container's filesystem and its image, the Metadata of an
// entry, and their encodings (JSON, one line per change, the Sleuth Kit body
// file, escaped paths and times). It is pure and portable: it reads no
// filesystem, never talks to containerd, and builds on every platform, so the
// lab side (verify, custody, image analysis) depends on these types only. The
// analyses live in its subpackages: diff (walkers), changetar (the changes as
// an OCI layer), procfs (processes) and imagefs (image layers).
package forensic

import (
	"time"

	"github.com/opencontainers/go-digest"
)

// Kind says how a path differs from the image: added, changed or deleted.
type Kind string

// The kinds of change, with the letters docker diff prints.
const (
	Added   Kind = "A"
	Changed Kind = "C"
	Deleted Kind = "D"
)

// FileType is the type of a filesystem entry.
type FileType string

// The file types ctrforensics reports.
const (
	TypeFile    FileType = "file"
	TypeDir     FileType = "dir"
	TypeSymlink FileType = "symlink"
	TypeFIFO    FileType = "fifo"
	TypeSocket  FileType = "socket"
	TypeChar    FileType = "char"
	TypeBlock   FileType = "block"
	TypeUnknown FileType = "unknown"
)

// Metadata is everything the filesystem records about one entry. Times are UTC.
type Metadata struct {
	Type FileType
	// Mode holds the permission bits and the setuid, setgid and sticky bits.
	Mode     uint32
	UID, GID uint32
	Size     int64
	// Allocated is the space the entry occupies on disk; far below Size means sparse.
	Allocated int64
	Nlink     uint64
	Inode     uint64
	// Dev is the device the entry lives on, used to group hard links.
	Dev                 uint64
	Mtime, Atime, Ctime time.Time
	// Btime is the birth time, when the filesystem records it.
	Btime *time.Time
	// LinkTarget is a symlink's target as stored, never resolved.
	LinkTarget string
	// Xattrs holds every extended attribute, values as raw bytes, except
	// overlayfs's own bookkeeping in an upper directory.
	Xattrs             map[string][]byte
	DevMajor, DevMinor uint32
}

// Field names a metadata field that differs between a path and its image version.
type Field string

// The fields compared between a changed path and the image.
const (
	FieldType       Field = "type"
	FieldMode       Field = "mode"
	FieldUID        Field = "uid"
	FieldGID        Field = "gid"
	FieldSize       Field = "size"
	FieldMtime      Field = "mtime"
	FieldNlink      Field = "nlink"
	FieldXattrs     Field = "xattrs"
	FieldLinkTarget Field = "link_target"
	FieldDevice     Field = "device"
	FieldContent    Field = "content"
)

// Change is one path that differs between a container's filesystem and its image.
type Change struct {
	Kind Kind
	// Path is absolute inside the container and may hold any bytes but NUL.
	Path string
	// Meta describes the path as it is now; for a deletion, as it was in the image.
	Meta *Metadata
	// Base describes the path in the image, for a change.
	Base *Metadata
	// Digest is the sha256 of the current content of a regular file.
	Digest digest.Digest
	// BaseDigest is the sha256 of the image's content of a regular file that
	// was changed (also into another type) or deleted.
	BaseDigest digest.Digest
	// Fields lists what differs from the image for a change. It is empty for a
	// directory listed only because something below it changed, and for a file
	// copied up without any difference.
	Fields []Field
	// NotHashed says why a regular file's content was not hashed, when it was
	// not; nil when it was hashed (or is not a regular file).
	NotHashed *NotHashed
	// Runtime is true for a path the container runtime created (a mount point
	// of the OCI spec and the directories holding only such paths).
	Runtime bool
	// HardLinkTo names another changed path that is the same inode.
	HardLinkTo string
	// LostWith is set on a deleted entry of the image that went with a
	// directory that was deleted or replaced by another type: it names that
	// directory (the outermost one that went). docker diff lists only the
	// directory; the entries are kept so that nothing the image held is
	// unaccounted for.
	LostWith string
	// CopyUpOnly says a non-directory was copied up into the container's
	// layer without any difference from the image (no field changed, content
	// equal): docker diff does not list it, and a double walk cannot see it.
	CopyUpOnly bool
	// Source says where the change was found: empty for the container's
	// snapshot, otherwise a mount the container could write outside it
	// (tmpfs, a runtime bind-mounted file, a volume).
	Source Source
	// Mount is the destination of that mount inside the container (Path is
	// below it, or it is the mounted file itself); empty for the snapshot.
	Mount string
	// Package is the package that owns the path and its integrity against
	// the image's package records, when a package database is present.
	Package *PackageInfo
}

// InTable reports whether the change is one docker diff would print: every
// change but the entries lost with a directory (the directory's own line
// stands for them) and files copied up without a difference.
func (c *Change) InTable() bool {
	return c.LostWith == "" && !c.CopyUpOnly
}

// ContentChanged tells whether the bytes of the path differ from the image: the
// content of a file, the target of a symlink, the device of a node. An added or
// deleted entry other than a directory counts as a content change. The second
// result is false when it cannot be told because a file was not hashed, or
// for a file mounted over the image's, which is not compared with it.
func (c *Change) ContentChanged() (changed, known bool) {
	if c.Source != SourceSnapshot && c.Kind == Changed && c.Base == nil {
		return false, false // a mounted file shadowing the image's: not compared
	}
	switch c.Kind {
	case Added, Deleted:
		return c.Meta.Type != TypeDir, true
	}
	for _, f := range c.Fields {
		switch f {
		case FieldContent, FieldLinkTarget, FieldDevice:
			return true, true
		case FieldType:
			return c.Meta.Type != TypeDir || c.Base.Type != TypeDir, true
		}
	}
	if c.NotHashed != nil && c.Meta.Type == TypeFile {
		return false, false
	}
	return false, true
}

// Has reports whether field differs from the image.
func (c *Change) Has(field Field) bool {
	for _, f := range c.Fields {
		if f == field {
			return true
		}
	}
	return false
}
