package imagefs

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"hash"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/ctrforensics/ctrforensics/forensic"
)

// Bounds on what one entry may keep in memory, the kernel's own: a path or
// link target longer than PATH_MAX, or xattrs bigger than XATTR_SIZE_MAX,
// cannot be extracted anyway, and would let a layer grow memory by its size.
const (
	maxPathLen   = 4096
	maxXattrSize = 64 << 10
)

// OCI whiteout names.
const (
	whPrefix = ".wh."
	whMeta   = ".wh..wh."
	whOpaque = ".wh..wh..opq"
)

// op is what one layer does to one path: ship an entry, delete the lower
// path (whiteout), hide the lower directory's content (opaque), or several.
type op struct {
	rec
	entry, whiteout, opaque bool
}

// layerOps is a layer read: its ops in tar order, and the index of one op per
// path, sorted by path, that combines all the ops on that path.
type layerOps struct {
	ops seq[op]
	idx []int32
	// diffID is the digest of the uncompressed tar (when computed), bytes
	// the total size of its regular files.
	diffID digest.Digest
	bytes  int64
	// replaced lists the entries a later entry of the same layer replaces.
	replaced []rec
	// kept holds the content a reader was told to keep, by entry ordinal.
	kept map[int32][]byte
	// indexed says the layer was read from its index, not from its blob.
	indexed bool
}

// reader turns one layer's tar headers into ops.
type reader struct {
	s    *stream
	k    int
	c    *config
	in   *interner
	sums sums
	// h hashes one entry's content at a time.
	h     hash.Hash
	hash  bool
	bytes int64
	buf   []byte
	ops   seq[op]
	// keep, when set, says which regular files' content to keep in memory
	// (at most maxKept bytes each), by path.
	keep func(path string) bool
	kept map[int32][]byte
	// keptAt is the ordinal of the entry kept for each path: a later entry
	// for the same path replaces it (at most one file's content per path).
	keptAt map[string]int32
}

// maxKept bounds the content of one file a reader keeps.
const maxKept = 1 << 20

// readLayer reads layer k whole; report asks for what a layer report needs
// (every file hashed, the DiffID computed). It touches nothing shared but
// c.warn, so that layers can be read in parallel.
func readLayer(ctx context.Context, layers []Layer, k int, c *config, report bool) (*layerOps, error) {
	return readLayerKeeping(ctx, layers, k, c, report, nil)
}

// readLayerKeeping reads layer k whole and keeps the content of the small
// regular files keep names (when not hashing), in layerOps.kept by ordinal.
// A layer c.index has an index for is not read: nothing is kept then.
func readLayerKeeping(ctx context.Context, layers []Layer, k int, c *config, report bool, keep func(string) bool) (*layerOps, error) {
	hash := c.hash || report
	if lo := cachedLayer(ctx, layers, k, c, hash, report); lo != nil {
		return lo, nil
	}
	var warnings []string
	if c.index != nil {
		// The layer's own warnings are stored with its index.
		cc, warn := *c, c.warn
		cc.warn = func(msg string) {
			warnings = append(warnings, msg)
			warn(msg)
		}
		c = &cc
	}
	s, err := openStream(ctx, layers, k, c, report)
	if err != nil {
		return nil, err
	}
	defer s.close()
	rd := &reader{s: s, k: k, c: c, in: &interner{}, hash: hash, buf: make([]byte, 32<<10), keep: keep}
	for {
		hdr, err := s.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := rd.add(hdr); err != nil {
			return nil, err
		}
	}
	if err := s.finish(); err != nil {
		return nil, err
	}
	diffID := s.diffID().sum()
	storeLayer(layers, k, c, &index{digest: layers[k].Digest, wantDiffID: layers[k].DiffID, diffID: diffID, bytes: rd.bytes,
		hashed: hash, size: max(s.lim.n, s.content), warnings: warnings}, &rd.ops)
	lo := rd.sorted()
	lo.diffID, lo.bytes, lo.kept = diffID, rd.bytes, rd.kept
	return lo, nil
}

