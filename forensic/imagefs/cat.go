package imagefs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/ctrforensics/ctrforensics/forensic"
)

// maxHops bounds the hard links followed to reach content and the symbolic
// links followed to resolve a path, as the kernel bounds symlinks.
const maxHops = 40

// CatOptions tunes Cat.
type CatOptions struct {
	Options
	// Layer reads the entry layer Layer ships, hidden or not, at its literal
	// path; -1 reads the final filesystem, resolving symbolic links.
	Layer int
	// NoFollow writes a final symbolic link's target, as stored, instead of
	// following it. Links in the path's parent directories are still followed.
	NoFollow bool
	// Followed, when set, is called for every symbolic link followed, with the
	// link's path and its target as stored.
	Followed func(link, target string)
}

// Cat writes the content of the regular file at path. In the final
// filesystem (Layer < 0) symbolic links are resolved the way the kernel
// resolves them with the image's root as "/": inside the image only, never on
// the host, at most 40 of them. A path that resolves nowhere but that a layer
// ships literally below a symbolic link (hostile: extraction writes through
// the link) is read at that literal path, with a warning. A hard link gives
// its target's content as the target was when the link was made.
//
// Layers are read from the top down and only until the path's final state is
// known, then the one holding the content. Each layer used is read to its end
// (a later entry of a layer replaces an earlier one, a later whiteout deletes
// it) and its digests checked before anything is written; a file too big to
// be kept on the way is read again, and that read too goes to the blob's end
// and is checked, failing after the bytes when the blob changed. The layers
// just below the one being read are read at the same time, one per CPU (at
// most 4) unless the host's CPUs are busy, and dropped, warnings included,
// when not needed.
//
// With an IndexStore, a layer with an index is not decompressed: its blob's
// digest is checked in the background while the path is looked up, and
// every such check must pass before a byte, a warning or a link followed is
// told. The bytes then come from a second read of the blob, decompressed up
// to the file, whose digest is checked too: a file of up to 1 MiB is read
// while the checks run and held until all pass, a larger one is read after
// them and fails after its bytes when the blob changed.
func Cat(ctx context.Context, layers []Layer, path string, w io.Writer, opts CatOptions) error {
	return cat(ctx, layers, path, w, opts, catAhead())
}

// cat is Cat reading at most ahead layers at once.
func cat(ctx context.Context, layers []Layer, path string, w io.Writer, opts CatOptions, ahead int) error {
	if opts.Layer >= len(layers) {
		return fmt.Errorf("cat: layer %d out of range: the image has %d layers", opts.Layer, len(layers))
	}
	name, ok := cleanName(path)
	if !ok || name == "" {
		return fmt.Errorf("cat %s: not a path of a file in the image", forensic.EscapePath(path))
	}
	ctx, cancel := context.WithCancel(ctx)
	v := &view{ctx: ctx, layers: layers, c: newConfig(opts.Options, false), ops: make([]*layerOps, len(layers)),
		reads: make([]*layerRead, len(layers)), ahead: ahead, wanted: map[string]bool{}}
	// Reads still ahead when Cat returns are not needed: stopped and waited
	// for, so that nothing reads a layer once Cat has returned.
	defer v.wg.Wait()
	defer v.checks.wait()
	defer cancel()
	var held heldCalls
	if v.c.index != nil {
		// The blobs of the layers read from their indexes are checked while
		// the path is looked up, all at once, and must pass before a byte,
		// an answer, a warning or a link followed is told.
		v.c.checkLater = v.checks.start
		v.c.warn = held.wrap1(v.c.warn)
		if opts.Followed != nil {
			opts.Followed = held.wrap2(opts.Followed)
		}
	}
	abs := "/" + name
	v.want(abs)
	var err error
	if opts.Layer >= 0 {
		err = v.catLayer(abs, opts, w)
	} else {
		err = v.catFinal(abs, opts, w)
	}
	if cerr := v.checks.wait(); cerr != nil {
		err = cerr
	} else {
		held.run()
	}
	if err != nil {
		return fmt.Errorf("cat %s: %w", forensic.EscapePath(abs), err)
	}
	return nil
}

// heldCalls holds calls until run.
type heldCalls struct {
	mu    sync.Mutex
	calls []func()
}

func (h *heldCalls) hold(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, f)
}

// wrap1 and wrap2 return f held until run.
func (h *heldCalls) wrap1(f func(string)) func(string) {
	return func(a string) { h.hold(func() { f(a) }) }
}

func (h *heldCalls) wrap2(f func(string, string)) func(string, string) {
	return func(a, b string) { h.hold(func() { f(a, b) }) }
}

