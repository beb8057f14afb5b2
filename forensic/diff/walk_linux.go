package diff

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/opencontainers/go-digest"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/internal/fsread"
	"github.com/ctrforensics/ctrforensics/internal/fdio"
)

// OverlayDiff computes the changes recorded in an overlayfs upper directory
// against lower, the merged image the upper was mounted over (a read-only
// overlay of the lower layers, or the single layer directory itself). lower may
// be empty for a container without image layers. Only the upper directory is
// walked; paths are looked up in lower one at a time. Pass read-only mounts of
// both: reading a symlink's target updates its access time on a writable
// mount, which no open flag prevents.
func OverlayDiff(ctx context.Context, upper, lower string, opts Options) (*Diff, error) {
	w := newWalker(ctx, opts)
	up, err := w.dirs.OpenRoot(upper)
	if err != nil {
		return nil, fmt.Errorf("open upper directory: %w", err)
	}
	defer up.Close()
	var low *fdio.Dir
	if lower != "" {
		if low, err = w.dirs.OpenRoot(lower); err != nil {
			return nil, fmt.Errorf("open image root: %w", err)
		}
		defer low.Close()
	}
	if err := w.rawUpperChecks(up, "."); err != nil {
		return nil, err
	}
	if _, err := w.overlayDir(up, low, "/"); err != nil {
		return nil, err
	}
	return w.finish(MethodOverlay), nil
}

// TreeDiff computes the changes between two complete trees: target (the
// container's filesystem) against base (its image). Both are walked entirely and
// every regular file present in both is hashed, so an edit whose size and mtime
// were put back is still found. Pass read-only mounts, as for OverlayDiff.
func TreeDiff(ctx context.Context, target, base string, opts Options) (*Diff, error) {
	w := newWalker(ctx, opts)
	nw, err := w.dirs.OpenRoot(target)
	if err != nil {
		return nil, fmt.Errorf("open container root: %w", err)
	}
	defer nw.Close()
	bs, err := w.dirs.OpenRoot(base)
	if err != nil {
		return nil, fmt.Errorf("open image root: %w", err)
	}
	defer bs.Close()
	if _, err := w.treeDir(nw, bs, "/", false); err != nil {
		return nil, err
	}
	return w.finish(MethodWalk), nil
}

// vanished notes an entry that disappeared between listing its directory and
// reading it: normal in a running container, never silent.
func (w *walker) vanished(p string) {
	w.notes = append(w.notes, forensic.EscapePath(p)+" vanished while the tree was read (a running container changed it)")
}

// walker walks one or two trees. Directories are fdio.Dir handles, so at most
// fdio.DefaultDirBudget descriptors are open however deep the trees; a
// handle is nil for a side that has no such directory. The recursion holds,
// per level, the directory's names and the path, whose bytes a deeper path
// shares (see paths).
type walker struct {
	ctx  context.Context
	opts Options
	dirs *fdio.Dirs
	// ovl is the namespace of overlay attributes in raw layer directories;
	// a merged tree has none (see fsread.Lstat).
	ovl     string
	hasher  *fsread.Hasher
	paths   paths
	changes []forensic.Change
	// unverified counts files present on both sides that were too large to hash
	// and whose metadata matched, so their content could not be compared.
	unverified int
	notes      []string
}

func newWalker(ctx context.Context, opts Options) *walker {
	w := &walker{ctx: ctx, opts: opts, dirs: fdio.NewDirs(fdio.DefaultDirBudget),
		hasher: fsread.NewHasher(opts.MaxHashBytes), ovl: fsread.TrustedOverlay}
	if opts.UserXattr {
		w.ovl = fsread.UserOverlay
	}
	return w
}

func (w *walker) finish(m Method) *Diff {
	sort.Slice(w.changes, func(i, j int) bool { return w.changes[i].Path < w.changes[j].Path })
	linkHardLinks(w.changes)
	d := &Diff{Changes: w.changes, Method: m, FilesHashed: w.hasher.Files(), BytesHashed: w.hasher.Bytes(), Notes: w.notes}
	if w.opts.IgnoreDirMtime {
		d.Notes = append(d.Notes, "directory mtimes were not compared: this snapshotter does not preserve them")
	}
	if w.unverified > 0 {
		d.Notes = append(d.Notes, fmt.Sprintf("%d files on both sides exceed the size limit and have equal metadata: content not compared", w.unverified))
	}
	for i := range w.changes {
		if c := &w.changes[i]; c.NotHashed != nil {
			d.Notes = append(d.Notes, fmt.Sprintf("%s not hashed: %s", forensic.EscapePath(c.Path), c.NotHashed))
		}
	}
	return d
}