// cleanName normalizes a tar name into a relative cleaned path, "" for the
// root; ok is false when the name escapes the root.
func cleanName(name string) (p string, ok bool) {
	for {
		switch {
		case strings.HasPrefix(name, "/"):
			name = name[1:]
		case strings.HasPrefix(name, "./"):
			name = name[2:]
		default:
			p = path.Clean(name)
			switch {
			case p == ".":
				return "", true
			case p == ".." || strings.HasPrefix(p, "../"):
				return "", false
			}
			return p, true
		}
	}
}

// add records one header.
func (rd *reader) add(hdr *tar.Header) error {
	if len(hdr.Name) > maxPathLen || len(hdr.Linkname) > maxPathLen {
		rd.c.warnf("layer %d: skipped entry %s...: its name or link target is longer than %d bytes",
			rd.k, forensic.EscapePath(hdr.Name[:min(len(hdr.Name), 256)]), maxPathLen)
		return nil
	}
	name, ok := cleanName(hdr.Name)
	if !ok {
		rd.c.warnf("layer %d: skipped entry %s: its path escapes the root", rd.k, forensic.EscapePath(hdr.Name))
		return nil
	}
	if name == "" {
		return nil // the root directory, not listed
	}
	dir, base := path.Split(name)
	if strings.HasPrefix(base, whPrefix) {
		rd.whiteout(dir, base)
		return nil
	}
	r, ok := rd.toRec(hdr, name)
	if !ok {
		return nil
	}
	if r.hasContent() {
		rd.bytes += r.size
		if err := rd.content(&r); err != nil {
			return err
		}
	}
	rd.ops.push(op{rec: r, entry: true})
	return nil
}

// whiteout records a whiteout entry dir+base; dir is "" or ends with "/".
func (rd *reader) whiteout(dir, base string) {
	switch {
	case base == whOpaque:
		rd.ops.push(op{rec: rec{path: rd.in.str("/", strings.TrimSuffix(dir, "/")), layer: uint16(rd.k)}, opaque: true})
		return
	case strings.HasPrefix(base, whMeta):
		rd.c.warnf("layer %d: ignored whiteout metadata %s", rd.k, forensic.EscapePath(dir+base))
		return
	}
	target := base[len(whPrefix):]
	if target == "" || target == "." || target == ".." {
		rd.c.warnf("layer %d: skipped invalid whiteout %s", rd.k, forensic.EscapePath(dir+base))
		return
	}
	rd.ops.push(op{rec: rec{path: rd.in.str("/", dir+target), layer: uint16(rd.k)}, whiteout: true})
}

// recType maps a tar type flag; ok is false for types no filesystem holds.
func recType(flag byte) (t uint8, hardLink, ok bool) {
	switch flag {
	case tar.TypeReg, '\x00', tar.TypeCont, tar.TypeGNUSparse:
		return tFile, false, true
	case tar.TypeLink:
		return tFile, true, true
	case tar.TypeDir:
		return tDir, false, true
	case tar.TypeSymlink:
		return tSymlink, false, true
	case tar.TypeFifo:
		return tFIFO, false, true
	case tar.TypeChar:
		return tChar, false, true
	case tar.TypeBlock:
		return tBlock, false, true
	}
	return 0, false, false
}

// toRec builds the rec of a header named name (cleaned, relative).
func (rd *reader) toRec(hdr *tar.Header, name string) (rec, bool) {
	typ, hardLink, ok := recType(hdr.Typeflag)
	if !ok {
		rd.c.warnf("layer %d: skipped entry %s of unsupported tar type %q", rd.k, forensic.EscapePath(name), hdr.Typeflag)
		return rec{}, false
	}
	r := rec{
		path: rd.in.str("/", name), sec: hdr.ModTime.Unix(), nsec: int32(hdr.ModTime.Nanosecond()),
		ord: int32(rd.s.ord), mode: uint32(hdr.Mode) & 0o7777, uid: uint32(hdr.Uid), gid: uint32(hdr.Gid),
		layer: uint16(rd.k), typ: typ,
	}
	switch {
	case hardLink:
		r.flags |= fHardLink
		r.x().link = rd.linkTarget(hdr.Linkname)
	case typ == tFile:
		r.size = hdr.Size
	case typ == tSymlink:
		r.x().link = rd.in.str("", hdr.Linkname)
	case typ == tChar || typ == tBlock:
		r.x().major, r.x().minor = hdr.Devmajor, hdr.Devminor
	}
	rd.xattrs(&r, hdr.PAXRecords)
	return r, true
}