// run makes the calls held, in order.
func (h *heldCalls) run() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range h.calls {
		f()
	}
	h.calls = nil
}

// blobChecks are the digest checks of the blobs of the layers read from
// their indexes, run in the background, one per CPU at a time.
type blobChecks struct {
	wg   sync.WaitGroup
	sem  chan struct{}
	mu   sync.Mutex
	errs map[int]error
}

// start runs the check of layer k's blob. It is called from one goroutine.
func (b *blobChecks) start(k int, check func() error) {
	if b.sem == nil {
		b.sem = make(chan struct{}, runtime.GOMAXPROCS(0))
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.sem <- struct{}{}
		defer func() { <-b.sem }()
		if err := check(); err != nil {
			b.mu.Lock()
			defer b.mu.Unlock()
			if b.errs == nil {
				b.errs = map[int]error{}
			}
			b.errs[k] = err
		}
	}()
}

// wait waits for the checks started and returns their failures, from the
// top layer down.
func (b *blobChecks) wait() error {
	b.wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for _, k := range slices.Backward(slices.Sorted(maps.Keys(b.errs))) {
		errs = append(errs, b.errs[k])
	}
	return errors.Join(errs...)
}

// catFinal writes the content p has in the final filesystem.
func (v *view) catFinal(p string, opts CatOptions, w io.Writer) error {
	top := len(v.layers) - 1
	resolved, err := v.resolve(p, top, !opts.NoFollow, opts.Followed)
	if err != nil {
		return err
	}
	r, err := v.stat(resolved, top)
	if err != nil || resolved == p {
		return v.found(r, err, opts.NoFollow, w)
	}
	// A layer that ships an entry below a symbolic link writes, when
	// extracted, through the link: the literal entry is what the path holds.
	lit, err := v.belowNonDir(p, top)
	if err != nil {
		return err
	}
	if lit != nil {
		v.c.warnf("%s: layer %d ships it below a non-directory: read at its literal path, not at %s",
			forensic.EscapePath(p), lit.layer, forensic.EscapePath(resolved))
		r = lit
	}
	if r == nil {
		return fmt.Errorf("not found in the final filesystem: it resolves to %s", forensic.EscapePath(resolved))
	}
	return v.found(r, nil, opts.NoFollow, w)
}

// belowNonDir returns the entry a layer ships at p when one of p's parents
// is not a directory, or nil.
func (v *view) belowNonDir(p string, top int) (*rec, error) {
	for _, a := range parentsOf(p) {
		r, err := v.stat(a, top)
		if err != nil {
			return nil, err
		}
		if r != nil && !r.isDir() {
			return v.stat(p, top)
		}
	}
	return nil, nil
}

// found writes r's content, or says why there is none.
func (v *view) found(r *rec, err error, noFollow bool, w io.Writer) error {
	if err != nil {
		return err
	}
	if r == nil {
		return fmt.Errorf("not found in the final filesystem")
	}
	return v.write(r, noFollow, w)
}

// catLayer writes the entry layer opts.Layer ships at p.
func (v *view) catLayer(p string, opts CatOptions, w io.Writer) error {
	k := opts.Layer
	lo, err := v.layer(k)
	if err != nil {
		return err
	}
	o := lo.lookup(p)
	if o == nil || !o.entry {
		if r, err := v.stat(p, k); err == nil && r != nil {
			return fmt.Errorf("not found in layer %d (last written by layer %d)", k, r.layer)
		}
		return fmt.Errorf("not found in layer %d", k)
	}
	r := o.rec
	if r.typ == tSymlink && r.flags&fHardLink == 0 && !opts.NoFollow {
		return &SymlinkError{Target: r.ext.link, Layer: k}
	}
	return v.write(&r, opts.NoFollow, w)
}

