package scan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/internal/fsread"
	"github.com/ctrforensics/ctrforensics/internal/fdio"
)

// Walk implements Input.
func (in *dirInput) Walk(ctx context.Context, fn func(*File, io.Reader) error) error {
	rootfd, err := fdio.OpenDir(unix.AT_FDCWD, in.root)
	if err != nil {
		return fmt.Errorf("open root: %w", err)
	}
	defer fdio.Close(rootfd)
	byPath := make(map[string]*forensic.Change, len(in.changes))
	for i := range in.changes {
		byPath[in.changes[i].Path] = &in.changes[i]
	}
	w := &dirWalker{fn: fn, byPath: byPath}
	if !in.onlyChanges {
		return w.tree(ctx, rootfd, "")
	}
	for i := range in.changes {
		c := &in.changes[i]
		if c.Kind == forensic.Deleted || c.Meta == nil || c.Meta.Type == forensic.TypeDir {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := w.atPath(rootfd, c.Path); err != nil {
			return err
		}
	}
	return nil
}

type dirWalker struct {
	fn     func(*File, io.Reader) error
	byPath map[string]*forensic.Change
}

// atPath opens the parent directories of p one component at a time, never
// following a symlink, and visits p.
func (w *dirWalker) atPath(rootfd int, p string) error {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	dirfd := rootfd
	for _, name := range parts[:len(parts)-1] {
		fd, err := fdio.OpenDir(dirfd, name)
		if dirfd != rootfd {
			fdio.Close(dirfd)
		}
		if err != nil {
			// Gone since the diff, or replaced by a symlink: not followed.
			return w.fn(&File{Path: p, Type: forensic.TypeUnknown, Layer: -1}, failing{fmt.Errorf("open parent directory: %w", err)})
		}
		dirfd = fd
	}
	if dirfd != rootfd {
		defer fdio.Close(dirfd)
	}
	return w.entry(dirfd, parts[len(parts)-1], p)
}

// tree visits every entry below the directory dirfd (at path dir).
func (w *dirWalker) tree(ctx context.Context, dirfd int, dir string) error {
	names, err := fdio.ReadNames(dirfd)
	if err != nil {
		return fmt.Errorf("%s: %w", forensic.EscapePath(dir+"/"), err)
	}
	for _, name := range names {
		if name == "." || name == ".." {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		p := dir + "/" + name
		st, err := fdio.Fstatat(dirfd, name)
		if err != nil {
			continue // removed while walking
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			fd, err := fdio.OpenDir(dirfd, name)
			if err != nil {
				return fmt.Errorf("%s: %w", forensic.EscapePath(p), err)
			}
			err = w.tree(ctx, fd, p)
			fdio.Close(fd)
			if err != nil {
				return err
			}
			continue
		}
		if err := w.visit(dirfd, name, p, &st); err != nil {
			return err
		}
	}
	return nil
}

// entry stats and visits the entry name of dirfd.
func (w *dirWalker) entry(dirfd int, name, p string) error {
	st, err := fdio.Fstatat(dirfd, name)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return w.fn(&File{Path: p, Type: forensic.TypeUnknown, Layer: -1}, failing{fmt.Errorf("stat: %w", err)})
	}
	return w.visit(dirfd, name, p, &st)
}

// visit calls fn for the entry, with its content for a regular file, read by
// descriptor with O_NOATIME.
func (w *dirWalker) visit(dirfd int, name, p string, st *unix.Stat_t) error {
	f := &File{Path: p, Type: fsread.FileTypeOf(st.Mode), Mode: uint32(st.Mode) & 0o7777, UID: st.Uid, GID: st.Gid, Size: st.Size, Layer: -1}
	if c := w.byPath[p]; c != nil {
		fileOfChange(f, c)
	}
	if f.Type != forensic.TypeFile {
		return w.fn(f, nil)
	}
	fd, err := fdio.OpenRegular(dirfd, name, st.Ino)
	if err != nil {
		return w.fn(f, failing{fmt.Errorf("open: %w", err)})
	}
	defer fdio.Close(fd)
	f.Capability = capability(fd)
	return w.fn(f, fdio.File(fd))
}

// capability returns the security.capability attribute of fd, or nil.
func capability(fd int) []byte {
	buf := make([]byte, 64)
	n, err := unix.Fgetxattr(fd, capabilityXattr, buf)
	if err != nil || n <= 0 {
		return nil
	}
	return buf[:n]
}

// failing is a reader that fails with err.
type failing struct{ err error }

func (r failing) Read([]byte) (int, error) { return 0, r.err }
