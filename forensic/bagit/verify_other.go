//go:build !linux

package bagit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrUnsupported is returned for what this build cannot do: reading a bag
// directory or packing one needs the descriptor-relative file access of
// Linux, so on other systems only tar bags are verified.
var ErrUnsupported = errors.New("bag directories are read on Linux only; verify the bag's .tar or .tar.gz")

// Verify checks the tar or gzip-compressed tar bag at path, as on Linux; a
// bag directory is ErrUnsupported.
func Verify(ctx context.Context, path string, opts Options) (*Result, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("verify bag %s: %w", path, err)
	}
	switch {
	case fi.IsDir():
		return nil, fmt.Errorf("verify bag %s: %w", path, ErrUnsupported)
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
