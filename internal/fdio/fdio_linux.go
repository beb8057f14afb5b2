// Package fdio holds the descriptor-relative file access every walker of
// ctrforensics shares, and is the only place that enforces its soundness
// promises:
//
//   - every open is relative to an open directory descriptor and carries
//     O_NOFOLLOW, so a path can neither escape its root nor exceed PATH_MAX,
//     and a symlink is never followed;
//   - files and directories are opened with O_NOATIME where the kernel allows
//     it (the caller owns the file or has CAP_FOWNER);
//   - a regular file is opened only after an O_PATH descriptor proved it is
//     still the regular file that was stat'ed (OpenRegular), so a FIFO or a
//     device swapped in is never opened;
//   - every system call is retried on EINTR.
package fdio

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"

	"golang.org/x/sys/unix"
)

// Open flags. Every open of the project uses one of these.
const (
	// DirFlags open a directory for listing, never through a symlink.
	DirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	// FileFlags open a file for reading, never through a symlink; O_NONBLOCK
	// keeps an unexpected FIFO from blocking the open.
	FileFlags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	// PathFlags take an O_PATH descriptor of an entry itself, which opens
	// nothing: it may be stat'ed and reopened through /proc/self/fd.
	PathFlags = unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC
)

// ErrReplaced says an entry is no longer the regular file that was stat'ed.
var ErrReplaced = errors.New("entry replaced while it was read")

// OpenNoatime opens name below dirfd with O_NOATIME when the process may use
// it (it owns the file or has CAP_FOWNER), and without it otherwise; flags
// should include O_NOFOLLOW.
func OpenNoatime(dirfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags|unix.O_NOATIME, 0)
		if err == unix.EPERM {
			fd, err = unix.Openat(dirfd, name, flags, 0)
		}
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// OpenDir opens the directory name below dirfd (unix.AT_FDCWD for a path the
// caller names) with DirFlags and O_NOATIME.
func OpenDir(dirfd int, name string) (int, error) {
	fd, err := OpenNoatime(dirfd, name, DirFlags)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return fd, nil
}

// OpenRegular opens the regular file name below dirfd for reading, as the inode
// ino that the caller stat'ed. It takes an O_PATH descriptor first (which
// opens nothing), checks that it is that regular file, and only then reopens
// that very inode through /proc/self/fd: a file swapped for a FIFO or a device
// between the stat and the open is never opened (ErrReplaced).
func OpenRegular(dirfd int, name string, ino uint64) (int, error) {
	pfd, err := openat(dirfd, name, PathFlags)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := fstat(pfd, &st); err != nil {
		return -1, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Ino != ino {
		return -1, ErrReplaced
	}
	return OpenNoatime(unix.AT_FDCWD, ProcPath(pfd), unix.O_RDONLY|unix.O_CLOEXEC)
}

// ProcPath names the inode an open descriptor holds, through /proc/self/fd.
func ProcPath(fd int) string {
	return "/proc/self/fd/" + strconv.Itoa(fd)
}

// Close closes fd, ignoring -1.
func Close(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}

// Read reads from fd, retrying on EINTR and EAGAIN; it returns io.EOF at the
// end of the file.
func Read(fd int, p []byte) (int, error) {
	for {
		n, err := unix.Read(fd, p)
		switch {
		case err == unix.EINTR || err == unix.EAGAIN:
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// File is an open descriptor read with Read; it has none of the bookkeeping of
// os.File.
type File int

// Read implements io.Reader.
func (f File) Read(p []byte) (int, error) { return Read(int(f), p) }

// Close closes the descriptor.
func (f File) Close() error { return unix.Close(int(f)) }

// ReadNames returns the names in the directory dirfd, sorted bytewise, read
// from its start with getdents64; dirfd stays open and owned by the caller.
func ReadNames(dirfd int) ([]string, error) {
	if _, err := unix.Seek(dirfd, 0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("read directory: %w", err)
	}
	buf := make([]byte, 32<<10)
	var names []string
	for {
		n, err := unix.Getdents(dirfd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read directory: %w", err)
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	sort.Strings(names)
	return names, nil
}

// ReadlinkAt returns the target of the symlink name below dirfd, as stored;
// it is never resolved.
func ReadlinkAt(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// StatxMask is what Statx asks for: the basic fields and the birth time.
const StatxMask = unix.STATX_BASIC_STATS | unix.STATX_BTIME

// Statx describes the entry name below dirfd itself (never a symlink's target,
// never triggering an automount).
func Statx(dirfd int, name string, stx *unix.Statx_t) error {
	const flags = unix.AT_SYMLINK_NOFOLLOW | unix.AT_NO_AUTOMOUNT | unix.AT_STATX_SYNC_AS_STAT
	for {
		err := unix.Statx(dirfd, name, flags, StatxMask, stx)
		if err != unix.EINTR {
			return err
		}
	}
}

// Fstatat is fstatat(2) with AT_SYMLINK_NOFOLLOW, retried on EINTR.
func Fstatat(dirfd int, name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err != unix.EINTR {
			return st, err
		}
	}
}

func fstat(fd int, st *unix.Stat_t) error {
	for {
		err := unix.Fstat(fd, st)
		if err != unix.EINTR {
			return err
		}
	}
}

func openat(dirfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}
