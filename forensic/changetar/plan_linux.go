package changetar

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/internal/fsread"
)

// contentRecord is the PAX record that marks an entry whose content is not
// in the archive (its header says size 0); why is in the notes.
const contentRecord = "CTRFORENSICS.content"

// Archive is a tar of changes laid out before any content is read, so that
// its size is known before its first byte (a bag written as one stream
// needs it). Every entry's header is the change's record, the diff's view of
// the entry that changes.jsonl holds; the content is read when the archive
// is written, hashed and compared with the change's digest.
//
// Content that no longer fits its record is archived as far as it can be
// and noted, never silently: a file that grew since the diff gives the bytes
// its record counts; one that shrank, was replaced by another inode or
// type, or is gone is archived without content (size 0 and the PAX record
// CTRFORENSICS.content=omitted); one that shrinks while it is read is padded
// with zeros. An archive that ends up shorter than planned is followed by
// zero blocks up to its planned size, which tar readers take as padding.
type Archive struct {
	root     string
	kind     Kind
	maxBytes int64
	entries  []planned
	size     int64
	// notes are what planning found: changes left out, and why.
	notes []string
}

// planned is one entry of an Archive.
type planned struct {
	c    *forensic.Change
	form form
	// regions are a sparse file's data, found when it was planned.
	regions []region
}

// form is how an entry is archived.
type form uint8

const (
	headerOnly form = iota // a directory, symlink, FIFO or device node
	whiteout               // a deletion in a layer
	hardLink               // a second name of an archived inode
	omitted                // a file over the size limit: no content
	regular                // a file's content, its recorded size
	sparse                 // a file's data regions and their map
)

// Plan lays out the archive of kind kind of changes (sorted by path, as a
// diff gives them), read from root, a read-only tree: it reads no content,
// only where the holes are in the files the records say are sparse.
func Plan(ctx context.Context, root string, changes []forensic.Change, kind Kind, opts Options) (*Archive, error) {
	a := &Archive{root: root, kind: kind, maxBytes: fsread.NewHasher(opts.MaxBytes).MaxBytes()}
	var holes *holeFinder
	defer func() { holes.close() }()
	for i := range changes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c := &changes[i]
		e, ok := a.plan(c)
		if !ok {
			continue
		}
		if e.form == regular && c.Meta.Allocated < c.Meta.Size { // holes are possible: find them
			if holes == nil {
				holes = &holeFinder{root: root}
			}
			if e.regions = holes.find(c); e.regions != nil {
				e.form = sparse
			}
		}
		n, err := a.entrySize(&e)
		if err != nil {
			return nil, fmt.Errorf("archive %s: %w", forensic.EscapePath(c.Path), err)
		}
		a.size += n
		a.entries = append(a.entries, e)
	}
	a.size += 2 * blockSize // the end of the archive
	return a, nil
}

// Size is the number of bytes WriteTo writes.
func (a *Archive) Size() int64 { return a.size }

func (a *Archive) note(c *forensic.Change, format string, args ...any) {
	a.notes = append(a.notes, forensic.EscapePath(c.Path)+": "+fmt.Sprintf(format, args...))
}

// plan decides how c is archived, if at all, from its record.
func (a *Archive) plan(c *forensic.Change) (planned, bool) {
	e := planned{c: c}
	switch {
	case !a.kind.holds(c.Path):
		if a.kind == Layer && c.LostWith == "" && c.Kind != forensic.Deleted {
			a.note(c, "left out of the OCI layer: its name would be read as a whiteout; it is in changes.jsonl and the archive of unsafe names")
		}
		return e, false
	case c.LostWith != "":
		return e, false // the directory's whiteout or replacement removes it
	case c.Kind == forensic.Deleted && a.kind != Layer:
		a.note(c, "the deletion is not archived in a plain tar; it is in changes.jsonl")
		return e, false
	case c.Kind == forensic.Deleted:
		e.form = whiteout
		return e, true
	}
	md := c.Meta
	_, dropped := tarHeader(entryName(c), md)
	for _, x := range dropped {
		a.note(c, "extended attribute %q cannot be stored in a tar (its name has '=' or NUL); it is in changes.jsonl", forensic.EscapePath(x))
	}
	linked := c.HardLinkTo != "" && md.Type != forensic.TypeDir
	if linked && !a.kind.holds(c.HardLinkTo) {
		// The first name of the inode is in the other archive: keep a copy.
		a.note(c, "hard link to %s, which is in the other archive: archived as a copy", forensic.EscapePath(c.HardLinkTo))
		linked = false
	}
	switch {
	case linked:
		e.form = hardLink
	case md.Type == forensic.TypeSocket:
		a.note(c, "a socket cannot be archived; its metadata is in changes.jsonl")
		return e, false
	case md.Type == forensic.TypeUnknown:
		a.note(c, "unknown file type: not archived")
		return e, false
	case md.Type == forensic.TypeFile && md.Size > a.maxBytes:
		a.note(c, "content not archived: size %d exceeds the size limit %d", md.Size, a.maxBytes)
		e.form = omitted
	case md.Type == forensic.TypeFile:
		e.form = regular
	}
	return e, true
}

