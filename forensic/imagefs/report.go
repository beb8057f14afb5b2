package imagefs

import (
	"context"
	"iter"
	"maps"
	"slices"

	"github.com/opencontainers/go-digest"

	"github.com/ctrforensics/ctrforensics/forensic"
)

// LayerReport is one layer's effect on the layers below it.
type LayerReport struct {
	Index int
	// DiffID is the layer's DiffID, or the digest of its uncompressed tar
	// computed while reading when the Layer did not say.
	DiffID digest.Digest
	// Changes lists what the layer adds (A), changes (C: the path existed
	// below, including a directory the layer ships only because a child
	// changed) and deletes (D: only the top of a deleted subtree), by path.
	// Layers sets it; in a WalkLayers callback it is nil and AllChanges
	// yields the changes one at a time.
	Changes                 []Change
	Added, Changed, Deleted int
	// Bytes is the total size of the regular files the layer's blob ships.
	Bytes int64
	// Hidden lists the non-directories the layer's blob ships that are not in
	// the final filesystem because a later layer (or a later entry of the same
	// layer) deletes or replaces them: a classic hiding place. Their Digest is
	// always computed. Sorted by path.
	Hidden []Entry

	// pending and state hold, in a WalkLayers callback, the changes not yet
	// converted and the merged filesystem they point into.
	pending []pending
	state   *seq[rec]
}

// AllChanges yields the layer's changes in order: those of Changes when it
// is set, otherwise (in a WalkLayers callback) each converted as it is
// yielded, so that a layer of a million entries is never held as Change
// values. A yielded Change is only valid until the next one.
func (r *LayerReport) AllChanges() iter.Seq[*Change] {
	return func(yield func(*Change) bool) {
		if r.Changes != nil {
			for i := range r.Changes {
				if !yield(&r.Changes[i]) {
					return
				}
			}
			return
		}
		var ch Change
		for i := range r.pending {
			ch = r.pending[i].change(r.state)
			if !yield(&ch) {
				return
			}
		}
	}
}

// Change is one path a layer adds, changes or deletes; for a deletion, Entry
// holds the deleted path's last metadata.
type Change struct {
	Kind forensic.Kind
	Entry
	// Fields lists, for a change (C), what differs from the path the layers
	// below had, in diff's vocabulary (type, mode, uid, gid, size, mtime,
	// xattrs, link_target, device, content). It is empty for a directory
	// shipped again unchanged (because something below it changed) and for a
	// file re-shipped without any difference.
	Fields []forensic.Field
	// BaseDigest is, for a change of a regular file, the digest of the
	// content the layers below had.
	BaseDigest digest.Digest
}

// MtimeOnly says a non-directory was shipped again with nothing changed but
// its mtime: the same bytes, mode and owner (a touch, or a rebuild that
// copied it).
func (c *Change) MtimeOnly() bool {
	return c.Kind == forensic.Changed && c.Type != forensic.TypeDir && slices.Equal(c.Fields, []forensic.Field{forensic.FieldMtime})
}

// Layers returns every layer's effect. It holds every layer's changes until
// the end: a large image should use WalkLayers.
func Layers(ctx context.Context, layers []Layer, opts Options) ([]LayerReport, error) {
	var reps []LayerReport
	hidden, err := WalkLayers(ctx, layers, opts, func(r *LayerReport) error {
		changes := make([]Change, 0, len(r.pending))
		for ch := range r.AllChanges() {
			changes = append(changes, *ch)
		}
		reps = append(reps, LayerReport{Index: r.Index, DiffID: r.DiffID, Changes: changes,
			Added: r.Added, Changed: r.Changed, Deleted: r.Deleted, Bytes: r.Bytes})
		return nil
	})
	if err != nil {
		return nil, err
	}
	for k := range reps {
		reps[k].Hidden = hidden[k]
	}
	return reps, nil
}

// WalkLayers reads the layers bottom up and calls fn with each layer's
// report as soon as the layer is merged, its Hidden still empty and its
// changes given by AllChanges; the report is only valid during the call. It returns, per layer, the hidden files,
// which are only known once every layer above was read. Memory holds the
// merged filesystem, one layer's entries and the hidden files, never every
// layer's changes. Regular files are always hashed, since which files end up
// hidden is only known at the end.
func WalkLayers(ctx context.Context, layers []Layer, opts Options, fn func(*LayerReport) error) ([][]Entry, error) {
	rep := &reporter{fn: fn, hiddenRecs: make([][]rec, len(layers))}
	if _, err := build(ctx, layers, newConfig(opts, true), rep); err != nil {
		return nil, err
	}
	out := make([][]Entry, len(layers))
	for k, hs := range rep.hiddenRecs {
		slices.SortStableFunc(hs, func(a, b rec) int { return comparePaths(a.path, b.path) })
		out[k] = make([]Entry, len(hs))
		for i := range hs {
			out[k][i] = hs[i].entry()
		}
	}
	return out, nil
}

