package mountutil

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/internal/fdio"
)

// HideSpecial hides every FIFO, socket and device node below root, a
// read-only mount, behind a read-only bind mount of empty, an empty regular
// file: reading the view then never blocks on a FIFO. The evidence is not
// touched: entries are reached by descriptor from root, never by a path that
// could be swapped for a symlink, special files are opened O_PATH (which
// neither opens a FIFO for reading nor blocks), and the mounts stack on the
// view, not on the layers. Overlay whiteouts (character devices 0/0) stay:
// they record deletions and cannot be opened anyway. Unmount everything below
// root (UnmountUnder) to undo. It returns how many entries it hid.
func HideSpecial(root, empty string) (int, error) {
	dirs := fdio.NewDirs(fdio.DefaultDirBudget)
	top, err := dirs.OpenRoot(root)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", root, err)
	}
	defer top.Close()
	h := &hider{empty: empty, names: []string{root}}
	err = h.hideIn(top)
	return h.n, err
}

// hider walks a tree with a bounded number of open descriptors (however deep
// the tree) and keeps one name per level, so that memory is linear in the
// depth; an error names the full path once.
type hider struct {
	empty string
	names []string // the path of the directory being read, one name a level
	n     int
}

// hideIn hides the special entries of the directory d and below.
func (h *hider) hideIn(d *fdio.Dir) error {
	fd, err := d.Acquire()
	if err != nil {
		return h.fail("", err)
	}
	names, err := fdio.ReadNames(fd)
	d.Release()
	if err != nil {
		return h.fail("", fmt.Errorf("read: %w", err))
	}
	for _, name := range names {
		isDir, ino, err := h.hideEntry(d, name)
		if err != nil {
			return h.fail(name, err)
		}
		if isDir {
			if err := h.hideBelow(d, name, ino); err != nil {
				return err
			}
		}
	}
	return nil
}

// hideEntry covers the entry name of d when it is special, and reports
// whether it is a directory (and its inode).
func (h *hider) hideEntry(d *fdio.Dir, name string) (isDir bool, ino uint64, err error) {
	fd, err := d.Acquire()
	if err != nil {
		return false, 0, err
	}
	defer d.Release()
	st, err := fdio.Fstatat(fd, name)
	if err != nil {
		return false, 0, fmt.Errorf("stat: %w", err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return true, st.Ino, nil
	}
	if !special(&st) {
		return false, 0, nil
	}
	hidden, err := hideOne(fd, name, h.empty)
	if err != nil {
		return false, 0, err
	}
	if hidden {
		h.n++
	}
	return false, 0, nil
}

// special reports whether st is a FIFO, socket or device other than an
// overlay whiteout (a character device 0/0, which records a deletion).
func special(st *unix.Stat_t) bool {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFIFO, unix.S_IFSOCK, unix.S_IFBLK:
		return true
	case unix.S_IFCHR:
		return st.Rdev != 0
	}
	return false
}

func (h *hider) hideBelow(d *fdio.Dir, name string, ino uint64) error {
	sub, err := d.Open(name, ino)
	if err != nil {
		return h.fail(name, err)
	}
	defer sub.Close()
	h.names = append(h.names, name)
	defer func() { h.names = h.names[:len(h.names)-1] }()
	return h.hideIn(sub)
}

// fail wraps err with the path of name in the directory being read ("" for
// the directory itself).
func (h *hider) fail(name string, err error) error {
	p := strings.Join(h.names, "/")
	if name != "" {
		p += "/" + name
	}
	return fmt.Errorf("%s: %w", p, err)
}

// hideOne bind-mounts a read-only clone of empty on the entry name of dirfd
// and reports whether it did. The decision is taken on the opened descriptor,
// not on an earlier stat: a running container can replace a FIFO with a
// regular file in between, and a cover must never hide real content.
func hideOne(dirfd int, name, empty string) (bool, error) {
	target, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer unix.Close(target)
	var st unix.Stat_t
	if err := unix.Fstat(target, &st); err != nil {
		return false, fmt.Errorf("stat: %w", err)
	}
	if !special(&st) {
		return false, nil
	}
	tree, err := unix.OpenTree(unix.AT_FDCWD, empty, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return false, fmt.Errorf("open_tree %s: %w", empty, err)
	}
	defer unix.Close(tree)
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOSUID |
		unix.MOUNT_ATTR_NOEXEC}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, attr); err != nil {
		return false, fmt.Errorf("make the cover read-only: %w", err)
	}
	if err := unix.MoveMount(tree, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return false, err
	}
	return true, nil
}
