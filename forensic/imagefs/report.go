package imagefs

import (
	"context"
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
	Changes                 []Change
	Added, Changed, Deleted int
	// Bytes is the total size of the regular files the layer's blob ships.
	Bytes int64
	// Hidden lists the non-directories the layer's blob ships that are not in
	// the final filesystem because a later layer (or a later entry of the same
	// layer) deletes or replaces them: a classic hiding place. Their Digest is
	// always computed. Sorted by path.
	Hidden []Entry
}

// Change is one path a layer adds, changes or deletes; for a deletion, Entry
// holds the deleted path's last metadata.
type Change struct {
	Kind forensic.Kind
	Entry
}

// Layers returns every layer's effect. It always hashes regular files, since
// which files end up hidden is only known once the later layers are read.
func Layers(ctx context.Context, layers []Layer, opts Options) ([]LayerReport, error) {
	rep := &reporter{reports: make([]LayerReport, len(layers))}
	for k := range rep.reports {
		rep.reports[k].Index = k
	}
	if _, err := build(ctx, layers, newConfig(opts, true), rep); err != nil {
		return nil, err
	}
	for k := range rep.reports {
		slices.SortStableFunc(rep.reports[k].Hidden, func(a, b Entry) int { return comparePaths(a.Path, b.Path) })
	}
	return rep.reports, nil
}

// reporter collects the reports while layers are applied; a nil reporter
// collects nothing.
type reporter struct {
	reports []LayerReport
	// pending holds the current layer's changes; a written path is converted
	// once the layer's hard links are resolved.
	pending []pending
}

type pending struct {
	kind forensic.Kind
	pos  int // in the new state, or -1 for a deletion
	e    Entry
}

// layerRead records what reading layer k's blob found.
func (rep *reporter) layerRead(k int, diffID digest.Digest, bytes int64) {
	if rep == nil {
		return
	}
	rep.reports[k].DiffID, rep.reports[k].Bytes = diffID, bytes
}

// change records that the rec at pos in the new state is added or changed.
func (rep *reporter) change(kind forensic.Kind, pos int) {
	if rep != nil {
		rep.pending = append(rep.pending, pending{kind: kind, pos: pos})
	}
}

// deleted records that the current layer deletes o.
func (rep *reporter) deleted(o *rec) {
	if rep != nil {
		rep.pending = append(rep.pending, pending{kind: forensic.Deleted, pos: -1, e: o.entry()})
	}
}

// hidden records that o, a lower entry, is replaced or deleted.
func (rep *reporter) hidden(o *rec) {
	if rep == nil || o.isDir() {
		return
	}
	r := &rep.reports[o.layer]
	r.Hidden = append(r.Hidden, o.entry())
}

// layerMerged turns layer k's pending changes into its report.
func (rep *reporter) layerMerged(k int, out *seq[rec]) {
	if rep == nil {
		return
	}
	r := &rep.reports[k]
	for _, p := range rep.pending {
		if p.pos >= 0 {
			p.e = out.at(p.pos).entry()
		}
		r.Changes = append(r.Changes, Change{Kind: p.kind, Entry: p.e})
		switch p.kind {
		case forensic.Added:
			r.Added++
		case forensic.Changed:
			r.Changed++
		case forensic.Deleted:
			r.Deleted++
		}
	}
	rep.pending = rep.pending[:0]
}
