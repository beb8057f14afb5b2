package snapshot

import (
	"os"
	"path/filepath"

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

// sameFilesystem tells whether a (or, when it does not exist yet, where it
// would be created) is on the filesystem (device) of b.
func sameFilesystem(a, b string) (bool, error) {
	a, err := existingAncestor(filepath.Join(a, "x"))
	if err != nil {
		return false, err
	}
	var sa, sb unix.Stat_t
	if err := unix.Stat(a, &sa); err != nil {
		return false, &os.PathError{Op: "stat", Path: a, Err: err}
	}
	if err := unix.Stat(b, &sb); err != nil {
		return false, &os.PathError{Op: "stat", Path: b, Err: err}
	}
	return sa.Dev == sb.Dev, nil
}

// heldByDaemon tells whether a process holds the bolt database at path
// locked, as a running containerd holds its own: it tries a shared lock
// without waiting, on a descriptor opened without moving the access time
// (and without blocking on a FIFO planted there), and reads nothing. When it
// cannot tell, it says held.
func heldByDaemon(path string) bool {
	fd, err := fdio.OpenNoatime(unix.AT_FDCWD, path, fdio.FileFlags)
	if err != nil {
		return true
	}
	defer fdio.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return true
	}
	return unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB) != nil
}