// write writes r's content, or a symbolic link's target when noFollow, once
// the blobs of the layers read from their indexes passed their checks.
func (v *view) write(r *rec, noFollow bool, w io.Writer) error {
	hardLink := r.flags&fHardLink != 0
	switch {
	case r.typ == tSymlink && !hardLink && noFollow:
		if err := v.checks.wait(); err != nil {
			return err
		}
		_, err := io.WriteString(w, r.ext.link)
		return err
	case r.typ == tSymlink && !hardLink:
		return &SymlinkError{Target: r.ext.link, Layer: -1}
	case hardLink:
		src, err := v.linkSource(r)
		if err != nil {
			return err
		}
		r = src
	}
	if r.typ != tFile {
		return fmt.Errorf("not a regular file but a %s", fileType(r.typ))
	}
	lo := v.ops[r.layer]
	if lo != nil && lo.indexed && r.size <= maxKept {
		// A layer read from its index: the bytes come from a second read of
		// its blob, decompressed up to the file and checked to its end,
		// made while the blob checks go on and held until all pass.
		var held bytes.Buffer
		err := copyEntry(v.ctx, v.layers, int(r.layer), r.ord, &held, v.c, false)
		if cerr := v.checks.wait(); cerr != nil {
			return cerr
		}
		if err != nil {
			return err
		}
		_, err = w.Write(held.Bytes())
		return err
	}
	if err := v.checks.wait(); err != nil {
		return err
	}
	if lo != nil {
		if b, ok := lo.kept[r.ord]; ok {
			_, err := w.Write(b)
			return err
		}
	}
	err := copyEntry(v.ctx, v.layers, int(r.layer), r.ord, w, v.c, lo == nil || !lo.indexed)
	if errors.Is(err, errChanged) {
		return fmt.Errorf("%w; the bytes written are not to be trusted", err)
	}
	return err
}

// SymlinkError says the entry to read is a symbolic link Cat was told not
// to follow, or one a single layer ships (a layer's entries are never
// resolved).
type SymlinkError struct {
	Target string
	// Layer is the layer read, or -1 for the final filesystem.
	Layer int
}

func (e *SymlinkError) Error() string {
	if e.Layer >= 0 {
		return fmt.Sprintf("symbolic link to %s, not followed: a layer's entry is read as stored", forensic.EscapePath(e.Target))
	}
	return fmt.Sprintf("symbolic link to %s, not followed", forensic.EscapePath(e.Target))
}

// view answers questions about the filesystem the layers build, reading
// layers from the top down, each at most once, and only when asked. While a
// layer is read, the next ones below it are read ahead (ahead layers at
// once), since a path the upper layer does not decide sends the
// question below; a layer read ahead but never asked for is dropped, its
// warnings with it, so that what Cat says depends only on the layers it
// needed. With an IndexStore, layers are read one at a time when asked
// (reading an index is cheap, and making one is a side effect).
type view struct {
	ctx    context.Context
	layers []Layer
	c      *config
	ops    []*layerOps  // nil until asked for and read
	reads  []*layerRead // nil until started
	ahead  int          // layers read at once, at least 1
	wg     sync.WaitGroup
	// wanted holds the paths looked up so far: a layer read keeps their
	// content (when small), so that the file need not be read again. Layers
	// read ahead consult it, hence mu.
	mu     sync.Mutex
	wanted map[string]bool
	checks blobChecks
}

// layerRead is one layer read, perhaps ahead of being asked for: done is
// closed once lo or err and the layer's warnings are set.
type layerRead struct {
	done     chan struct{}
	lo       *layerOps
	err      error
	warnings []string
}

// want adds p to the wanted paths.
func (v *view) want(p string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.wanted[p] = true
}

// isWanted says whether p is a wanted path.
func (v *view) isWanted(p string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.wanted[p]
}

// layer returns layer k's ops, reading it the first time, and starts reading
// the layers below it ahead.
func (v *view) layer(k int) (*layerOps, error) {
	if v.ops[k] != nil {
		return v.ops[k], nil
	}
	if v.c.index != nil {
		lo, err := readLayerKeeping(v.ctx, v.layers, k, v.c, false, v.isWanted)
		if err != nil {
			return nil, err
		}
		v.ops[k] = lo
		return lo, nil
	}
	for j := k; j >= 0 && j > k-max(v.ahead, 1); j-- {
		v.start(j)
	}
	r := v.reads[k]
	<-r.done
	for _, w := range r.warnings {
		v.c.warn(w)
	}
	r.warnings = nil
	if r.err != nil {
		return nil, r.err
	}
	v.ops[k] = r.lo
	return r.lo, nil
}

// start starts reading layer k, unless it was started already. Its warnings
// are held until the layer is asked for.
func (v *view) start(k int) {
	if v.reads[k] != nil {
		return
	}
	r := &layerRead{done: make(chan struct{})}
	v.reads[k] = r
	c := *v.c
	c.warn = func(msg string) { r.warnings = append(r.warnings, msg) }
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		defer close(r.done)
		r.lo, r.err = readLayerKeeping(v.ctx, v.layers, k, &c, false, v.isWanted)
	}()
}