// reporter collects a layer's report while it is applied and hands it to fn
// once merged; a nil reporter collects nothing.
type reporter struct {
	fn  func(*LayerReport) error
	cur LayerReport
	// pending holds the current layer's changes; a written path is converted
	// once the layer's hard links are resolved.
	pending []pending
	// hiddenRecs holds, per layer, the entries later layers delete or replace.
	hiddenRecs [][]rec
}

type pending struct {
	kind forensic.Kind
	pos  int // in the new state, or -1 for a deletion
	base rec // the lower rec of a change or deletion (strings and ext shared)
}

// layerRead records what reading layer k's blob found.
func (rep *reporter) layerRead(k int, lo *layerOps) {
	if rep == nil {
		return
	}
	rep.cur = LayerReport{Index: k, DiffID: lo.diffID, Bytes: lo.bytes}
	for i := range lo.replaced {
		rep.hidden(&lo.replaced[i])
	}
}

// change records that the rec at pos in the new state is added, or changed
// from base.
func (rep *reporter) change(kind forensic.Kind, pos int, base *rec) {
	if rep == nil {
		return
	}
	p := pending{kind: kind, pos: pos}
	if base != nil {
		p.base = *base
	}
	rep.pending = append(rep.pending, p)
}

// deleted records that the current layer deletes o.
func (rep *reporter) deleted(o *rec) {
	if rep != nil {
		rep.pending = append(rep.pending, pending{kind: forensic.Deleted, pos: -1, base: *o})
	}
}

// hidden records that o, a lower entry, is replaced or deleted.
func (rep *reporter) hidden(o *rec) {
	if rep == nil || o.isDir() {
		return
	}
	rep.hiddenRecs[o.layer] = append(rep.hiddenRecs[o.layer], *o)
}

// layerMerged counts layer k's pending changes and hands its report to fn,
// which converts the changes as it reads them.
func (rep *reporter) layerMerged(out *seq[rec]) error {
	if rep == nil {
		return nil
	}
	r := &rep.cur
	for _, p := range rep.pending {
		switch p.kind {
		case forensic.Added:
			r.Added++
		case forensic.Changed:
			r.Changed++
		case forensic.Deleted:
			r.Deleted++
		}
	}
	r.pending, r.state = rep.pending, out
	err := rep.fn(r)
	rep.pending = rep.pending[:0]
	rep.cur = LayerReport{}
	return err
}

// change converts a pending change, reading the written entry in state.
func (p *pending) change(state *seq[rec]) Change {
	ch := Change{Kind: p.kind}
	if p.pos < 0 {
		ch.Entry = p.base.entry()
		return ch
	}
	cur := state.at(p.pos)
	ch.Entry = cur.entry()
	if p.kind == forensic.Changed {
		ch.Fields = changedFields(&p.base, cur)
		ch.BaseDigest = p.base.digest()
	}
	return ch
}

// changedFields lists what differs between a path's lower rec and the one a
// layer ships; a change of type says only that.
func changedFields(old, cur *rec) []forensic.Field {
	if old.typ != cur.typ {
		return []forensic.Field{forensic.FieldType}
	}
	var fs []forensic.Field
	add := func(differ bool, f forensic.Field) {
		if differ {
			fs = append(fs, f)
		}
	}
	ox, cx := old.ext, cur.ext
	if ox == nil {
		ox = &recExt{}
	}
	if cx == nil {
		cx = &recExt{}
	}
	add(old.mode != cur.mode, forensic.FieldMode)
	add(old.uid != cur.uid, forensic.FieldUID)
	add(old.gid != cur.gid, forensic.FieldGID)
	add(old.typ == tFile && old.size != cur.size, forensic.FieldSize)
	add(old.sec != cur.sec || old.nsec != cur.nsec, forensic.FieldMtime)
	add(!maps.Equal(ox.xattrs, cx.xattrs), forensic.FieldXattrs)
	add(old.typ == tSymlink && ox.link != cx.link, forensic.FieldLinkTarget)
	add((old.typ == tChar || old.typ == tBlock) && (ox.major != cx.major || ox.minor != cx.minor), forensic.FieldDevice)
	add(old.typ == tFile && old.digest() != cur.digest(), forensic.FieldContent)
	return fs
}
