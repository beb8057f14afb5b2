package changetar

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/internal/fsread"
	"github.com/ctrforensics/ctrforensics/internal/fdio"
)

// WriteChangesTar writes changes as an OCI layer: every added or changed entry
// of root (the container's filesystem, mounted read-only) with its content and
// all its metadata (PAX headers with nanosecond times, owners, modes, every
// extended attribute, device numbers, link targets), hard links as links, and
// every deletion as a whiteout (.wh.NAME; the entries lost with a deleted or
// replaced directory need none). Applied over the image, it gives the
// container's filesystem. A file whose content no longer matches the digest of
// the change (it changed since the diff) is archived as it is now and noted.
// A change whose name an OCI layer cannot carry (see UnsafeName) is left out,
// with a note; a hard link to such a name is archived as a copy.
func WriteChangesTar(ctx context.Context, w io.Writer, root string, changes []forensic.Change, opts Options) (*TarStats, error) {
	return writeTar(ctx, w, root, changes, opts, archiveLayer)
}

// WriteUnsafeTar writes, as a plain tar in the format of WriteChangesTar, the
// changes WriteChangesTar leaves out because of their names (see UnsafeName),
// each under its own name: extracted as ordinary files (tar -x) over the
// image with the changes tar applied, it completes the container's
// filesystem. It is not an OCI layer and must never be applied as one. A
// deletion of such a name cannot be written and is noted.
func WriteUnsafeTar(ctx context.Context, w io.Writer, root string, changes []forensic.Change, opts Options) (*TarStats, error) {
	return writeTar(ctx, w, root, changes, opts, archiveUnsafe)
}

// WritePlainTar writes every change but deletions, whatever its name, as a
// plain tar in the format of WriteChangesTar: the content of a tree that is
// not compared with an image (a tmpfs, a volume), to be extracted with tar
// -x, never applied as a layer. root is that tree, read-only, and the
// changes' paths are relative to it. A deletion cannot be written and is
// noted.
func WritePlainTar(ctx context.Context, w io.Writer, root string, changes []forensic.Change, opts Options) (*TarStats, error) {
	return writeTar(ctx, w, root, changes, opts, archivePlain)
}

// archiveKind says which changes an archive holds.
type archiveKind int

const (
	// archiveLayer is an OCI layer: the names a layer can carry, deletions
	// as whiteouts.
	archiveLayer archiveKind = iota
	// archiveUnsafe is a plain tar of the names a layer cannot carry.
	archiveUnsafe
	// archivePlain is a plain tar of every change.
	archivePlain
)

// holds reports whether an archive of kind a holds the path p.
func (a archiveKind) holds(p string) bool {
	return a == archivePlain || UnsafeName(p) == (a == archiveUnsafe)
}

