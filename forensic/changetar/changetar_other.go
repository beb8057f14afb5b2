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