// readNames lists the directory d.
func (w *walker) readNames(d *fdio.Dir) ([]string, error) {
	fd, err := d.Acquire()
	if err != nil {
		return nil, err
	}
	defer d.Release()
	return fdio.ReadNames(fd)
}

// lstat reads the metadata of name in the directory d; see fsread.Lstat.
func (w *walker) lstat(d *fdio.Dir, name, ns string) (*forensic.Metadata, fsread.Overlay, error) {
	fd, err := d.Acquire()
	if err != nil {
		return nil, 0, err
	}
	defer d.Release()
	return fsread.Lstat(fd, name, ns)
}

// open returns a handle of the directory name in d whose metadata is md, or
// nil when d is nil.
func (w *walker) open(d *fdio.Dir, name string, md *forensic.Metadata) (*fdio.Dir, error) {
	if d == nil {
		return nil, nil
	}
	return d.Open(name, md.Inode)
}

// closeDir closes a handle open returned.
func closeDir(d *fdio.Dir) {
	if d != nil {
		d.Close()
	}
}

// overlayDir walks the upper directory up whose merged image counterpart is low
// (nil when the image has no such directory). It reports whether anything
// below changed.
func (w *walker) overlayDir(up, low *fdio.Dir, dir string) (bool, error) {
	names, err := w.readNames(up)
	if err != nil {
		return false, fmt.Errorf("%s: %w", forensic.EscapePath(dir), err)
	}
	changed := false
	for _, name := range names {
		if err := w.ctx.Err(); err != nil {
			return false, err
		}
		p := w.paths.join(dir, name)
		md, ovl, err := w.lstat(up, name, w.ovl)
		if errors.Is(err, os.ErrNotExist) {
			w.vanished(p)
			continue
		}
		if err != nil {
			return false, fmt.Errorf("%s: %w", forensic.EscapePath(p), err)
		}
		if err := checkOverlayXattrs(p, ovl); err != nil {
			return false, err
		}
		base, err := w.lookupBase(low, name)
		if err != nil {
			return false, fmt.Errorf("image %s: %w", forensic.EscapePath(p), err)
		}
		if isWhiteout(md, ovl) {
			if base != nil {
				if err := w.deleted(low, name, p, base); err != nil {
					return false, err
				}
				changed = true
			}
			continue
		}
		recurse := func(u, l *fdio.Dir) (bool, error) {
			if isOpaque(ovl) {
				return w.treeDir(u, l, p, true)
			}
			return w.overlayDir(u, l, p)
		}
		c, err := w.entry(up, low, name, p, md, base, true, w.ovl, recurse)
		if err != nil {
			return false, err
		}
		changed = changed || c
	}
	return changed, nil
}

