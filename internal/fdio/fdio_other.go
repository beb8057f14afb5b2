//go:build !linux

package fdio

import (
	"errors"
	"fmt"
	"runtime"
)

// errUnsupported is returned by every call on systems other than Linux: the
// walkers need openat2-era Linux semantics (O_PATH, O_NOATIME, statx).
var errUnsupported = fmt.Errorf("descriptor-relative file access on %s: %w", runtime.GOOS, errors.ErrUnsupported)

// ErrReplaced says an entry is no longer the regular file that was stat'ed.
var ErrReplaced = errors.New("entry replaced while it was read")

// ErrDirReplaced says a directory reopened by name is not the one that was
// opened first.
var ErrDirReplaced = errors.New("directory replaced while the tree was read")

// DefaultDirBudget is the number of directory descriptors a Dirs keeps open at most.
const DefaultDirBudget = 128

// OpenNoatime is not supported outside Linux.
func OpenNoatime(dirfd int, name string, flags int) (int, error) { return -1, errUnsupported }

// OpenDir is not supported outside Linux.
func OpenDir(dirfd int, name string) (int, error) { return -1, errUnsupported }

// OpenRegular is not supported outside Linux.
func OpenRegular(dirfd int, name string, ino uint64) (int, error) { return -1, errUnsupported }

// Close does nothing outside Linux.
func Close(fd int) {}

// Read is not supported outside Linux.
func Read(fd int, p []byte) (int, error) { return 0, errUnsupported }

// File is an open descriptor.
type File int

// Read is not supported outside Linux.
func (f File) Read(p []byte) (int, error) { return 0, errUnsupported }

// Close is not supported outside Linux.
func (f File) Close() error { return errUnsupported }

// ReadNames is not supported outside Linux.
func ReadNames(dirfd int) ([]string, error) { return nil, errUnsupported }

// ReadlinkAt is not supported outside Linux.
func ReadlinkAt(dirfd int, name string) (string, error) { return "", errUnsupported }

// Xattrs is not supported outside Linux.
func Xattrs(dirfd int, name string, value func(attr string) bool) ([]string, map[string][]byte, error) {
	return nil, nil, errUnsupported
}

// FdXattrs is not supported outside Linux.
func FdXattrs(fd int) (map[string][]byte, error) { return nil, errUnsupported }

// Dirs holds directory handles; outside Linux it opens nothing.
type Dirs struct{}

// NewDirs returns an empty set of handles.
func NewDirs(budget int) *Dirs { return &Dirs{} }

// OpenRoot is not supported outside Linux.
func (ds *Dirs) OpenRoot(path string) (*Dir, error) { return nil, errUnsupported }

// OpenCount counts the descriptors open now.
func (ds *Dirs) OpenCount() int { return 0 }

// Dir is a handle of a directory in a Dirs.
type Dir struct{}

// Open is not supported outside Linux.
func (d *Dir) Open(name string, ino uint64) (*Dir, error) { return nil, errUnsupported }

// Acquire is not supported outside Linux.
func (d *Dir) Acquire() (int, error) { return -1, errUnsupported }

// Release does nothing outside Linux.
func (d *Dir) Release() {}

// Close does nothing outside Linux.
func (d *Dir) Close() {}