func entryName(c *forensic.Change) string { return strings.TrimPrefix(c.Path, "/") }

// header is the tar header of e, as its form says.
func (a *Archive) header(e *planned, f form) *tar.Header {
	c := e.c
	name := entryName(c)
	if f == whiteout {
		dir, base := path.Split(name)
		return &tar.Header{Typeflag: tar.TypeReg, Name: dir + WhiteoutPrefix + base, Mode: 0o644, Format: tar.FormatPAX}
	}
	hdr, _ := tarHeader(name, c.Meta)
	switch f {
	case hardLink:
		hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, strings.TrimPrefix(c.HardLinkTo, "/"), 0
	case omitted:
		hdr.Size = 0
		hdr.PAXRecords[contentRecord] = "omitted"
	}
	return hdr
}

// entrySize is the number of bytes e takes in the archive.
func (a *Archive) entrySize(e *planned) (int64, error) {
	hdr := a.header(e, e.form)
	if e.form == sparse {
		_, data := sparseMap(e.regions)
		headers, err := sparseHeaders(hdr, data)
		return int64(len(headers)) + blocks(data), err
	}
	var n countWriter
	if err := tar.NewWriter(&n).WriteHeader(hdr); err != nil {
		return 0, err
	}
	if e.form == regular {
		return n.n + blocks(hdr.Size), nil
	}
	return n.n, nil
}

// blocks rounds n up to whole tar blocks.
func blocks(n int64) int64 { return (n + blockSize - 1) / blockSize * blockSize }

// WriteTo writes the archive to w: exactly Size bytes, whatever happened to
// the tree since it was planned (see Archive).
func (a *Archive) WriteTo(ctx context.Context, w io.Writer) (*TarStats, error) {
	dirs, err := newDirCache(a.root)
	if err != nil {
		return nil, err
	}
	defer dirs.close()
	cw := &countWriter{w: w}
	tb := &tarBuilder{ctx: ctx, w: cw, tw: tar.NewWriter(cw), dirs: dirs, a: a,
		stats: &TarStats{Notes: slices.Clone(a.notes)}}
	for i := range a.entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		e := &a.entries[i]
		if err := tb.add(e); err != nil {
			return nil, fmt.Errorf("archive %s: %w", forensic.EscapePath(e.c.Path), err)
		}
	}
	if err := tb.tw.Close(); err != nil {
		return nil, err
	}
	if cw.n > a.size {
		return nil, fmt.Errorf("archive of changes: %d bytes written, more than the %d planned", cw.n, a.size)
	}
	tb.stats.Padding = a.size - cw.n
	if err := writeZeros(cw, tb.stats.Padding); err != nil {
		return nil, err
	}
	return tb.stats, nil
}

type tarBuilder struct {
	ctx context.Context
	// w is what tw writes to; sparse entries are written to it directly,
	// between two entries of tw.
	w     io.Writer
	tw    *tar.Writer
	dirs  *dirCache
	a     *Archive
	stats *TarStats
}

func (tb *tarBuilder) note(c *forensic.Change, format string, args ...any) {
	tb.stats.Notes = append(tb.stats.Notes, forensic.EscapePath(c.Path)+": "+fmt.Sprintf(format, args...))
}

// add writes one planned entry.
func (tb *tarBuilder) add(e *planned) error {
	if e.form != regular && e.form != sparse || e.c.Meta.Size == 0 {
		return tb.writeHeader(tb.a.header(e, e.form))
	}
	f, why, err := tb.open(e.c)
	if err != nil {
		return err
	}
	if f == nil {
		tb.note(e.c, "content not archived: %s", why)
		return tb.writeHeader(tb.a.header(e, omitted))
	}
	defer f.Close()
	h := sha256.New()
	if e.form == sparse {
		err = tb.writeSparse(e, f, h)
	} else {
		err = tb.writeRegular(e, f, h)
	}
	if err != nil {
		return err
	}
	if d := digest.NewDigest(digest.SHA256, h); e.c.Digest != "" && d != e.c.Digest {
		tb.note(e.c, "changed since the diff: archived content is %s, the diff saw %s", d, e.c.Digest)
	}
	return nil
}

