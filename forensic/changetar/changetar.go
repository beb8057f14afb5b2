// Package changetar writes a container's changes as an OCI layer tar: applied
// over the image, it gives the container's filesystem. It reads the
// container's tree through a read-only mount, by descriptor (never following a
// symlink, with O_NOATIME, never opening a FIFO or device), and keeps a bounded
// number of descriptors open however deep the tree.
package changetar

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
}
