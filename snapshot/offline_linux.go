package snapshot

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/internal/fdio"
)

// openNoatime opens the file at path for reading without following a symlink
// and, where permitted, without updating its access time.
func openNoatime(path string) (*os.File, error) {
	fd, err := fdio.OpenNoatime(unix.AT_FDCWD, path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// onReadOnlyMount tells whether path is on a read-only mount; when it cannot
// tell, it says no.
func onReadOnlyMount(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Flags&unix.ST_RDONLY != 0
}

// readDirNoatime lists the names in the directory at path without moving its
// access time.
func readDirNoatime(path string) ([]string, error) {
	fd, err := fdio.OpenDir(unix.AT_FDCWD, path)
	if err != nil {
		return nil, err
	}
	defer fdio.Close(fd)
	return fdio.ReadNames(fd)
}
