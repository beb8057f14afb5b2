package packages

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"

	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/internal/fdio"
)

// ScanDir scans the tree at root (a read-only view of a container or an
// image). Every entry is reached by descriptor relative to its directory,
// never through a symlink, and regular files are opened with O_NOATIME as the
// inode that was stat'ed; FIFOs, sockets and devices are never opened.
func ScanDir(ctx context.Context, root string, opts Options) (*Inventory, error) {
	return NewScanner(opts).scanDir(ctx, root)
}

func (s *Scanner) walkDir(ctx context.Context, d *fdio.Dir, dir string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fd, err := d.Acquire()
	if err != nil {
		return err
	}
	names, err := fdio.ReadNames(fd)
	if err != nil {
		d.Release()
		return fmt.Errorf("%s: %w", esc(dir), err)
	}
	type sub struct {
		name string
		ino  uint64
	}
	var subs []sub
	for _, name := range names {
		st, err := fdio.Fstatat(fd, name)
		if err != nil {
			s.notef("%s: %v", esc(path.Join(dir, name)), err)
			continue
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			subs = append(subs, sub{name, st.Ino})
		case unix.S_IFREG:
			s.scanFile(ctx, fd, name, path.Join(dir, name), &st)
		}
	}
	d.Release()
	for _, sd := range subs {
		child, err := d.Open(sd.name, sd.ino)
		if err != nil {
			s.notef("%s: %v", esc(path.Join(dir, sd.name)), err)
			continue
		}
		err = s.walkDir(ctx, child, path.Join(dir, sd.name))
		child.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Scanner) scanFile(ctx context.Context, dirfd int, name, p string, st *unix.Stat_t) {
	f := File{Path: p, Mode: os.FileMode(st.Mode & 0o7777), Size: st.Size}
	if !s.Wants(f) {
		return
	}
	fd, err := fdio.OpenRegular(dirfd, name, st.Ino)
	if err != nil {
		s.notef("%s: %v", esc(p), err)
		return
	}
	file := os.NewFile(uintptr(fd), p)
	defer file.Close()
	if classify(f) == kindExec {
		s.addExecAt(f, file)
		return
	}
	_ = s.Add(ctx, f, io.Reader(file))
}
