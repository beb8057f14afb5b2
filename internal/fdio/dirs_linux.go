package fdio

import (
	"container/list"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// DefaultDirBudget is the number of directory descriptors a Dirs keeps open
// at most: far below any descriptor limit, however deep the tree.
const DefaultDirBudget = 128

// ErrDirReplaced says a directory reopened by name is not the one that was
// opened first (it was renamed or replaced meanwhile).
var ErrDirReplaced = errors.New("directory replaced while the tree was read")

// Dirs holds directory handles of one or more trees and keeps at most a fixed
// number of their descriptors open. A handle whose descriptor was closed to
// stay within the budget is reopened from its parent's descriptor and its
// name (never from a path, never through a symlink, with O_NOATIME), and must
// still be the same inode. Memory per handle is its name and a few words.
// Dirs is not safe for concurrent use.
type Dirs struct {
	budget int
	open   int
	lru    *list.List // of *Dir with an open, unpinned descriptor; front is most recent
}

// NewDirs returns an empty set of handles keeping at most budget descriptors
// open (DefaultDirBudget when budget is below 2).
func NewDirs(budget int) *Dirs {
	if budget < 2 {
		budget = DefaultDirBudget
	}
	return &Dirs{budget: budget, lru: list.New()}
}

// Dir is a handle of a directory in a Dirs.
type Dir struct {
	dirs   *Dirs
	parent *Dir // nil for a root
	name   string
	ino    uint64
	dev    uint64
	fd     int // -1 while closed
	pins   int
	elem   *list.Element
	closed bool
}

// OpenRoot opens the directory at path (resolved by the kernel as the caller
// gave it, but a final symlink is refused) as the root of a tree. A root's
// descriptor stays open until Close: it could not be reopened by a name.
func (ds *Dirs) OpenRoot(path string) (*Dir, error) {
	fd, err := OpenDir(unix.AT_FDCWD, path)
	if err != nil {
		return nil, err
	}
	ds.open++
	d := &Dir{dirs: ds, name: path, fd: fd, pins: 1}
	return d, nil
}

// Open returns a handle of the directory name below d. ino is the inode the
// caller stat'ed, or 0 to take it from the opened directory; the directory
// is opened now, so that an error shows here.
func (d *Dir) Open(name string, ino uint64) (*Dir, error) {
	child := &Dir{dirs: d.dirs, parent: d, name: name, ino: ino, fd: -1}
	if err := child.reopen(); err != nil {
		return nil, err
	}
	child.unpin()
	return child, nil
}

// Acquire returns d's descriptor, reopening it when it was closed to stay in
// the budget; the descriptor stays open until the matching Release.
func (d *Dir) Acquire() (int, error) {
	if d.closed {
		return -1, errors.New("directory handle used after Close")
	}
	if d.fd >= 0 {
		if d.elem != nil {
			d.dirs.lru.Remove(d.elem)
			d.elem = nil
		}
		d.pins++
		return d.fd, nil
	}
	if err := d.reopen(); err != nil {
		return -1, err
	}
	return d.fd, nil
}

// Release ends an Acquire.
func (d *Dir) Release() {
	d.unpin()
}

// Close closes d's descriptor and forgets the handle; its children must be
// closed first.
func (d *Dir) Close() {
	if d.closed {
		return
	}
	if d.elem != nil {
		d.dirs.lru.Remove(d.elem)
		d.elem = nil
	}
	if d.fd >= 0 {
		unix.Close(d.fd)
		d.fd = -1
		d.dirs.open--
	}
	d.closed = true
}

// reopen opens d from its parent, pinned, and checks it is the inode first seen.
func (d *Dir) reopen() error {
	if d.parent == nil {
		return errors.New("a root directory cannot be reopened")
	}
	pfd, err := d.parent.Acquire()
	if err != nil {
		return err
	}
	d.dirs.makeRoom() // the parent is pinned: never closed to make room
	fd, err := OpenDir(pfd, d.name)
	d.parent.Release()
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := fstat(fd, &st); err != nil {
		unix.Close(fd)
		return fmt.Errorf("stat %s: %w", d.name, err)
	}
	switch {
	case d.ino == 0:
		d.ino, d.dev = st.Ino, st.Dev
	case d.dev == 0:
		d.dev = st.Dev
		fallthrough
	default:
		if st.Ino != d.ino || st.Dev != d.dev {
			unix.Close(fd)
			return fmt.Errorf("%s: %w", d.name, ErrDirReplaced)
		}
	}
	d.fd, d.pins = fd, d.pins+1
	d.dirs.open++
	return nil
}

func (d *Dir) unpin() {
	d.pins--
	if d.pins == 0 && d.fd >= 0 && d.parent != nil {
		d.elem = d.dirs.lru.PushFront(d)
	}
}

// makeRoom closes the least recently used unpinned descriptors until one more
// fits in the budget; pinned descriptors are never closed, so the budget may
// be exceeded by the few a caller holds at once.
func (ds *Dirs) makeRoom() {
	for ds.open >= ds.budget && ds.lru.Len() > 0 {
		victim := ds.lru.Remove(ds.lru.Back()).(*Dir)
		victim.elem = nil
		unix.Close(victim.fd)
		victim.fd = -1
		ds.open--
	}
}

// OpenCount counts the descriptors open now.
func (ds *Dirs) OpenCount() int { return ds.open }
