package imagefs

import (
	"archive/tar"
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/ctrforensics/ctrforensics/forensic"
)

// Export writes the final filesystem as one tar, like `docker export` of a
// container never started: owners, modes, times, xattrs (PAX), device
// numbers, symlinks and hard links, no whiteouts. Everything but regular files
// and hard links comes first, in path order, so every directory precedes its
// children; then each layer is read again and the files whose final version
// it holds are copied straight from it, each followed by its hard links.
// Nothing is buffered or written to disk. Entries below a non-directory are
// left out (with a warning), so the tar is safe to extract.
func Export(ctx context.Context, layers []Layer, w io.Writer, opts Options) error {
	c := newConfig(opts, false)
	st, err := build(ctx, layers, c, nil)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	x := &exporter{c: c, st: st, tw: tar.NewWriter(w), buf: make([]byte, 32<<10)}
	if err := x.writeMeta(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	slices.SortFunc(x.needs, func(a, b need) int {
		return cmp.Or(cmp.Compare(a.layer, b.layer), cmp.Compare(a.ord, b.ord), cmp.Compare(a.link, b.link),
			cmp.Compare(a.pos, b.pos))
	})
	for k := range layers {
		if err := x.writeContent(ctx, layers, k); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	if err := x.writeLate(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := x.tw.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// need says the rec at pos takes its content from entry ord of a layer;
// link is 1 for a hard link, so that the entry itself sorts first.
type need struct {
	layer uint16
	link  uint8
	ord   int32
	pos   int32
}

type exporter struct {
	c     *config
	st    *seq[rec]
	tw    *tar.Writer
	buf   []byte
	needs []need
	late  []int32 // hard links to non-regular files, written last
}

// writeMeta writes every entry without content and lists the others.
func (x *exporter) writeMeta() error {
	skip, warned := "", ""
	for i := range x.st.n {
		r := x.st.at(i)
		if skip != "" && within(r.path, skip) {
			if warned != skip {
				warned = skip
				x.c.warnf("export: skipped %s and the rest below non-directory %s", forensic.EscapePath(r.path), forensic.EscapePath(skip))
			}
			continue
		}
		if !r.isDir() {
			skip = r.path
		}
		if err := x.plan(r, int32(i)); err != nil {
			return err
		}
	}
	return nil
}

// plan writes r now, or records when to write it.
func (x *exporter) plan(r *rec, pos int32) error {
	hardLink := r.flags&fHardLink != 0
	switch {
	case hardLink && r.flags&fResolved == 0:
		x.c.warnf("export: skipped hard link %s to missing target %s", forensic.EscapePath(r.path), forensic.EscapePath(r.ext.link))
	case hardLink && r.typ == tFile:
		x.needs = append(x.needs, need{layer: r.ext.srcLayer, link: 1, ord: r.ext.srcOrd, pos: pos})
	case hardLink:
		x.late = append(x.late, pos)
	case r.typ == tFile:
		x.needs = append(x.needs, need{layer: r.layer, ord: r.ord, pos: pos})
	default:
		return x.write(header(r), nil)
	}
	return nil
}

// writeContent writes the files whose content is in layer k.
func (x *exporter) writeContent(ctx context.Context, layers []Layer, k int) error {
	first, _ := slices.BinarySearchFunc(x.needs, uint16(k), func(n need, k uint16) int { return cmp.Compare(n.layer, k) })
	if first == len(x.needs) || int(x.needs[first].layer) != k {
		return nil
	}
	s, err := openStream(ctx, layers, k, x.c, false)
	if err != nil {
		return err
	}
	defer s.close()
	for i := first; i < len(x.needs) && int(x.needs[i].layer) == k; {
		j := i + 1
		for j < len(x.needs) && x.needs[j].layer == x.needs[i].layer && x.needs[j].ord == x.needs[i].ord {
			j++
		}
		if err := x.writeGroup(s, x.needs[i:j]); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// writeGroup writes the recs sharing one content: the first (the entry that
// shipped it, unless deleted since) as a file, the others as hard links to it.
func (x *exporter) writeGroup(s *stream, group []need) error {
	if err := s.seek(group[0].ord); err != nil {
		return err
	}
	first := x.st.at(int(group[0].pos))
	h := header(first)
	h.Typeflag, h.Linkname, h.Size = tar.TypeReg, "", first.size
	if err := x.write(h, s); err != nil {
		return err
	}
	for _, n := range group[1:] {
		h := header(x.st.at(int(n.pos)))
		h.Typeflag, h.Linkname, h.Size = tar.TypeLink, first.path[1:], 0
		if err := x.write(h, nil); err != nil {
			return err
		}
	}
	return nil
}

// writeLate writes the hard links to non-regular files, once their targets
// are written.
func (x *exporter) writeLate() error {
	for _, pos := range x.late {
		r := x.st.at(int(pos))
		h := header(r)
		h.Typeflag, h.Linkname = tar.TypeLink, r.ext.link[1:]
		if err := x.write(h, nil); err != nil {
			return err
		}
	}
	return nil
}

// write writes h and, from s, its content.
func (x *exporter) write(h *tar.Header, s *stream) error {
	if err := x.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("write %s: %w", forensic.EscapePath(h.Name), err)
	}
	if s == nil {
		return nil
	}
	n, err := s.copyContent(x.tw, x.buf)
	if err == nil && n != h.Size {
		err = fmt.Errorf("%s: %s has %d bytes, not %d: the layer changed since it was read", s.name, forensic.EscapePath(h.Name), n, h.Size)
	}
	return err
}

// header returns the tar header of r, named relative to the root.
func header(r *rec) *tar.Header {
	h := &tar.Header{Name: r.path[1:], Mode: int64(r.mode), Uid: int(r.uid), Gid: int(r.gid), ModTime: r.mtime(),
		Format: tar.FormatPAX}
	switch r.typ {
	case tDir:
		h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
	case tSymlink:
		h.Typeflag, h.Linkname = tar.TypeSymlink, r.ext.link
	case tFIFO:
		h.Typeflag = tar.TypeFifo
	case tChar, tBlock:
		h.Typeflag, h.Devmajor, h.Devminor = tar.TypeChar, r.ext.major, r.ext.minor
		if r.typ == tBlock {
			h.Typeflag = tar.TypeBlock
		}
	default:
		h.Typeflag, h.Size = tar.TypeReg, r.size
	}
	if r.ext != nil && len(r.ext.xattrs) > 0 {
		h.PAXRecords = make(map[string]string, len(r.ext.xattrs))
		for k, v := range r.ext.xattrs {
			h.PAXRecords[xattrPrefix+k] = v
		}
	}
	return h
}

// ExportLayer writes layer k as it is stored, uncompressed: the layer's tar
// byte for byte, whiteouts and hidden entries included, nothing resolved or
// dropped. The blob digest and DiffID are checked once the whole layer is
// read: on a mismatch ExportLayer fails after writing, and the output must be
// discarded.
func ExportLayer(ctx context.Context, layers []Layer, k int, w io.Writer, opts Options) error {
	if k < 0 || k >= len(layers) {
		return fmt.Errorf("export layer: layer %d out of range: the image has %d layers", k, len(layers))
	}
	s, err := openStream(ctx, layers, k, newConfig(opts, false), false)
	if err != nil {
		return fmt.Errorf("export layer: %w", err)
	}
	defer s.close()
	if _, err := io.CopyBuffer(w, s.lim, make([]byte, 256<<10)); err != nil {
		return fmt.Errorf("export %s: %w", s.name, err)
	}
	if err := s.finish(); err != nil {
		return fmt.Errorf("export layer: %w", err)
	}
	return nil
}
