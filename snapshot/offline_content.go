package snapshot

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

// contentDir is where containerd's content store keeps its blobs under a root.
const contentDir = "io.containerd.content.v1.content"

// CorruptBlobError says a blob's bytes do not match its digest.
type CorruptBlobError struct {
	Digest digest.Digest
	Path   string
}

func (e *CorruptBlobError) Error() string {
	return fmt.Sprintf("blob %s at %s does not match its digest: the content store is damaged or was tampered with", e.Digest, e.Path)
}

// diskContent is containerd's content store read straight from disk: it never
// writes (no ingest directory is created), opens blobs without moving their
// access times, and checks every blob's digest as it is read.
type diskContent struct {
	dir string // .../io.containerd.content.v1.content
}

var _ content.Store = (*diskContent)(nil)

func (s *diskContent) blobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("%s: %w", d, errdefs.ErrInvalidArgument)
	}
	return filepath.Join(s.dir, "blobs", d.Algorithm().String(), d.Encoded()), nil
}

// Info returns a blob's size and times; labels are meta.db's.
func (s *diskContent) Info(_ context.Context, d digest.Digest) (content.Info, error) {
	p, err := s.blobPath(d)
	if err != nil {
		return content.Info{}, err
	}
	fi, err := os.Lstat(p)
	if os.IsNotExist(err) {
		return content.Info{}, fmt.Errorf("content %s: %w", d, errdefs.ErrNotFound)
	}
	if err != nil {
		return content.Info{}, err
	}
	if !fi.Mode().IsRegular() {
		return content.Info{}, fmt.Errorf("blob %s at %s is not a regular file", d, p)
	}
	return content.Info{Digest: d, Size: fi.Size(), CreatedAt: fi.ModTime(), UpdatedAt: fi.ModTime()}, nil
}

// ReaderAt opens a blob; reading it to its end checks its digest.
func (s *diskContent) ReaderAt(_ context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	p, err := s.blobPath(desc.Digest)
	if err != nil {
		return nil, err
	}
	f, err := openNoatime(p)
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("content %s: %w", desc.Digest, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("blob %s at %s is not a regular file", desc.Digest, p)
	}
	return &verifiedBlob{f: f, size: fi.Size(), d: desc.Digest, path: p, v: desc.Digest.Verifier()}, nil
}

// Walk calls fn for every blob the store holds (containerd calls it only to
// collect garbage, which never runs on a disk root).
func (s *diskContent) Walk(ctx context.Context, fn content.WalkFunc, _ ...string) error {
	root := filepath.Join(s.dir, "blobs")
	algs, err := readDirNoatime(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, alg := range algs {
		names, err := readDirNoatime(filepath.Join(root, alg))
		if err != nil {
			return err
		}
		for _, n := range names {
			d := digest.NewDigestFromEncoded(digest.Algorithm(alg), n)
			info, err := s.Info(ctx, d)
			if err != nil {
				continue // not a blob
			}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

// errReadOnly is what every writing method of an offline store returns.
var errReadOnly = fmt.Errorf("a disk root is read-only: %w", errdefs.ErrNotImplemented)

// Update is refused: a disk root is read-only.
func (s *diskContent) Update(context.Context, content.Info, ...string) (content.Info, error) {
	return content.Info{}, errReadOnly
}

// Delete is refused: a disk root is read-only.
func (s *diskContent) Delete(context.Context, digest.Digest) error { return errReadOnly }

// Status finds no ingest: ingests are never read offline.
func (s *diskContent) Status(_ context.Context, ref string) (content.Status, error) {
	return content.Status{}, fmt.Errorf("ingest %s: %w", ref, errdefs.ErrNotFound)
}

// ListStatuses lists no ingest.
func (s *diskContent) ListStatuses(context.Context, ...string) ([]content.Status, error) {
	return nil, nil
}

// Abort is refused: a disk root is read-only.
func (s *diskContent) Abort(context.Context, string) error { return errReadOnly }

// Writer is refused: a disk root is read-only.
func (s *diskContent) Writer(context.Context, ...content.WriterOpt) (content.Writer, error) {
	return nil, errReadOnly
}

// verifiedBlob reads a blob and checks its digest: reads from the start to
// the end in order are hashed as they go; the first read out of that order
// checks the whole blob first. A mismatch fails the read that ends the check.
type verifiedBlob struct {
	f    *os.File
	size int64
	d    digest.Digest
	path string

	mu   sync.Mutex
	v    digest.Verifier
	next int64 // bytes hashed so far, in order
	done bool  // the digest was checked and matched
}

// ReadAt reads from the blob.
func (b *verifiedBlob) ReadAt(p []byte, off int64) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
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
	if b.next >= b.size {
		if !b.v.Verified() {
			return n, &CorruptBlobError{Digest: b.d, Path: b.path}
		}
		b.done = true
	}
	return n, err
}

// checkAll hashes the whole blob.
func (b *verifiedBlob) checkAll() error {
	v := b.d.Verifier()
	if _, err := io.Copy(v, io.NewSectionReader(b.f, 0, b.size)); err != nil {
		return fmt.Errorf("read blob %s: %w", b.d, err)
	}
	if !v.Verified() {
		return &CorruptBlobError{Digest: b.d, Path: b.path}
	}
	b.done = true
	return nil
}

// Size is the blob's size.
func (b *verifiedBlob) Size() int64 { return b.size }

// Close closes the blob.
func (b *verifiedBlob) Close() error { return b.f.Close() }