// lookup returns the op the layer folds for path p, or nil.
func (lo *layerOps) lookup(p string) *op {
	lo2, hi := 0, len(lo.idx)
	for lo2 < hi {
		mid := int(uint(lo2+hi) >> 1)
		if comparePaths(lo.ops.at(int(lo.idx[mid])).path, p) < 0 {
			lo2 = mid + 1
		} else {
			hi = mid
		}
	}
	if lo2 < len(lo.idx) {
		if o := lo.ops.at(int(lo.idx[lo2])); o.path == p {
			return o
		}
	}
	return nil
}

// stat returns the entry at path p once layers 0 to top are applied, nil
// when there is none (a directory only implied by its children included). It
// reads layers from top down and stops at the first that decides: one that
// ships p, or deletes p or one of its parents, or replaces a parent by a
// non-directory.
func (v *view) stat(p string, top int) (*rec, error) {
	v.want(p)
	parents := parentsOf(p)
	for k := top; k >= 0; k-- {
		lo, err := v.layer(k)
		if err != nil {
			return nil, err
		}
		if o := lo.lookup(p); o != nil {
			if o.entry {
				return &o.rec, nil
			}
			if o.whiteout {
				return nil, nil
			}
		}
		for _, a := range parents {
			if o := lo.lookup(a); o != nil && (o.whiteout || o.opaque || (o.entry && !o.isDir())) {
				return nil, nil
			}
		}
	}
	return nil, nil
}

// linkSource returns the entry holding hard link r's content, as its target
// was once r's layer was applied.
func (v *view) linkSource(r *rec) (*rec, error) {
	cur := r
	for range maxHops {
		t, err := v.stat(cur.ext.link, int(cur.layer))
		if err != nil {
			return nil, err
		}
		switch {
		case t == nil || t.isDir():
			return nil, fmt.Errorf("hard link to missing target %s", forensic.EscapePath(r.ext.link))
		case t.flags&fHardLink != 0:
			cur = t
			continue
		}
		return t, nil
	}
	return nil, fmt.Errorf("hard link to missing target %s", forensic.EscapePath(r.ext.link))
}

// resolve resolves the symbolic links of p in the filesystem of layers 0 to
// top, with the image's root as "/" (".." at the root stays there), and
// returns the path it names. The last component is followed when followLast.
// followed is told of every link followed once the resolution succeeds.
func (v *view) resolve(p string, top int, followLast bool, followed func(link, target string)) (string, error) {
	todo := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur, hops := "/", 0
	var links [][2]string // reported once resolution succeeds
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = parentOf(cur)
			continue
		}
		next := joinPath(cur, c)
		if len(todo) == 0 && !followLast {
			cur = next
			break
		}
		r, err := v.stat(next, top)
		if err != nil {
			return "", err
		}
		if r == nil || r.typ != tSymlink || r.flags&fHardLink != 0 {
			cur = next
			continue
		}
		if hops++; hops > maxHops {
			return "", fmt.Errorf("more than %d symbolic links to follow (a loop?)", maxHops)
		}
		links = append(links, [2]string{next, r.ext.link})
		if strings.HasPrefix(r.ext.link, "/") {
			cur = "/"
		}
		todo = append(strings.Split(r.ext.link, "/"), todo...)
	}
	if followed != nil {
		for _, l := range links {
			followed(l[0], l[1])
		}
	}
	return cur, nil
}

// joinPath appends name to the absolute directory dir.
func joinPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// parentsOf returns the strict ancestors of an absolute cleaned path, the
// root excluded: "/a/b/c" gives "/a", "/a/b".
func parentsOf(p string) []string {
	var out []string
	for i := 1; i < len(p); i++ {
		if p[i] == '/' {
			out = append(out, p[:i])
		}
	}
	return out
}

// errChanged says a blob read again no longer has the digest it had.
var errChanged = errors.New("the layer changed since it was checked")

// copyEntry copies the content of entry ord of layer k to w, from a second
// read of a blob the first read (or, for a layer read from its index, the
// blob check) checked, and checks that read too: when recheck, it reads the
// layer to its end and checks both digests again; otherwise (a layer read
// from its index) it reads the rest of the blob without decompressing it and
// checks the blob's digest. A blob that changed in between fails with
// errChanged, after the bytes, instead of passing unnoticed.
func copyEntry(ctx context.Context, layers []Layer, k int, ord int32, w io.Writer, c *config, recheck bool) error {
	s, err := openStream(ctx, layers, k, c, false)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.seek(ord); err != nil {
		return err
	}
	if _, err := s.copyContent(w, make([]byte, 32<<10)); err != nil {
		return err
	}
	check := s.finish
	if !recheck {
		check = s.finishBlob
	}
	if err := check(); err != nil {
		return fmt.Errorf("%w: %w", errChanged, err)
	}
	return nil
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
