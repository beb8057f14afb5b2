package imagefs

import (
	"context"
	"strings"

	"github.com/ctrforensics/ctrforensics/forensic"
)

// ancestor is a path on the chain from the root to the last one written.
type ancestor struct {
	path string
	dir  bool
}

// merger applies one layer's ops to the state below it. Both are sorted by
// path, so one pass over them writes the new state: a directory's subtree
// follows it, and whatever the layer removes below is one contiguous run.
type merger struct {
	k   int
	c   *config
	rep *reporter
	out *seq[rec]
	// stack is the chain of paths from the root to the last one written.
	stack []ancestor
	// kill is the root of the subtree of the lower state this layer removes
	// (the root itself excluded), "" for none.
	kill string
	// gone is the last lower path reported deleted; its subtree is implied.
	gone string
	// warned is the last non-directory an entry below was reported for.
	warned string
	links  []int
}

// merge applies layer k's ops to old, draining old, and returns the new state.
func merge(ctx context.Context, old *seq[rec], lo *layerOps, k int, c *config, rep *reporter) (*seq[rec], error) {
	m := &merger{k: k, c: c, rep: rep, out: &seq[rec]{}}
	i, j := 0, 0
	for i < old.n || j < len(lo.idx) {
		if (i+j)%chunkLen == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		switch d := m.order(old, i, lo, j); {
		case d < 0:
			m.lower(old.at(i))
			i = release(old, i)
		case d > 0:
			m.apply(nil, lo.ops.at(int(lo.idx[j])))
			j++
		default:
			m.apply(old.at(i), lo.ops.at(int(lo.idx[j])))
			i = release(old, i)
			j++
		}
	}
	m.resolveLinks()
	if err := rep.layerMerged(m.out); err != nil {
		return nil, err
	}
	return m.out, nil
}

// order compares the next lower rec with the next op; an exhausted side is last.
func (m *merger) order(old *seq[rec], i int, lo *layerOps, j int) int {
	switch {
	case i == old.n:
		return 1
	case j == len(lo.idx):
		return -1
	}
	return comparePaths(old.at(i).path, lo.ops.at(int(lo.idx[j])).path)
}

// release steps past old's rec i and frees the chunk it completes.
func release(old *seq[rec], i int) int {
	i++
	if i%chunkLen == 0 {
		old.chunks[i/chunkLen-1] = nil
	}
	return i
}

func (m *merger) killed(p string) bool { return m.kill != "" && within(p, m.kill) }

// setKill removes the lower subtree below p, unless a wider removal holds.
func (m *merger) setKill(p string) {
	if !m.killed(p) {
		m.kill = p
	}
}

// lower carries a lower rec the layer does not name.
func (m *merger) lower(o *rec) {
	if m.killed(o.path) {
		m.drop(o)
		return
	}
	m.emit(*o, false)
}

// drop deletes a lower rec: reported unless an ancestor was.
func (m *merger) drop(o *rec) {
	m.rep.hidden(o)
	if m.gone != "" && within(o.path, m.gone) {
		return
	}
	m.gone = o.path
	m.rep.deleted(o)
}

// apply applies an op to the lower rec of its path, o, or nil.
func (m *merger) apply(o *rec, p *op) {
	alive := o != nil && !m.killed(o.path)
	if p.whiteout || p.opaque || (p.entry && !p.isDir()) {
		m.setKill(p.path)
	}
	switch {
	case p.entry:
		kind := forensic.Added
		if o != nil {
			kind = forensic.Changed
			m.rep.hidden(o)
		}
		m.rep.change(kind, m.emit(p.rec, true), o)
	case alive && !p.whiteout:
		pos := m.emit(*o, false)
		if p.opaque {
			m.rep.change(forensic.Changed, pos, o)
		}
	case o != nil:
		m.drop(o)
	}
}

// emit appends r to the new state after the parents it lacks, and returns its
// position.
func (m *merger) emit(r rec, fromLayer bool) int {
	m.parents(r.path, fromLayer)
	m.stack = append(m.stack, ancestor{path: r.path, dir: r.isDir()})
	if fromLayer && r.flags&fHardLink != 0 {
		m.links = append(m.links, m.out.n)
	}
	m.out.push(r)
	return m.out.n - 1
}

// parents pops the stack to p's nearest written ancestor and writes the
// directories missing between it and p, as extraction would create them.
func (m *merger) parents(p string, fromLayer bool) {
	for len(m.stack) > 0 && !within(p, m.stack[len(m.stack)-1].path) {
		m.stack = m.stack[:len(m.stack)-1]
	}
	top := ancestor{path: "/", dir: true}
	if len(m.stack) > 0 {
		top = m.stack[len(m.stack)-1]
	}
	if !top.dir && fromLayer && top.path != m.warned {
		m.warned = top.path
		m.c.warnf("layer %d: %s lies below non-directory %s: kept at its literal path, not resolved",
			m.k, forensic.EscapePath(p), forensic.EscapePath(top.path))
	}
	parent := parentOf(p)
	if parent == top.path {
		return
	}
	pos := len(top.path)
	if top.path == "/" {
		pos = 0
	}
	for pos < len(parent) {
		next := strings.IndexByte(parent[pos+1:], '/')
		end := len(parent)
		if next >= 0 {
			end = pos + 1 + next
		}
		dir := rec{path: parent[:end], mode: 0o755, ord: -1, layer: uint16(m.k), typ: tDir, flags: fImplicit}
		m.stack = append(m.stack, ancestor{path: dir.path, dir: true})
		m.out.push(dir)
		m.rep.change(forensic.Added, m.out.n-1, nil)
		pos = end
	}
}

// resolveLinks finds the content of this layer's hard links in the new
// state; a link keeps pointing at the content its target had when it was made.
func (m *merger) resolveLinks() {
	for _, pos := range m.links {
		r := m.out.at(pos)
		if !m.resolve(r) {
			m.c.warnf("layer %d: hard link %s points to missing target %s", m.k,
				forensic.EscapePath(r.path), forensic.EscapePath(r.ext.link))
		}
	}
}

// resolve follows r's target through at most maxHops links of this layer.
func (m *merger) resolve(r *rec) bool {
	cur := r
	for range maxHops {
		t := find(m.out, cur.ext.link)
		if t < 0 {
			return false
		}
		tr := m.out.at(t)
		switch {
		case tr.flags&fResolved != 0:
			r.ext.srcLayer, r.ext.srcOrd = tr.ext.srcLayer, tr.ext.srcOrd
		case tr.flags&fHardLink != 0 && int(tr.layer) == m.k:
			cur = tr
			continue
		case tr.flags&(fHardLink|fImplicit) != 0 || tr.isDir():
			return false
		default:
			r.ext.srcLayer, r.ext.srcOrd = tr.layer, tr.ord
		}
		r.typ, r.size = tr.typ, tr.size
		r.flags |= fResolved
		r.sum = tr.sum
		return true
	}
	return false
}
