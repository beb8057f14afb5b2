package forensic

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/internal/fdio"
)

// DefaultMaxHashBytes is the size above which a file is not hashed unless the
// caller raises the limit: large enough for any ordinary file, small enough that a
// hostile sparse file of a terabyte cannot stall an analysis.
const DefaultMaxHashBytes int64 = 16 << 30

const hashBufferSize = 1 << 20

// hasher computes sha256 digests of regular files below a directory descriptor.
type hasher struct {
	buf      []byte
	maxBytes int64
	// files and bytes count the work done, for progress reports.
	files, bytes int64
}

func newHasher(maxBytes int64) *hasher {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxHashBytes
	}
	return &hasher{buf: make([]byte, hashBufferSize), maxBytes: maxBytes}
}

// hash returns the sha256 of the regular file name below dirfd whose metadata
// md was read just before. When the file is not hashed, the digest is empty and
// the reason says why; an error is returned only when the walk cannot go on.
func (h *hasher) hash(ctx context.Context, dirfd int, name string, md *Metadata) (digest.Digest, string, error) {
	if md.Size > h.maxBytes {
		return "", fmt.Sprintf("size %d exceeds --max-hash-bytes %d", md.Size, h.maxBytes), nil
	}
	fd, err := openRegular(dirfd, name, md)
	if err != nil {
		return "", fmt.Sprintf("open failed: %v", err), nil
	}
	defer unix.Close(fd)
	w := sha256.New()
	var total int64
	for chunk := 0; ; chunk++ {
		if chunk%64 == 0 {
			if err := ctx.Err(); err != nil {
				return "", "", err
			}
		}
		n, err := fdio.Read(fd, h.buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Sprintf("read failed after %d bytes: %v", total, err), nil
		}
		w.Write(h.buf[:n])
		total += int64(n)
		if total > h.maxBytes {
			return "", fmt.Sprintf("grew beyond --max-hash-bytes %d while it was read", h.maxBytes), nil
		}
	}
	h.files++
	h.bytes += total
	return digest.NewDigest(digest.SHA256, w), "", nil
}
