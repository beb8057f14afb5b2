// Package fdio holds the descriptor-relative file access every walker of
// ctrforensics shares: opening below a directory descriptor with O_NOATIME
// where the kernel allows it, listing a directory, reading a symlink. Working
// from descriptors keeps a path inside its root and lets trees deeper than
// PATH_MAX be read.
package fdio

import (
	"fmt"
	"io"
	"sort"

	"golang.org/x/sys/unix"
)

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
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}
