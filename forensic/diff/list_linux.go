package diff

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/internal/fdio"
)

// List reports every entry below the directory root (not root itself) as
// added, each named as if root were at the absolute path at, with full metadata and the digest of every regular file: the
// content of a mount that started empty (a tmpfs) or that is not compared
// with anything (a volume). It reads as TreeDiff does: by descriptor, never
// following a symlink, with O_NOATIME, never opening a FIFO or device, files
// above the size limit not hashed and noted. Pass a read-only mount.
func List(ctx context.Context, root, at string, opts Options) (*Diff, error) {
	w := newWalker(ctx, opts)
	d, err := w.dirs.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", forensic.EscapePath(root), err)
	}
	defer d.Close()
	names, err := w.readNames(d)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", forensic.EscapePath(root), err)
	}
	if err := w.addNames(d, at, names); err != nil {
		return nil, err
	}
	return w.finish(MethodWalk), nil
}

// ListEntries is List for the named entries of the directory dir only (and,
// for a directory among them, everything below it): for files mounted one
// by one from a directory that holds others.
func ListEntries(ctx context.Context, dir string, names []string, opts Options) (*Diff, error) {
	w := newWalker(ctx, opts)
	d, err := w.dirs.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", forensic.EscapePath(dir), err)
	}
	defer d.Close()
	if err := w.addNames(d, "/", names); err != nil {
		return nil, err
	}
	return w.finish(MethodWalk), nil
}

// addNames records the entries names of the directory d, at path dir, and
// everything below them as added.
func (w *walker) addNames(d *fdio.Dir, dir string, names []string) error {
	for _, name := range names {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		p := w.paths.join(dir, name)
		md, _, err := w.lstat(d, name, "")
		if errors.Is(err, os.ErrNotExist) {
			w.vanished(p)
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", forensic.EscapePath(p), err)
		}
		if err := w.added(d, name, p, md, ""); err != nil {
			return err
		}
	}
	return nil
}