// treeDir compares the directory nw of the container with base of the image,
// both walked entirely. rawUpper says nw is inside an overlayfs upper directory,
// whose whiteouts are skipped and whose overlay attributes are checked.
func (w *walker) treeDir(nw, base *fdio.Dir, dir string, rawUpper bool) (bool, error) {
	names, err := w.readNames(nw)
	if err != nil {
		return false, fmt.Errorf("%s: %w", forensic.EscapePath(dir), err)
	}
	baseNames, err := w.readNames(base)
	if err != nil {
		return false, fmt.Errorf("image %s: %w", forensic.EscapePath(dir), err)
	}
	changed := false
	present := make(map[string]bool, len(names))
	ns := ""
	if rawUpper {
		ns = w.ovl
	}
	for _, name := range names {
		if err := w.ctx.Err(); err != nil {
			return false, err
		}
		p := w.paths.join(dir, name)
		md, ovl, err := w.lstat(nw, name, ns)
		if errors.Is(err, os.ErrNotExist) {
			w.vanished(p)
			continue
		}
		if err != nil {
			return false, fmt.Errorf("%s: %w", forensic.EscapePath(p), err)
		}
		if rawUpper {
			if err := checkOverlayXattrs(p, ovl); err != nil {
				return false, err
			}
			if isWhiteout(md, ovl) {
				continue
			}
		}
		present[name] = true
		bmd, err := w.lookupBase(base, name)
		if err != nil {
			return false, fmt.Errorf("image %s: %w", forensic.EscapePath(p), err)
		}
		recurse := func(n, b *fdio.Dir) (bool, error) { return w.treeDir(n, b, p, rawUpper) }
		c, err := w.entry(nw, base, name, p, md, bmd, false, ns, recurse)
		if err != nil {
			return false, err
		}
		changed = changed || c
	}
	for _, name := range baseNames {
		if present[name] {
			continue
		}
		bmd, err := w.lookupBase(base, name)
		if err != nil {
			return false, fmt.Errorf("image %s: %w", forensic.EscapePath(joinPath(dir, name)), err)
		}
		if bmd == nil {
			continue
		}
		if err := w.deleted(base, name, w.paths.join(dir, name), bmd); err != nil {
			return false, err
		}
		changed = true
	}
	return changed, nil
}

// entry handles one path present in the container: added when base is nil,
// otherwise compared with the image. inUpper says the entry sits in an overlayfs
// upper directory, where a non-directory is always reported because it was
// copied up; ns is the overlay attribute namespace of the container's side.
// recurse walks a directory present on both sides.
func (w *walker) entry(nwDir, baseDir *fdio.Dir, name, p string, md, base *forensic.Metadata, inUpper bool, ns string,
	recurse func(nw, base *fdio.Dir) (bool, error)) (bool, error) {
	if base == nil {
		return true, w.added(nwDir, name, p, md, ns)
	}
	c := forensic.Change{Kind: forensic.Changed, Path: p, Meta: md, Base: base, Fields: compareMetadata(md, base, w.opts.IgnoreDirMtime)}
	unverified := false
	if md.Type == forensic.TypeFile && base.Type == forensic.TypeFile {
		u, err := w.compareContent(nwDir, baseDir, name, &c)
		if err != nil {
			return false, err
		}
		unverified = u
	} else if md.Type == forensic.TypeFile {
		if err := w.hashInto(nwDir, name, md, &c.Digest, &c.NotHashed); err != nil {
			return false, err
		}
	}
	switch {
	case md.Type == forensic.TypeDir && base.Type == forensic.TypeDir:
		sub, err := w.descend(nwDir, baseDir, name, md, base, recurse)
		if err != nil {
			return false, err
		}
		if !sub && len(c.Fields) == 0 {
			return false, nil
		}
	case md.Type == forensic.TypeDir:
		// A directory replaced a file: everything in it is new.
		if err := w.addChildren(nwDir, name, p, md, ns); err != nil {
			return false, err
		}
	case base.Type == forensic.TypeDir:
		// A file replaced a directory: what the image had in it is gone.
		if err := w.deletedChildren(baseDir, name, p, base); err != nil {
			return false, err
		}
	case len(c.Fields) == 0 && !inUpper && !unverified:
		return false, nil
	}
	w.changes = append(w.changes, c)
	return true, nil
}

// deletedChildren records the entries of the image directory name, whose
// metadata is md, as deleted.
func (w *walker) deletedChildren(baseDir *fdio.Dir, name, p string, md *forensic.Metadata) error {
	sub, err := w.open(baseDir, name, md)
	if err != nil {
		return fmt.Errorf("image %s: %w", forensic.EscapePath(p), err)
	}
	defer closeDir(sub)
	names, err := w.readNames(sub)
	if err != nil {
		return fmt.Errorf("image %s: %w", forensic.EscapePath(p), err)
	}
	for _, child := range names {
		bmd, err := w.lookupBase(sub, child)
		if err != nil {
			return fmt.Errorf("image %s: %w", forensic.EscapePath(joinPath(p, child)), err)
		}
		if bmd != nil {
			if err := w.deleted(sub, child, w.paths.join(p, child), bmd); err != nil {
				return err
			}
		}
	}
	return nil
}

