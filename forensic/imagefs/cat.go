package imagefs

import (
	"context"
	"fmt"
	"io"

	"github.com/ctrforensics/ctrforensics/forensic"
)

// Cat writes the content of the regular file at path: from the final
// filesystem when layer < 0, otherwise as layer `layer` ships it, hidden or
// not. It fails when the path is missing or not a regular file (saying what it
// is; a symlink's target is given, never followed). A hard link gives its
// target's content, as the target was when the link was made (at most 40
// links followed).
func Cat(ctx context.Context, layers []Layer, path string, layer int, w io.Writer, opts Options) error {
	if layer >= len(layers) {
		return fmt.Errorf("cat: layer %d out of range: the image has %d layers", layer, len(layers))
	}
	name, ok := cleanName(path)
	if !ok || name == "" {
		return fmt.Errorf("cat %s: not a path of a file in the image", forensic.EscapePath(path))
	}
	abs, top, where := "/"+name, layers, "the final filesystem"
	if layer >= 0 {
		top, where = layers[:layer+1], fmt.Sprintf("layer %d", layer)
	}
	c := newConfig(opts, false)
	st, err := build(ctx, top, c, nil)
	if err != nil {
		return fmt.Errorf("cat %s: %w", forensic.EscapePath(abs), err)
	}
	i := find(st, abs)
	if i < 0 {
		return fmt.Errorf("cat %s: not found in %s", forensic.EscapePath(abs), where)
	}
	if layer >= 0 && int(st.at(i).layer) != layer {
		return fmt.Errorf("cat %s: not found in %s (last written by layer %d)", forensic.EscapePath(abs), where, st.at(i).layer)
	}
	srcLayer, srcOrd, err := contentOf(st.at(i))
	if err != nil {
		return fmt.Errorf("cat %s: %w", forensic.EscapePath(abs), err)
	}
	if err := copyEntry(ctx, layers, srcLayer, srcOrd, w, c); err != nil {
		return fmt.Errorf("cat %s: %w", forensic.EscapePath(abs), err)
	}
	return nil
}

// contentOf returns the layer and ordinal of the entry holding r's content.
func contentOf(r *rec) (layer int, ord int32, err error) {
	hardLink := r.flags&fHardLink != 0
	switch {
	case hardLink && r.flags&fResolved == 0:
		return 0, 0, fmt.Errorf("hard link to missing target %s", forensic.EscapePath(r.ext.link))
	case r.typ == tSymlink && !hardLink:
		return 0, 0, fmt.Errorf("symbolic link to %s, not followed", forensic.EscapePath(r.ext.link))
	case r.typ != tFile:
		return 0, 0, fmt.Errorf("not a regular file but a %s", fileType(r.typ))
	case hardLink:
		return int(r.ext.srcLayer), r.ext.srcOrd, nil
	}
	return int(r.layer), r.ord, nil
}

// copyEntry copies the content of entry ord of layer k to w.
func copyEntry(ctx context.Context, layers []Layer, k int, ord int32, w io.Writer, c *config) error {
	s, err := openStream(ctx, layers, k, c, false)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.seek(ord); err != nil {
		return err
	}
	_, err = s.copyContent(w, make([]byte, 32<<10))
	return err
}

// seek reads up to the header of entry ord, which must be a regular file.
func (s *stream) seek(ord int32) error {
	for s.ord < int(ord) {
		hdr, err := s.next()
		if err == io.EOF {
			return fmt.Errorf("%s: entry %d missing: the layer changed since it was read", s.name, ord)
		}
		if err != nil {
			return err
		}
		if s.ord == int(ord) {
			if t, link, _ := recType(hdr.Typeflag); t != tFile || link {
				return fmt.Errorf("%s: entry %d is no longer a regular file: the layer changed since it was read", s.name, ord)
			}
		}
	}
	return nil
}
