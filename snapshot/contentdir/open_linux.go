package contentdir

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/internal/fdio"
)

// openBlob opens a blob read-only, never through a symlink, with O_NOATIME
// where permitted (O_NONBLOCK: a FIFO planted there cannot block the open).
func openBlob(p string) (*os.File, error) {
	fd, err := fdio.OpenNoatime(unix.AT_FDCWD, p, fdio.FileFlags)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// listDir lists the directory p, never through a symlink, without moving its
// access time where permitted: it fails unless this process may read it.
func listDir(p string) error {
	fd, err := fdio.OpenDir(unix.AT_FDCWD, p)
	if err != nil {
		return err
	}
	defer fdio.Close(fd)
	if _, err := fdio.ReadNames(fd); err != nil {
		return &os.PathError{Op: "readdir", Path: p, Err: err}
	}
	return nil
}