// descend opens the directory name on both sides and walks it with recurse.
func (w *walker) descend(nwDir, baseDir *fdio.Dir, name string, md, base *forensic.Metadata,
	recurse func(nw, base *fdio.Dir) (bool, error)) (bool, error) {
	nsub, err := w.open(nwDir, name, md)
	if err != nil {
		return false, err
	}
	defer closeDir(nsub)
	bsub, err := w.open(baseDir, name, base)
	if err != nil {
		return false, err
	}
	defer closeDir(bsub)
	return recurse(nsub, bsub)
}

// compareContent hashes both versions of a regular file and records the
// digests, adding FieldContent when they differ. It reports a file whose
// content could not be compared for a reason other than its size: such a
// change is kept even when nothing else differs.
func (w *walker) compareContent(nwDir, baseDir *fdio.Dir, name string, c *forensic.Change) (unverified bool, err error) {
	var baseReason *forensic.NotHashed
	if err := w.hashInto(nwDir, name, c.Meta, &c.Digest, &c.NotHashed); err != nil {
		return false, err
	}
	if err := w.hashInto(baseDir, name, c.Base, &c.BaseDigest, &baseReason); err != nil {
		return false, err
	}
	switch {
	case c.Digest != "" && c.BaseDigest != "":
		if c.Digest != c.BaseDigest {
			c.Fields = append(c.Fields, forensic.FieldContent)
		}
	case c.Meta.Size != c.Base.Size:
		c.Fields = append(c.Fields, forensic.FieldContent)
	default:
		if c.NotHashed == nil {
			c.NotHashed = baseReason.OfImage()
		}
		// Content unknown. Files over the size limit with equal metadata are
		// counted in a note; any other failure keeps the change, with its reason.
		if c.NotHashed.TooLarge() {
			if len(c.Fields) == 0 {
				w.unverified++
			}
		} else {
			return true, nil
		}
	}
	return false, nil
}

func (w *walker) hashInto(d *fdio.Dir, name string, md *forensic.Metadata, sum *digest.Digest, reason **forensic.NotHashed) error {
	fd, err := d.Acquire()
	if err != nil {
		return err
	}
	defer d.Release()
	s, why, err := w.hasher.Hash(w.ctx, fd, name, md)
	if err != nil {
		return err
	}
	*sum, *reason = s, why
	return nil
}

// added records name and, for a directory, everything below it as added.
func (w *walker) added(d *fdio.Dir, name, p string, md *forensic.Metadata, ns string) error {
	c := forensic.Change{Kind: forensic.Added, Path: p, Meta: md}
	if md.Type == forensic.TypeFile {
		if err := w.hashInto(d, name, md, &c.Digest, &c.NotHashed); err != nil {
			return err
		}
	}
	w.changes = append(w.changes, c)
	if md.Type == forensic.TypeDir {
		return w.addChildren(d, name, p, md, ns)
	}
	return nil
}

// addChildren records everything below the directory name of d, whose
// metadata is md, as added.
func (w *walker) addChildren(d *fdio.Dir, name, p string, md *forensic.Metadata, ns string) error {
	sub, err := w.open(d, name, md)
	if err != nil {
		return fmt.Errorf("%s: %w", forensic.EscapePath(p), err)
	}
	defer closeDir(sub)
	names, err := w.readNames(sub)
	if err != nil {
		return fmt.Errorf("%s: %w", forensic.EscapePath(p), err)
	}
	for _, child := range names {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		cp := w.paths.join(p, child)
		cmd, ovl, err := w.lstat(sub, child, ns)
		if errors.Is(err, os.ErrNotExist) {
			w.vanished(cp)
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", forensic.EscapePath(cp), err)
		}
		if err := checkOverlayXattrs(cp, ovl); err != nil {
			return err
		}
		if isWhiteout(cmd, ovl) {
			continue
		}
		if err := w.added(sub, child, cp, cmd, ns); err != nil {
			return err
		}
	}
	return nil
}

// deleted records a path of the image that the container no longer has. The
// content of a deleted regular file is hashed, so that what was removed is known.
func (w *walker) deleted(baseDir *fdio.Dir, name, p string, base *forensic.Metadata) error {
	c := forensic.Change{Kind: forensic.Deleted, Path: p, Meta: base}
	if base.Type == forensic.TypeFile {
		if err := w.hashInto(baseDir, name, base, &c.BaseDigest, &c.NotHashed); err != nil {
			return err
		}
	}
	w.changes = append(w.changes, c)
	return nil
}

