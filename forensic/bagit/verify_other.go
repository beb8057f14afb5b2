//go:build !linux

package bagit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrUnsupported is returned for what this build cannot do: packing a bag
// is done on the Linux host that collects it.
var ErrUnsupported = errors.New("packing a bag needs Linux")

// Verify checks the bag at path, a directory (through os.Root, see
// verifyRoot), a tar file or a gzip-compressed tar file, as on Linux.
func Verify(ctx context.Context, path string, opts Options) (*Result, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("verify bag %s: %w", path, err)
	}
	switch {
	case fi.IsDir():
		return verifyRoot(ctx, path, opts)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("verify bag %s: %s, not a directory or tar file", path, fi.Mode().Type())
	}
	open := func() (io.ReadCloser, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		return f, nil
	}
	return verifyTar(ctx, open, opts)
}

// Pack is ErrUnsupported outside Linux.
func Pack(dir string, _ io.Writer, _ bool) error {
	return fmt.Errorf("pack bag %s: %w", dir, ErrUnsupported)
}
