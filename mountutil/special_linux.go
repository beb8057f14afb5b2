package mountutil

import (
	"fmt"

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
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", root, err)
	}
	defer unix.Close(fd)
	var n int
	err = hideIn(fd, root, empty, &n)
	return n, err
}

// hideIn hides the special entries of the directory dirfd (at path, for
// messages) and below.
func hideIn(dirfd int, path, empty string, n *int) error {
	names, err := fdio.ReadNames(dirfd)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("stat %s/%s: %w", path, name, err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			err = hideBelow(dirfd, name, path, empty, n)
		case unix.S_IFIFO, unix.S_IFSOCK, unix.S_IFBLK:
			err = hideOne(dirfd, name, empty)
		case unix.S_IFCHR:
			if st.Rdev != 0 { // 0/0 is an overlay whiteout
				err = hideOne(dirfd, name, empty)
			} else {
				continue
			}
		default:
			continue
		}
		if err != nil {
			return fmt.Errorf("%s/%s: %w", path, name, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			*n++
		}
	}
	return nil
}

func hideBelow(dirfd int, name, path, empty string, n *int) error {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return hideIn(fd, path+"/"+name, empty, n)
}

// hideOne bind-mounts a read-only clone of empty on the entry name of dirfd.
func hideOne(dirfd int, name, empty string) error {
	target, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(target)
	tree, err := unix.OpenTree(unix.AT_FDCWD, empty, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open_tree %s: %w", empty, err)
	}
	defer unix.Close(tree)
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOSUID |
		unix.MOUNT_ATTR_NOEXEC}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, attr); err != nil {
		return fmt.Errorf("make the cover read-only: %w", err)
	}
	return unix.MoveMount(tree, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
}
