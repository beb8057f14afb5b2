package bagit

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/internal/fdio"
)

// fstatat returns the metadata of name below dirfd without following a
// symlink.
func fstatat(dirfd int, name string) (unix.Stat_t, error) {
	return fdio.Fstatat(dirfd, name)
}

// kindOf names the type of a file that is neither regular nor a directory.
func kindOf(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFBLK:
		return "block device"
	case unix.S_IFSOCK:
		return "socket"
	}
	if mode&unix.S_IFMT == unix.S_IFDIR {
		return "directory"
	}
	return fmt.Sprintf("file of mode %#o", mode)
}

func isDir(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFDIR }

func isReg(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFREG }

// walkFunc is called by walk for each entry below a directory; rel is the
// entry's path relative to the walk's root. Returning descend true for a
// directory walks into it.
type walkFunc func(ctx context.Context, dirfd int, name, rel string, st *unix.Stat_t) (descend bool, err error)

// failFunc is called by walk for an entry or directory it cannot read; a nil
// return carries on with the next entry.
type failFunc func(rel string, err error) error

// walk calls fn for every entry below dirfd in sorted order, directories
// before their contents, without ever following a symlink.
func walk(ctx context.Context, dirfd int, rel string, fn walkFunc, fail failFunc) error {
	names, err := fdio.ReadNames(dirfd)
	if err != nil {
		return fail(displayRel(rel), err)
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		child := joinRel(rel, name)
		st, err := fstatat(dirfd, name)
		if err != nil {
			if err := fail(child, fmt.Errorf("stat: %w", err)); err != nil {
				return err
			}
			continue
		}
		descend, err := fn(ctx, dirfd, name, child, &st)
		if err != nil {
			return err
		}
		if descend && isDir(&st) {
			if err := walkInto(ctx, dirfd, name, child, fn, fail); err != nil {
				return err
			}
		}
	}
	return nil
}

// walkInto walks the directory name below dirfd.
func walkInto(ctx context.Context, dirfd int, name, rel string, fn walkFunc, fail failFunc) error {
	fd, err := fdio.OpenNoatime(dirfd, name, fdio.DirFlags)
	if err != nil {
		return fail(rel, fmt.Errorf("open directory: %w", err))
	}
	defer unix.Close(fd)
	return walk(ctx, fd, rel, fn, fail)
}

// openRoot opens a directory named by the caller; a symlink is refused.
func openRoot(dir string) (int, error) {
	fd, err := fdio.OpenNoatime(unix.AT_FDCWD, dir, fdio.DirFlags)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", dir, err)
	}
	return fd, nil
}

// openFile opens the regular file rel below rootfd, one component at a time
// and never following a symlink, and returns it with its metadata.
func openFile(rootfd int, rel string) (*fdFile, error) {
	dirfd := rootfd
	parts := strings.Split(rel, "/")
	for _, p := range parts[:len(parts)-1] {
		fd, err := fdio.OpenNoatime(dirfd, p, fdio.DirFlags)
		if dirfd != rootfd {
			unix.Close(dirfd)
		}
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", rel, err)
		}
		dirfd = fd
	}
	f, err := openRegular(dirfd, parts[len(parts)-1])
	if dirfd != rootfd {
		unix.Close(dirfd)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", rel, err)
	}
	return f, nil
}

// notRegularError is returned when a file turns out not to be a regular file.
type notRegularError struct{ mode uint32 }

func (e notRegularError) Error() string { return kindOf(e.mode) + ", not a regular file" }

// openRegular opens name below dirfd and checks that it is a regular file.
func openRegular(dirfd int, name string) (*fdFile, error) {
	fd, err := fdio.OpenNoatime(dirfd, name, fdio.FileFlags)
	if err != nil {
		return nil, err
	}
	f := &fdFile{fd: fd}
	if err := unix.Fstat(fd, &f.st); err != nil {
		f.Close()
		return nil, fmt.Errorf("fstat: %w", err)
	}
	if !isReg(&f.st) {
		f.Close()
		return nil, notRegularError{f.st.Mode}
	}
	return f, nil
}

// fdFile reads a file descriptor without the bookkeeping of os.File.
type fdFile struct {
	fd int
	st unix.Stat_t
}

// Read reads from the file.
func (f *fdFile) Read(b []byte) (int, error) { return fdio.Read(f.fd, b) }

// Close closes the descriptor.
func (f *fdFile) Close() error { return unix.Close(f.fd) }
