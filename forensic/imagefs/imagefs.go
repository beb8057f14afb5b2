// Package imagefs reconstructs the filesystem of a container image from its
// layer tars, without running, mounting or unpacking it.
//
// Layer blobs are treated as hostile: nothing here writes to disk (except
// Export to its writer), follows a symbolic link or resolves one, and memory
// grows with the number of entries, never with the size of the content.
// Entry names are cleaned after stripping any leading "./" and "/"; a name that
// escapes the root is skipped with a warning. A path below a non-directory (a
// symlink "a -> /etc" then "a/passwd") is kept at its literal path "/a/passwd"
// in the image namespace, never resolved, and reported with a warning.
//
// A layer read in full, its digests checked, can be kept as an index by an
// IndexStore (Options.Index), outside the evidence: a later run reads an
// unchanged blob's index instead of decompressing it, and the same results
// come out (warnings included).
//
// Paths are ordered component by component ("/a", "/a/b", "/a-b"), so that a
// directory is immediately followed by its whole subtree.
package imagefs

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ctrforensics/ctrforensics/forensic"
)

// Layer is one layer of an image, opened on demand.
type Layer struct {
	// Digest is the digest of the blob as stored (compressed); empty for a
	// directory-backed layer. When set, a complete read verifies it.
	Digest digest.Digest
	// DiffID is the digest of the uncompressed tar; when set, a complete read
	// verifies it.
	DiffID digest.Digest
	// MediaType is the OCI or Docker layer media type. It decides between
	// gzip, zstd and no compression; when it says nothing, the magic bytes do.
	MediaType string
	// Open returns the blob stream as stored. It is called once per read:
	// Export and Cat read some layers twice. It should honor ctx.
	Open func(ctx context.Context) (io.ReadCloser, error)
	// DigestChecked says the stream Open returns checks Digest itself and
	// fails its last read on a mismatch, so the blob is not hashed twice.
	DigestChecked bool
}

// DefaultMaxLayerBytes bounds a layer's decompressed size when
// Options.MaxLayerBytes is zero.
const DefaultMaxLayerBytes int64 = 64 << 30

// Options tunes how layers are read. Export and Cat ignore Digest.
type Options struct {
	// Digest computes the sha256 of every regular file's content.
	Digest bool
	// MaxLayerBytes bounds a layer's decompressed size, and separately the
	// content it yields (sparse entries expand): beyond it reading fails with
	// an error naming the layer. Zero means DefaultMaxLayerBytes.
	MaxLayerBytes int64
	// Warn, when set, receives one line per entry that was skipped or is
	// suspicious (escaping names, hard links to missing targets, paths below a
	// non-directory). Names in it are escaped with forensic.EscapePath.
	Warn func(msg string)
	// Index, when set, keeps an index of each layer read in full and checked,
	// and gives it back instead of the layer being read again (see
	// IndexStore). A layer read from its index is not decompressed, so its
	// blob digest and DiffID are not checked again in this run: Indexed, when
	// set, is told of each such layer by its index.
	Index   IndexStore
	Indexed func(layer int)
}

// Entry is one path of a filesystem built from layers.
type Entry struct {
	// Path is absolute, cleaned and "/" separated; it may hold any byte but NUL.
	Path string
	Type forensic.FileType
	// LinkTarget is a symlink's target as stored (never resolved), or the
	// absolute path a hard link points at.
	LinkTarget string
	// Digest is the content's digest, for regular files when hashing was asked
	// for. A hard link carries its target's.
	Digest digest.Digest
	Mtime  time.Time
	// Size is a regular file's size; a hard link carries its target's.
	Size               int64
	DevMajor, DevMinor int64
	// Layer is the index of the layer that last wrote the entry.
	Layer int
	// Xattrs holds the extended attributes from PAX SCHILY.xattr.* records.
	Xattrs map[string]string
	// Mode holds the permission bits and the setuid, setgid and sticky bits.
	Mode     uint32
	UID, GID uint32
	// HardLink says the entry is a hard link to LinkTarget; Type is then the
	// target's type, or TypeFile when the target is missing.
	HardLink bool
}

// Files returns the final filesystem, what `docker create` then `docker
// export | tar t` shows, sorted by path (component by component). The root
// directory itself is not listed; a parent directory no layer shipped is
// listed as extraction creates it: mode 0755, owner 0:0, mtime the Unix epoch.
// For a large image, Walk needs far less memory.
func Files(ctx context.Context, layers []Layer, opts Options) ([]Entry, error) {
	st, err := build(ctx, layers, newConfig(opts, opts.Digest), nil)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, st.n)
	err = st.drain(func(r *rec) error {
		out = append(out, r.entry())
		return nil
	})
	return out, err
}

// Walk calls fn for every entry of the final filesystem, in the order of
// Files, without holding all the entries as Entry values: a listing of a large
// image should use it. The Entry is only valid during the call.
func Walk(ctx context.Context, layers []Layer, opts Options, fn func(*Entry) error) error {
	st, err := build(ctx, layers, newConfig(opts, opts.Digest), nil)
	if err != nil {
		return err
	}
	return st.drain(func(r *rec) error {
		e := r.entry()
		if err := fn(&e); err != nil {
			return fmt.Errorf("walk %s: %w", forensic.EscapePath(r.path), err)
		}
		return nil
	})
}

