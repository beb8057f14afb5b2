// Package browse is the interactive, read-only terminal view of an image in
// the spirit of dive: its layers with their history step, the merged tree
// coloured by the layer that last touched each entry, what the selected layer
// adds, changes, deletes and ships hidden, the image's findings next to the
// layers and entries they concern, and a viewer of a file's exact bytes from
// the layer that holds them. For a container, its changes against the image
// come on top, with digests.
//
// It only reads what Data holds and what Data.Read returns; it writes nothing
// but the screen. It draws in 80x24 and larger terminals and needs no mouse.
package browse

import (
	"context"
	"regexp"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/imagefs"
)

// ContainerLayer is the layer index of a container's own changes.
const ContainerLayer = -1

// Layer is one layer of the image as the view shows it.
type Layer struct {
	Index     int
	DiffID    digest.Digest
	Bytes     int64
	CreatedBy string
	Changes   []imagefs.Change
	// Hidden lists the files the layer ships that later layers hide.
	Hidden                  []imagefs.Entry
	Added, Changed, Deleted int
	// Findings are the history findings of the step that made the layer.
	Findings []string
}

// Data is everything the view shows.
type Data struct {
	// Title names what is browsed.
	Title  string
	Layers []Layer
	// Files is the image's final filesystem.
	Files []imagefs.Entry
	// ImageFindings are the findings about the config and empty steps.
	ImageFindings []string
	// Container holds a container's changes against its image; nil for an
	// image.
	Container []forensic.Change
	// Read returns at most max bytes of the file at path as layer ships it
	// (ContainerLayer: the container's current file).
	Read func(ctx context.Context, path string, layer int, max int64) ([]byte, error)
}

// mark is what the selected layer did to a row's path.
type mark byte

const (
	markNone    mark = ' '
	markAdded   mark = 'A'
	markChanged mark = 'C'
	markDeleted mark = 'D'
	markHidden  mark = 'H'
)

// row is one line of the tree.
type row struct {
	path  string
	typ   forensic.FileType
	mode  uint32
	uid   uint32
	gid   uint32
	size  int64
	link  string
	layer int // the layer that last touched it, colouring it
	mark  mark
	// from is the layer to read the bytes from, ContainerLayer for the
	// container's; -2 when there is nothing to read.
	from    int
	digest  digest.Digest
	base    digest.Digest
	fields  []forensic.Field
	finding string
}

// noRead marks a row whose bytes cannot be read.
const noRead = -2

// rows builds the tree for the selected layer: the final filesystem (and
// the container's, in container mode), with the selected layer's changes
// marked, the paths it deleted and the files it ships hidden added.
func (d *Data) rows(sel int, findings map[string]string) []row {
	var out []row
	byPath := map[string]int{}
	for _, e := range d.Files {
		r := entryRow(e)
		r.finding = findings[e.Path]
		byPath[e.Path] = len(out)
		out = append(out, r)
	}
	if sel == ContainerLayer {
		return d.containerRows(out, byPath, findings)
	}
	l := d.Layers[sel]
	for _, ch := range l.Changes {
		switch ch.Kind {
		case forensic.Added, forensic.Changed:
			if i, ok := byPath[ch.Path]; ok {
				out[i].mark = mark(ch.Kind[0])
				out[i].fields, out[i].base = ch.Fields, ch.BaseDigest
			}
		case forensic.Deleted:
			r := entryRow(ch.Entry)
			r.mark = markDeleted
			out = append(out, r)
		}
	}
	for _, h := range l.Hidden {
		r := entryRow(h)
		r.mark = markHidden
		out = append(out, r)
	}
	sortRows(out)
	return out
}

// containerRows puts the container's changes on the image's tree.
func (d *Data) containerRows(out []row, byPath map[string]int, findings map[string]string) []row {
	for _, ch := range d.Container {
		if ch.Meta == nil {
			continue
		}
		r := changeRow(ch)
		r.finding = findings[ch.Path]
		if i, ok := byPath[ch.Path]; ok {
			if ch.Kind == forensic.Deleted {
				out[i].mark, out[i].from, out[i].base = markDeleted, out[i].layer, ch.BaseDigest
				continue
			}
			out[i] = r
			continue
		}
		out = append(out, r)
	}
	sortRows(out)
	return out
}

func entryRow(e imagefs.Entry) row {
	r := row{path: e.Path, typ: e.Type, mode: e.Mode, uid: e.UID, gid: e.GID, size: e.Size, link: e.LinkTarget,
		layer: e.Layer, mark: markNone, from: noRead, digest: e.Digest}
	if e.Type == forensic.TypeFile {
		r.from = e.Layer
	}
	return r
}

func changeRow(ch forensic.Change) row {
	m := ch.Meta
	r := row{path: ch.Path, typ: m.Type, mode: uint32(m.Mode), uid: m.UID, gid: m.GID, size: m.Size, link: m.LinkTarget,
		layer: ContainerLayer, mark: mark(ch.Kind[0]), from: noRead, digest: ch.Digest, base: ch.BaseDigest, fields: ch.Fields}
	if m.Type == forensic.TypeFile {
		r.from = ContainerLayer
	}
	return r
}

// sortRows orders rows by path component by component, a directory right
// before its subtree; rows of one path keep their order.
func sortRows(rs []row) {
	key := func(p string) string { return strings.ReplaceAll(p, "/", "\x00") }
	sort.SliceStable(rs, func(i, j int) bool { return key(rs[i].path) < key(rs[j].path) })
}

// pathInText finds absolute paths in a finding's text.
var pathInText = regexp.MustCompile(`/[^\s'"\x60;|&)(]+`)

// findingsByPath maps each absolute path a finding names to that finding,
// so that the tree can show it next to the entry.
func findingsByPath(findings []string) map[string]string {
	out := map[string]string{}
	for _, f := range findings {
		for _, p := range pathInText.FindAllString(f, -1) {
			p = strings.TrimRight(p, ".,:")
			if _, ok := out[p]; !ok && len(p) > 1 {
				out[p] = f
			}
		}
	}
	return out
}