// linkTarget is a hard link's target as an absolute path, or as stored when
// it escapes the root (it then resolves to nothing).
func (rd *reader) linkTarget(target string) string {
	if p, ok := cleanName(target); ok {
		return rd.in.str("/", p)
	}
	return rd.in.str("", target)
}

const xattrPrefix = "SCHILY.xattr."

func (rd *reader) xattrs(r *rec, pax map[string]string) {
	size := 0
	for k, v := range pax {
		if name, ok := strings.CutPrefix(k, xattrPrefix); ok {
			if size += len(name) + len(v); size > maxXattrSize {
				rd.c.warnf("layer %d: %s: dropped extended attributes beyond %d bytes", rd.k, forensic.EscapePath(r.path), maxXattrSize)
				return
			}
			x := r.x()
			if x.xattrs == nil {
				x.xattrs = map[string]string{}
			}
			x.xattrs[name] = v
		}
	}
}

// content hashes the current entry's content into r, or keeps it, when
// asked to.
func (rd *reader) content(r *rec) error {
	if rd.hash || rd.keep == nil || r.size > maxKept || !rd.keep(r.path) {
		return rd.digest(r)
	}
	var b bytes.Buffer
	if _, err := rd.s.copyContent(&b, rd.buf); err != nil {
		return err
	}
	if rd.kept == nil {
		rd.kept, rd.keptAt = map[int32][]byte{}, map[string]int32{}
	}
	if old, ok := rd.keptAt[r.path]; ok {
		delete(rd.kept, old)
	}
	rd.kept[r.ord], rd.keptAt[r.path] = b.Bytes(), r.ord
	return nil
}

// digest hashes the current entry's content into r when asked to.
func (rd *reader) digest(r *rec) error {
	if !rd.hash {
		return nil
	}
	if rd.h == nil {
		rd.h = sha256.New()
	}
	rd.h.Reset()
	if _, err := rd.s.copyContent(rd.h, rd.buf); err != nil {
		return err
	}
	r.sum = rd.sums.next()
	rd.h.Sum(r.sum[:0])
	return nil
}

// sorted indexes the ops by path and folds several ops on one path into the
// last: the last entry wins, whiteout and opaque flags add up. An entry a
// later one in the same layer replaces is hidden content of the layer.
func (rd *reader) sorted() *layerOps {
	lo := &layerOps{ops: rd.ops, idx: make([]int32, rd.ops.n)}
	for i := range lo.idx {
		lo.idx[i] = int32(i)
	}
	slices.SortFunc(lo.idx, func(a, b int32) int {
		if c := comparePaths(lo.ops.at(int(a)).path, lo.ops.at(int(b)).path); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	uniq := lo.idx[:0]
	for i := 0; i < len(lo.idx); {
		j := i + 1
		for j < len(lo.idx) && lo.ops.at(int(lo.idx[j])).path == lo.ops.at(int(lo.idx[i])).path {
			j++
		}
		uniq = append(uniq, lo.fold(lo.idx[i:j]))
		i = j
	}
	lo.idx = uniq
	return lo
}

// fold combines the ops of one path, in tar order, into one and returns its
// index.
func (lo *layerOps) fold(group []int32) int32 {
	win := group[len(group)-1]
	for _, i := range slices.Backward(group) {
		if lo.ops.at(int(i)).entry {
			win = i
			break
		}
	}
	w := lo.ops.at(int(win))
	for _, i := range group {
		o := lo.ops.at(int(i))
		w.whiteout = w.whiteout || o.whiteout
		w.opaque = w.opaque || o.opaque
		if o.entry && i != win && !o.isDir() {
			lo.replaced = append(lo.replaced, o.rec)
		}
	}
	return win
}
