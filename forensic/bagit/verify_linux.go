package bagit

import (
	"context"
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// Verify checks the bag at path: a directory, a tar file or a gzip-compressed
// tar file (recognised by its magic bytes). It never writes and never follows
// a symlink. The error is for a bag that cannot be read at all; everything
// wrong inside a readable bag is a Problem in the Result.
func Verify(ctx context.Context, path string, opts Options) (*Result, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return nil, fmt.Errorf("verify bag %s: %w", path, err)
	}
	switch {
	case isDir(&st):
		return verifyDir(ctx, path, opts)
	case isReg(&st):
		open := func() (io.ReadCloser, error) {
			f, err := openRegular(unix.AT_FDCWD, path)
			if err != nil {
				return nil, fmt.Errorf("open %s: %w", path, err)
			}
			return f, nil
		}
		return verifyTar(ctx, open, opts)
	}
	return nil, fmt.Errorf("verify bag %s: %s, not a directory or tar file", path, kindOf(st.Mode))
}
