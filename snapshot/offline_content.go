package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"

	"github.com/ctrforensics/ctrforensics/snapshot/contentdir"
)

// diskContent is a disk root's content store for containerd's metadata
// layer: a contentdir.Store (blobs opened without following symlinks or
// moving access times, digests checked while reading) with what a
// content.Store needs on top: Walk, which lists without moving access
// times, and writing methods that refuse.
type diskContent struct {
	*contentdir.Store
}

var _ content.Store = diskContent{}

// newDiskContent reads the content store of the containerd root root; a
// root without one holds no blob.
func newDiskContent(root string) diskContent {
	return diskContent{contentdir.At(filepath.Join(root, contentdir.Dir))}
}

// Walk calls fn for every blob the store holds (containerd calls it only to
// collect garbage, which never runs on a disk root).
func (s diskContent) Walk(ctx context.Context, fn content.WalkFunc, _ ...string) error {
	root := filepath.Join(s.Path(), "blobs")
	algs, err := readDirNoatime(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("walk %s: %w", root, err)
	}
	for _, alg := range algs {
		names, err := readDirNoatime(filepath.Join(root, alg))
		if err != nil {
			return fmt.Errorf("walk %s: %w", root, err)
		}
		for _, n := range names {
			info, err := s.Info(ctx, digest.NewDigestFromEncoded(digest.Algorithm(alg), n))
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
func (diskContent) Update(context.Context, content.Info, ...string) (content.Info, error) {
	return content.Info{}, errReadOnly
}

// Delete is refused: a disk root is read-only.
func (diskContent) Delete(context.Context, digest.Digest) error { return errReadOnly }

// Status finds no ingest: ingests are never read offline.
func (diskContent) Status(_ context.Context, ref string) (content.Status, error) {
	return content.Status{}, fmt.Errorf("ingest %s: %w", ref, errdefs.ErrNotFound)
}

// ListStatuses lists no ingest.
func (diskContent) ListStatuses(context.Context, ...string) ([]content.Status, error) {
	return nil, nil
}

// Abort is refused: a disk root is read-only.
func (diskContent) Abort(context.Context, string) error { return errReadOnly }

// Writer is refused: a disk root is read-only.
func (diskContent) Writer(context.Context, ...content.WriterOpt) (content.Writer, error) {
	return nil, errReadOnly
}