// rawUpperChecks refuses an upper directory whose root carries overlay
// attributes the fast path cannot interpret.
func (w *walker) rawUpperChecks(up *fdio.Dir, name string) error {
	_, ovl, err := w.lstat(up, name, w.ovl)
	if err != nil {
		return fmt.Errorf("upper directory: %w", err)
	}
	return checkOverlayXattrs("/", ovl)
}

// lookupBase returns the metadata of name in the image directory d, or nil
// when the image has no such entry (d is nil, the entry is missing, or it is
// a whiteout of a layer directory used directly).
func (w *walker) lookupBase(d *fdio.Dir, name string) (*forensic.Metadata, error) {
	if d == nil {
		return nil, nil
	}
	md, ovl, err := w.lstat(d, name, w.ovl)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if isWhiteout(md, ovl) {
		return nil, nil
	}
	return md, nil
}

// compareMetadata lists the fields in which md differs from base. Access and
// change times are not compared: reading or copying up a file changes them.
func compareMetadata(md, base *forensic.Metadata, ignoreDirMtime bool) []forensic.Field {
	var fields []forensic.Field
	if md.Type != base.Type {
		return []forensic.Field{forensic.FieldType}
	}
	add := func(differ bool, f forensic.Field) {
		if differ {
			fields = append(fields, f)
		}
	}
	add(md.Mode != base.Mode, forensic.FieldMode)
	add(md.UID != base.UID, forensic.FieldUID)
	add(md.GID != base.GID, forensic.FieldGID)
	if md.Type != forensic.TypeDir {
		add(md.Size != base.Size, forensic.FieldSize)
		add(md.Nlink != base.Nlink, forensic.FieldNlink)
	}
	add(!md.Mtime.Equal(base.Mtime) && !(ignoreDirMtime && md.Type == forensic.TypeDir), forensic.FieldMtime)
	add(!sameXattrs(md.Xattrs, base.Xattrs), forensic.FieldXattrs)
	add(md.LinkTarget != base.LinkTarget, forensic.FieldLinkTarget)
	add(md.DevMajor != base.DevMajor || md.DevMinor != base.DevMinor, forensic.FieldDevice)
	return fields
}

// sameXattrs compares extended attributes (overlayfs's own are never in them).
func sameXattrs(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || !bytes.Equal(v, bv) {
			return false
		}
	}
	return true
}

// checkOverlayXattrs returns a FallbackError when an upper entry relies on
// redirect or metacopy, whose meaning depends on the lower layers.
func checkOverlayXattrs(p string, ovl fsread.Overlay) error {
	switch {
	case ovl&fsread.OverlayRedirect != 0:
		return &FallbackError{Path: p, Reason: "overlay redirect attribute"}
	case ovl&fsread.OverlayMetacopy != 0:
		return &FallbackError{Path: p, Reason: "overlay metacopy attribute"}
	}
	return nil
}

// isWhiteout reports an overlayfs whiteout: a 0/0 character device, or an
// entry marked with the whiteout attribute.
func isWhiteout(md *forensic.Metadata, ovl fsread.Overlay) bool {
	return md.Type == forensic.TypeChar && md.DevMajor == 0 && md.DevMinor == 0 || ovl&fsread.OverlayWhiteout != 0
}

// isOpaque reports an overlayfs opaque directory: it hides everything the lower
// layers hold below it.
func isOpaque(ovl fsread.Overlay) bool {
	return ovl&fsread.OverlayOpaque != 0
}

func joinPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// linkHardLinks points every changed entry that shares an inode with an
// earlier changed entry to that entry's path.
func linkHardLinks(changes []forensic.Change) {
	type key struct{ dev, ino uint64 }
	first := make(map[key]string)
	for i := range changes {
		c := &changes[i]
		if c.Kind == forensic.Deleted || c.Meta.Type == forensic.TypeDir || c.Meta.Nlink < 2 {
			continue
		}
		k := key{c.Meta.Dev, c.Meta.Inode}
		if p, ok := first[k]; ok {
			c.HardLinkTo = p
		} else {
			first[k] = c.Path
		}
	}
}
