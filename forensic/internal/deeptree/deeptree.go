//go:build linux

// Package deeptree builds and removes chains of nested directories far deeper
// than PATH_MAX and the descriptor limit, for the tests of the walkers. Both
// work by descriptor and keep at most two directories open.
package deeptree

import (
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

const dirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// Make creates depth nested directories named d below root, with a file z
// holding its level (sorted after d, so a walk needs each parent again after
// its child) at every level that is a multiple of zEvery.
func Make(root string, depth, zEvery int) error {
	fd, err := unix.Open(root, dirFlags, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", root, err)
	}
	for i := 0; i < depth; i++ {
		if err := unix.Mkdirat(fd, "d", 0o755); err != nil {
			unix.Close(fd)
			return fmt.Errorf("level %d: %w", i, err)
		}
		if zEvery > 0 && i%zEvery == 0 {
			if err := writeZ(fd, i); err != nil {
				unix.Close(fd)
				return err
			}
		}
		next, err := unix.Openat(fd, "d", dirFlags, 0)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("level %d: %w", i, err)
		}
		fd = next
	}
	return unix.Close(fd)
}

func writeZ(dirfd, level int) error {
	z, err := unix.Openat(dirfd, "z", unix.O_CREAT|unix.O_WRONLY|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("level %d: %w", level, err)
	}
	defer unix.Close(z)
	_, err = unix.Write(z, []byte(strconv.Itoa(level)))
	return err
}

// Remove removes the chain below root that Make built (and the files in it),
// one level at a time: the child of the top directory is moved up, the top
// directory removed, and the child renamed into its place.
func Remove(root string) error {
	fd, err := unix.Open(root, dirFlags, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", root, err)
	}
	defer unix.Close(fd)
	for {
		top, err := unix.Openat(fd, "d", dirFlags, 0)
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		if err != nil {
			return err
		}
		err = unix.Renameat(top, "d", fd, "d.next")
		moved := err == nil
		if err != nil && !errors.Is(err, unix.ENOENT) {
			unix.Close(top)
			return err
		}
		if err := unix.Unlinkat(top, "z", 0); err != nil && !errors.Is(err, unix.ENOENT) {
			unix.Close(top)
			return err
		}
		unix.Close(top)
		if err := unix.Unlinkat(fd, "d", unix.AT_REMOVEDIR); err != nil {
			return err
		}
		if moved {
			if err := unix.Renameat(fd, "d.next", fd, "d"); err != nil {
				return err
			}
		}
	}
}