func writeTar(ctx context.Context, w io.Writer, root string, changes []forensic.Change, opts Options, kind archiveKind) (*TarStats, error) {
	dirs, err := newDirCache(root)
	if err != nil {
		return nil, err
	}
	defer dirs.close()
	tw := tar.NewWriter(w)
	tb := &tarBuilder{ctx: ctx, w: w, tw: tw, dirs: dirs, maxBytes: fsread.NewHasher(opts.MaxBytes).MaxBytes(),
		stats: &TarStats{}, kind: kind}
	for i := range changes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c := &changes[i]
		if !kind.holds(c.Path) {
			if kind == archiveLayer && c.LostWith == "" && c.Kind != forensic.Deleted {
				tb.note(c, "left out of the OCI layer: its name would be read as a whiteout; it is in changes.jsonl and the archive of unsafe names")
			}
			continue
		}
		if err := tb.add(c); err != nil {
			return nil, fmt.Errorf("archive %s: %w", forensic.EscapePath(c.Path), err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return tb.stats, nil
}

type tarBuilder struct {
	ctx context.Context
	// w is what tw writes to; sparse entries are written to it directly,
	// between two entries of tw.
	w        io.Writer
	tw       *tar.Writer
	dirs     *dirCache
	maxBytes int64
	stats    *TarStats
	// kind says which changes the archive holds; all but archiveLayer are
	// plain tars, without whiteouts.
	// tar, without whiteouts.
	kind archiveKind
}

func (tb *tarBuilder) note(c *forensic.Change, format string, args ...any) {
	tb.stats.Notes = append(tb.stats.Notes, forensic.EscapePath(c.Path)+": "+fmt.Sprintf(format, args...))
}

func (tb *tarBuilder) add(c *forensic.Change) error {
	name := strings.TrimPrefix(c.Path, "/")
	if c.LostWith != "" {
		return nil // the directory's whiteout or replacement removes it
	}
	if c.Kind == forensic.Deleted {
		if tb.kind != archiveLayer {
			tb.note(c, "the deletion is not archived in a plain tar; it is in changes.jsonl")
			return nil
		}
		dir, base := path.Split(name)
		return tb.write(&tar.Header{Typeflag: tar.TypeReg, Name: dir + ".wh." + base, Mode: 0o644, Format: tar.FormatPAX}, nil, 0)
	}
	dir, base, err := tb.dirs.parent(name)
	if err != nil {
		return err
	}
	dirfd, err := dir.Acquire()
	if err != nil {
		return err
	}
	defer dir.Release()
	md, _, err := fsread.Lstat(dirfd, base, "") // root is a merged, read-only tree
	if err != nil {
		tb.note(c, "not archived: %v", err)
		return nil
	}
	hdr, dropped := tarHeader(name, md)
	for _, x := range dropped {
		tb.note(c, "extended attribute %q cannot be stored in a tar (its name has '=' or NUL); it is in changes.jsonl", forensic.EscapePath(x))
	}
	linked := c.HardLinkTo != "" && md.Type != forensic.TypeDir
	if linked && !tb.kind.holds(c.HardLinkTo) {
		// The first name of the inode is in the other archive: keep a copy.
		tb.note(c, "hard link to %s, which is in the other archive: archived as a copy", forensic.EscapePath(c.HardLinkTo))
		linked = false
	}
	switch {
	case linked:
		hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, strings.TrimPrefix(c.HardLinkTo, "/"), 0
	case md.Type == forensic.TypeSocket:
		tb.note(c, "a socket cannot be archived; its metadata is in changes.jsonl")
		return nil
	case md.Type == forensic.TypeUnknown:
		tb.note(c, "unknown file type: not archived")
		return nil
	case md.Type == forensic.TypeFile:
		return tb.addFile(c, dirfd, base, hdr, md)
	}
	return tb.write(hdr, nil, 0)
}

// addFile archives a regular file's content, read once and hashed on the way.
func (tb *tarBuilder) addFile(c *forensic.Change, dirfd int, base string, hdr *tar.Header, md *forensic.Metadata) error {
	if md.Size > tb.maxBytes {
		tb.note(c, "content not archived: size %d exceeds the size limit %d", md.Size, tb.maxBytes)
		hdr.Size = 0
		hdr.PAXRecords["CTRFORENSICS.content"] = "omitted"
		return tb.write(hdr, nil, 0)
	}
	fd, err := fsread.OpenRegular(dirfd, base, md)
	if err != nil {
		tb.note(c, "content not archived: %v", err)
		return nil
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	h := sha256.New()
	var regions []region
	sparse := false
	if md.Allocated < md.Size { // holes are possible: find them
		regions, sparse = dataRegions(fd, md.Size)
	}
	if sparse {
		err = tb.writeSparse(hdr, fd, regions, h)
	} else {
		err = tb.write(hdr, io.TeeReader(ctxReader{tb.ctx, f}, h), md.Size)
	}
	if err != nil {
		return err
	}
	if c.Digest != "" && digest.NewDigest(digest.SHA256, h) != c.Digest {
		tb.note(c, "changed since the diff: archived content is %s, the diff saw %s", digest.NewDigest(digest.SHA256, h), c.Digest)
	}
	return nil
}

// write writes a header and exactly size bytes of content; a file that shrank
// while it was read is padded with zeros and the shortfall reported as an error,
// since the header already promised its size.
func (tb *tarBuilder) write(hdr *tar.Header, content io.Reader, size int64) error {
	if err := tb.tw.WriteHeader(hdr); err != nil {
		return err
	}
	tb.stats.Entries++
	if content == nil {
		return nil
	}
	n, err := io.CopyN(tb.tw, content, size)
	tb.stats.Bytes += n
	if err == io.EOF {
		return fmt.Errorf("file shrank while it was archived (%d of %d bytes)", n, size)
	}
	return err
}

// ctxReader stops reading once its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// tarHeader describes md as a PAX header keeping every attribute a PAX record
// can hold; it returns the names of the extended attributes it had to drop.
func tarHeader(name string, md *forensic.Metadata) (*tar.Header, []string) {
	hdr := &tar.Header{
		Name: name, Mode: int64(md.Mode), Uid: int(md.UID), Gid: int(md.GID),
		ModTime: md.Mtime, AccessTime: md.Atime, ChangeTime: md.Ctime,
		Format: tar.FormatPAX, PAXRecords: map[string]string{},
	}
	switch md.Type {
	case forensic.TypeDir:
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
	case forensic.TypeSymlink:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, md.LinkTarget
	case forensic.TypeFIFO:
		hdr.Typeflag = tar.TypeFifo
	case forensic.TypeChar, forensic.TypeBlock:
		hdr.Typeflag = tar.TypeChar
		if md.Type == forensic.TypeBlock {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(md.DevMajor), int64(md.DevMinor)
	default:
		hdr.Typeflag, hdr.Size = tar.TypeReg, md.Size
	}
	var dropped []string
	for k, v := range md.Xattrs {
		if strings.ContainsAny(k, "=\x00") {
			dropped = append(dropped, k)
			continue
		}
		hdr.PAXRecords["SCHILY.xattr."+k] = string(v)
	}
	return hdr, dropped
}

// dirCache keeps the chain of directory handles leading to the last entry, so
// that consecutive paths of a sorted change set share them and no path is
// ever resolved as a whole (no symlink followed, no PATH_MAX limit). The
// handles keep a bounded number of descriptors open, however deep the chain,
// and moving from one path to the next costs the components that differ.
type dirCache struct {
	dirs  *fdio.Dirs
	cur   string      // the directory chain ends at, relative to the root ("" for the root)
	chain []*fdio.Dir // chain[0] is the root, then one handle per component of cur
}

func newDirCache(root string) (*dirCache, error) {
	dirs := fdio.NewDirs(fdio.DefaultDirBudget)
	d, err := dirs.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("open container root: %w", err)
	}
	return &dirCache{dirs: dirs, chain: []*fdio.Dir{d}}, nil
}

// parent returns the directory holding rel and rel's base name.
func (d *dirCache) parent(rel string) (*fdio.Dir, string, error) {
	dir, base := "", rel
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		dir, base = rel[:i], rel[i+1:]
	}
	for !within(dir, d.cur) {
		d.chain[len(d.chain)-1].Close()
		d.chain = d.chain[:len(d.chain)-1]
		d.cur = d.cur[:max(strings.LastIndexByte(d.cur, '/'), 0)]
	}
	for len(d.cur) < len(dir) {
		start := len(d.cur)
		if start > 0 {
			start++ // the slash after cur
		}
		end := len(dir)
		if i := strings.IndexByte(dir[start:], '/'); i >= 0 {
			end = start + i
		}
		sub, err := d.chain[len(d.chain)-1].Open(dir[start:end], 0)
		if err != nil {
			return nil, "", err
		}
		d.chain, d.cur = append(d.chain, sub), dir[:end]
	}
	return d.chain[len(d.chain)-1], base, nil
}

// within reports whether dir is cur or below it.
func within(dir, cur string) bool {
	return cur == "" || dir == cur || len(dir) > len(cur) && dir[len(cur)] == '/' && dir[:len(cur)] == cur
}

func (d *dirCache) close() {
	for i := len(d.chain) - 1; i >= 0; i-- {
		d.chain[i].Close()
	}
}