// config is Options with defaults applied.
type config struct {
	hash     bool
	maxBytes int64
	warn     func(string)
	index    IndexStore
	indexed  func(int)
	// checkLater, when set, runs the digest check of the blob of a layer
	// read from its index (see cachedLayer) while the read goes on.
	checkLater func(k int, check func() error)
}

func newConfig(opts Options, hash bool) *config {
	c := &config{hash: hash, maxBytes: opts.MaxLayerBytes, warn: opts.Warn, index: opts.Index}
	if c.maxBytes <= 0 {
		c.maxBytes = DefaultMaxLayerBytes
	}
	if c.warn == nil {
		c.warn = func(string) {}
	}
	// Layers are read in parallel: warnings are handed over one at a time.
	var mu sync.Mutex
	warn := c.warn
	c.warn = func(msg string) {
		mu.Lock()
		defer mu.Unlock()
		warn(msg)
	}
	if opts.Indexed != nil {
		c.indexed = func(k int) {
			mu.Lock()
			defer mu.Unlock()
			opts.Indexed(k)
		}
	}
	return c
}

func (c *config) warnf(format string, args ...any) {
	c.warn(fmt.Sprintf(format, args...))
}

// build applies the layers in order and returns the final state. Layers are
// read (decompressed, parsed, sorted) in parallel, ahead of the merge (see
// readAll), so that memory holds the merged state and a few layers' entries.
func build(ctx context.Context, layers []Layer, c *config, rep *reporter) (*seq[rec], error) {
	if len(layers) > maxLayers {
		return nil, fmt.Errorf("image has %d layers, more than the %d supported", len(layers), maxLayers)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	read, taken := readAll(ctx, layers, c, rep != nil, readAhead(), maxWaitingOps)
	st := &seq[rec]{}
	for k := range layers {
		r := <-read[k]
		taken(r.lo)
		if r.err != nil {
			return nil, r.err
		}
		rep.layerRead(k, r.lo)
		var err error
		if st, err = merge(ctx, st, r.lo, k, c, rep); err != nil {
			return nil, fmt.Errorf("%s: %w", layerName(layers, k), err)
		}
	}
	return st, nil
}

// readResult is one layer read.
type readResult struct {
	lo  *layerOps
	err error
}

// maxWaitingOps bounds the entries of the layers read and not merged yet
// beyond which no other read starts (about 16 MiB): small layers behind a
// large one are read while it is, and large layers are not all held at once.
const maxWaitingOps = 1 << 17

// readAll starts reading the layers in order, each channel yielding once:
// at most cpus layers are being read at a time, and a read starts only while
// the layers read but not taken yet hold at most maxWaiting entries, so that
// memory holds, besides the merged state, cpus layers' entries and about
// maxWaiting more. taken must be called with each layer taken (nil for a
// failed read). Cancelling ctx stops it.
func readAll(ctx context.Context, layers []Layer, c *config, report bool, cpus, maxWaiting int) (read []chan readResult, taken func(*layerOps)) {
	out := make([]chan readResult, len(layers))
	for k := range out {
		out[k] = make(chan readResult, 1)
	}
	q := &readQueue{cpus: cpus, maxWaiting: maxWaiting}
	q.cond = sync.NewCond(&q.mu)
	stop := context.AfterFunc(ctx, q.wake)
	go func() {
		defer stop()
		for k := range layers {
			if !q.start(ctx) {
				for ; k < len(layers); k++ {
					out[k] <- readResult{err: ctx.Err()}
				}
				return
			}
			go func() {
				lo, err := readLayer(ctx, layers, k, c, report)
				q.finished(lo)
				out[k] <- readResult{lo: lo, err: err}
			}()
		}
	}()
	return out, q.taken
}

// readQueue counts the reads in progress and the entries of the layers read
// but not taken.
type readQueue struct {
	mu               sync.Mutex
	cond             *sync.Cond
	cpus, maxWaiting int
	reading, waiting int
}

// start waits until another read may start and counts it; false when ctx is
// done first.
func (q *readQueue) start(ctx context.Context) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for ctx.Err() == nil && (q.reading >= max(q.cpus, 1) || q.waiting > q.maxWaiting) {
		q.cond.Wait()
	}
	if ctx.Err() != nil {
		return false
	}
	q.reading++
	return true
}

// finished counts a read that ended with lo (nil when it failed).
func (q *readQueue) finished(lo *layerOps) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.reading--
	q.waiting += lo.size()
	q.cond.Broadcast()
}

// taken counts a layer read that was taken.
func (q *readQueue) taken(lo *layerOps) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.waiting -= lo.size()
	q.cond.Broadcast()
}

func (q *readQueue) wake() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.cond.Broadcast()
}

// size is the number of ops the layer holds, 0 for nil.
func (lo *layerOps) size() int {
	if lo == nil {
		return 0
	}
	return lo.ops.n
}

// readAhead is how many layers are read at once: one per CPU, at most 4.
func readAhead() int { return max(1, min(runtime.GOMAXPROCS(0), 4)) }

// layerName names layer k in messages: its index and, when known, its digest.
func layerName(layers []Layer, k int) string {
	switch {
	case layers[k].Digest != "":
		return fmt.Sprintf("layer %d (%s)", k, layers[k].Digest)
	case layers[k].DiffID != "":
		return fmt.Sprintf("layer %d (diff %s)", k, layers[k].DiffID)
	}
	return fmt.Sprintf("layer %d", k)
}
