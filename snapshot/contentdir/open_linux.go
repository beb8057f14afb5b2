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
