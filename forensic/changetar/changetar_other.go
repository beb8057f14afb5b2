//go:build !linux

package changetar

import (
	"context"
	"errors"
	"io"

	"github.com/ctrforensics/ctrforensics/forensic"
)

// WriteChangesTar reads a container's tree, which needs Linux.
func WriteChangesTar(ctx context.Context, w io.Writer, root string, changes []forensic.Change, opts Options) (*TarStats, error) {
	return nil, errors.ErrUnsupported
}

// WriteUnsafeTar reads a container's tree, which needs Linux.
func WriteUnsafeTar(ctx context.Context, w io.Writer, root string, changes []forensic.Change, opts Options) (*TarStats, error) {
	return nil, errors.ErrUnsupported
}

// WritePlainTar reads a tree, which needs Linux.
func WritePlainTar(ctx context.Context, w io.Writer, root string, changes []forensic.Change, opts Options) (*TarStats, error) {
	return nil, errors.ErrUnsupported
}

// Archive is a planned tar of changes; planning one needs Linux.
type Archive struct{}

// Plan reads a tree, which needs Linux.
func Plan(ctx context.Context, root string, changes []forensic.Change, kind Kind, opts Options) (*Archive, error) {
	return nil, errors.ErrUnsupported
}

// Size is the size of the archive.
func (a *Archive) Size() int64 { return 0 }

// WriteTo writes the archive, which needs Linux.
func (a *Archive) WriteTo(ctx context.Context, w io.Writer) (*TarStats, error) {
	return nil, errors.ErrUnsupported
}
