// Package contentdir reads containerd's local content store straight from its
// directory (<root>/io.containerd.content.v1.content): a blob is the file
// blobs/<algorithm>/<hex>, named by its digest.
//
// Invariants: nothing here writes, creates or renames anything in the content
// store (no ingest directory, no lock; an IndexCache writes only in its own
// directory, which must be outside it); blobs are opened with O_NOFOLLOW and, where permitted,
// O_NOATIME, so reading one changes neither its access time nor anything
// else; a blob that is not a regular file is refused; and every byte served
// is checked: a blob read from start to end in order is hashed as it goes,
// and its last read fails with a *CorruptBlobError when the bytes do not
// match the digest or the expected size. A read out of that order checks the
// whole blob first. The digest, not the directory, vouches for the content, so
// a directory that is not the daemon's own cannot serve wrong bytes.
//
// Store implements containerd's content.Provider and content.InfoProvider; a
// read-only content.Store for a dead host's disk can embed it.
package contentdir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Dir is the content store's directory below containerd's root.
const Dir = "io.containerd.content.v1.content"

// Store reads blobs from a content store directory.
type Store struct {
	dir string
}

var (
	_ content.Provider     = (*Store)(nil)
	_ content.InfoProvider = (*Store)(nil)
)

// Open returns the store in dir, the content store directory itself (a
// containerd root's Dir). It fails unless dir/blobs is a directory this
// process may list; listing it does not move its access time.
func Open(dir string) (*Store, error) {
	if err := listDir(filepath.Join(dir, "blobs")); err != nil {
		return nil, fmt.Errorf("content store %s: %w", dir, err)
	}
	return &Store{dir: dir}, nil
}

// At returns the store in dir without looking at it: a directory that does
// not exist holds no blob (every blob is errdefs.ErrNotFound).
func At(dir string) *Store { return &Store{dir: dir} }

// Path returns the store's directory.
func (s *Store) Path() string { return s.dir }

// BlobPath returns where the blob of digest d is, once d is valid.
func (s *Store) BlobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("blob %q: %w: %w", d, err, errdefs.ErrInvalidArgument)
	}
	return filepath.Join(s.dir, "blobs", d.Algorithm().String(), d.Encoded()), nil
}

// Info returns a blob's digest and size (its times are the file's mtime;
// labels live in containerd's metadata, not here).
func (s *Store) Info(_ context.Context, d digest.Digest) (content.Info, error) {
	p, err := s.BlobPath(d)
	if err != nil {
		return content.Info{}, err
	}
	fi, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return content.Info{}, fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
	}
	if err != nil {
		return content.Info{}, fmt.Errorf("blob %s: %w", d, err)
	}
	if !fi.Mode().IsRegular() {
		return content.Info{}, fmt.Errorf("blob %s at %s is not a regular file", d, p)
	}
	return content.Info{Digest: d, Size: fi.Size(), CreatedAt: fi.ModTime(), UpdatedAt: fi.ModTime()}, nil
}

// ReaderAt opens the blob of desc, as containerd's content.Provider does.
func (s *Store) ReaderAt(_ context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	return s.Open(desc)
}

// Open opens the blob of desc. desc.Size, when set, must be the blob's size.
// A missing blob is errdefs.ErrNotFound.
func (s *Store) Open(desc ocispec.Descriptor) (*Blob, error) {
	p, err := s.BlobPath(desc.Digest)
	if err != nil {
		return nil, err
	}
	f, err := openBlob(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", desc.Digest, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open blob %s: %w", desc.Digest, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("blob %s at %s is not a regular file", desc.Digest, p)
	}
	if desc.Size > 0 && fi.Size() != desc.Size {
		f.Close()
		return nil, &CorruptBlobError{Digest: desc.Digest, Path: p, Reason: fmt.Sprintf("%d bytes, the descriptor says %d", fi.Size(), desc.Size)}
	}
	return &Blob{f: f, size: fi.Size(), d: desc.Digest, path: p, v: desc.Digest.Verifier()}, nil
}

// CorruptBlobError says a blob's bytes do not match its digest or size.
type CorruptBlobError struct {
	Digest digest.Digest
	Path   string
	Reason string
}

func (e *CorruptBlobError) Error() string {
	return fmt.Sprintf("blob %s at %s does not match its digest (%s): the content store is damaged or was tampered with", e.Digest, e.Path, e.Reason)
}

// Blob is an open blob that checks its digest as it is read.
type Blob struct {
	f    *os.File
	size int64
	d    digest.Digest
	path string

	mu   sync.Mutex
	v    digest.Verifier
	next int64 // bytes hashed so far, in order
	done bool  // the digest was checked and matched
	err  error // the check failed: every later read fails
}

// ReadAt reads from the blob. The read that reaches the end of the blob in
// order, or the first read out of order, checks the digest.
func (b *Blob) ReadAt(p []byte, off int64) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	if !b.done && off != b.next {
		if err := b.checkAll(); err != nil {
			return 0, err
		}
	}
	n, err := b.f.ReadAt(p, off)
	if b.done {
		return n, err
	}
	b.v.Write(p[:n])
	b.next += int64(n)
	if b.next >= b.size || err == io.EOF {
		if b.next != b.size {
			b.err = &CorruptBlobError{Digest: b.d, Path: b.path, Reason: "it changed size while read"}
			return n, b.err
		}
		if !b.v.Verified() {
			b.err = &CorruptBlobError{Digest: b.d, Path: b.path, Reason: "content mismatch"}
			return n, b.err
		}
		b.done = true
	}
	return n, err
}

// checkAll hashes the whole blob.
func (b *Blob) checkAll() error {
	v := b.d.Verifier()
	if _, err := io.Copy(v, io.NewSectionReader(b.f, 0, b.size)); err != nil {
		return fmt.Errorf("read blob %s: %w", b.d, err)
	}
	if !v.Verified() {
		b.err = &CorruptBlobError{Digest: b.d, Path: b.path, Reason: "content mismatch"}
		return b.err
	}
	b.done = true
	return nil
}

// Reader returns a reader of the whole blob from its start. Its read that
// reaches the end fails on a mismatch, and so does every read after it, end
// of blob included: a consumer that drops an error returned along with data
// still meets it on its next read.
func (b *Blob) Reader() io.Reader { return &blobReader{b: b} }

type blobReader struct {
	b   *Blob
	off int64
}

func (r *blobReader) Read(p []byte) (int, error) {
	if r.off >= r.b.size {
		r.b.mu.Lock()
		err := r.b.err
		r.b.mu.Unlock()
		if err != nil {
			return 0, err
		}
		if r.b.size == 0 {
			// An empty blob: check it once.
			if _, err := r.b.ReadAt(nil, 0); err != nil && err != io.EOF {
				return 0, err
			}
		}
		return 0, io.EOF
	}
	if max := r.b.size - r.off; int64(len(p)) > max {
		p = p[:max]
	}
	n, err := r.b.ReadAt(p, r.off)
	r.off += int64(n)
	if err == io.EOF && r.off >= r.b.size {
		err = nil
	}
	return n, err
}

// Size is the blob's size.
func (b *Blob) Size() int64 { return b.size }

// Close closes the blob.
func (b *Blob) Close() error { return b.f.Close() }
