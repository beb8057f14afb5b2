package fsread

import (
	"context"
	"crypto/sha256"
	"io"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/internal/fdio"
)

const bufferSize = 1 << 20

// Hasher computes sha256 digests of regular files, reading at most a fixed
// number of bytes of each. It is not safe for concurrent use.
type Hasher struct {
	buf      []byte
	maxBytes int64
	// files and bytes count the work done, for progress reports.
	files, bytes int64
}

// NewHasher returns a Hasher that reads at most maxBytes of a file
// (DefaultMaxBytes when maxBytes is 0 or less).
func NewHasher(maxBytes int64) *Hasher {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	return &Hasher{maxBytes: maxBytes} // buf on the first file: many walks hash none
}

// MaxBytes is the size limit.
func (h *Hasher) MaxBytes() int64 { return h.maxBytes }

// Files and Bytes count the files hashed and the bytes read.
func (h *Hasher) Files() int64 { return h.files }

// Bytes counts the bytes of the files hashed.
func (h *Hasher) Bytes() int64 { return h.bytes }

// Hash returns the sha256 of the regular file name below dirfd whose metadata
// md was read just before. When the file is not hashed, the digest is empty and
// the reason says why; an error is returned only when the walk cannot go on.
func (h *Hasher) Hash(ctx context.Context, dirfd int, name string, md *forensic.Metadata) (digest.Digest, *forensic.NotHashed, error) {
	if md.Size > h.maxBytes {
		return "", forensic.NewTooLarge(md.Size, h.maxBytes), nil
	}
	fd, err := OpenRegular(dirfd, name, md)
	if err != nil {
		return "", forensic.NewOpenFailed(err), nil
	}
	defer unix.Close(fd)
	return h.HashFD(ctx, fd)
}

// HashFD returns the sha256 of what remains to be read of the open file fd,
// as Hash does.
func (h *Hasher) HashFD(ctx context.Context, fd int) (digest.Digest, *forensic.NotHashed, error) {
	if h.buf == nil {
		h.buf = make([]byte, bufferSize)
	}
	w := sha256.New()
	var total int64
	for chunk := 0; ; chunk++ {
		if chunk%64 == 0 {
			if err := ctx.Err(); err != nil {
				return "", nil, err
			}
		}
		n, err := fdio.Read(fd, h.buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", forensic.NewReadFailed(total, err), nil
		}
		w.Write(h.buf[:n])
		total += int64(n)
		if total > h.maxBytes {
			return "", forensic.NewGrewTooLarge(h.maxBytes), nil
		}
	}
	h.files++
	h.bytes += total
	return digest.NewDigest(digest.SHA256, w), nil, nil
}