// open opens the file of c as it is now, or says why its content cannot be
// archived as its record describes (f nil).
func (tb *tarBuilder) open(c *forensic.Change) (f *os.File, why string, err error) {
	f, md, why, err := tb.dirs.openRegular(entryName(c))
	switch {
	case f == nil:
		return nil, why, err
	case md.Size < c.Meta.Size:
		f.Close()
		return nil, fmt.Sprintf("shrank since the diff (%d bytes, now %d)", c.Meta.Size, md.Size), nil
	case md.Size > c.Meta.Size:
		tb.note(c, "grew since the diff (%d bytes, now %d): its first %d bytes are archived", c.Meta.Size, md.Size, c.Meta.Size)
	}
	return f, "", nil
}

// openRegular opens the regular file at rel (below the root, read-only, never
// following a symlink) with its metadata now, or says why it cannot (f nil;
// err only when the tree itself cannot be read).
func (d *dirCache) openRegular(rel string) (f *os.File, md *forensic.Metadata, why string, err error) {
	dir, base, err := d.parent(rel)
	if err != nil {
		return nil, nil, err.Error(), nil
	}
	dirfd, err := dir.Acquire()
	if err != nil {
		return nil, nil, "", err
	}
	defer dir.Release()
	md, _, err = fsread.Lstat(dirfd, base, "") // root is a merged, read-only tree
	switch {
	case err != nil:
		return nil, nil, err.Error(), nil
	case md.Type != forensic.TypeFile:
		return nil, nil, fmt.Sprintf("no longer a regular file (now %s)", md.Type), nil
	}
	fd, err := fsread.OpenRegular(dirfd, base, md)
	if err != nil {
		return nil, nil, err.Error(), nil
	}
	return os.NewFile(uintptr(fd), base), md, "", nil
}

// writeRegular writes a file's header and its recorded size of content,
// hashed into h; a file that shrinks while it is read is padded with zeros.
func (tb *tarBuilder) writeRegular(e *planned, f *os.File, h hash.Hash) error {
	hdr := tb.a.header(e, regular)
	if err := tb.writeHeader(hdr); err != nil {
		return err
	}
	n, err := io.CopyN(tb.tw, io.TeeReader(ctxReader{tb.ctx, f}, h), hdr.Size)
	tb.stats.Bytes += n
	if err == io.EOF {
		tb.note(e.c, "shrank while it was archived: %d of %d bytes read, the rest archived as zeros", n, hdr.Size)
		hashZeros(h, hdr.Size-n)
		return writeZeros(tb.tw, hdr.Size-n)
	}
	return err
}

func (tb *tarBuilder) writeHeader(hdr *tar.Header) error {
	if err := tb.tw.WriteHeader(hdr); err != nil {
		return err
	}
	tb.stats.Entries++
	return nil
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

// countWriter counts what is written through it to w (nil: discarded).
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.w == nil {
		c.n += int64(len(p))
		return len(p), nil
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeZeros writes n zero bytes.
func writeZeros(w io.Writer, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := w.Write(zeros[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// holeFinder finds the data regions of the files planned as sparse.
type holeFinder struct {
	root string
	dirs *dirCache
	err  error
}

// find returns the data regions of c's file, or nil when it has no hole
// worth a sparse entry or cannot be read now (it is then planned as a
// regular file, and writing finds out).
func (hf *holeFinder) find(c *forensic.Change) []region {
	if hf.dirs == nil && hf.err == nil {
		hf.dirs, hf.err = newDirCache(hf.root)
	}
	if hf.err != nil {
		return nil
	}
	f, md, _, err := hf.dirs.openRegular(entryName(c))
	if f == nil || err != nil {
		return nil
	}
	defer f.Close()
	if md.Size != c.Meta.Size {
		return nil
	}
	regions, ok := dataRegions(int(f.Fd()), md.Size)
	if !ok {
		return nil
	}
	return regions
}

func (hf *holeFinder) close() {
	if hf != nil && hf.dirs != nil {
		hf.dirs.close()
	}
}
