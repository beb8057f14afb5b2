package contentdir

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
)

// IndexCache keeps indexes of the store's layer blobs (imagefs.IndexStore)
// in a directory of its own, outside the content store and never inside it:
// one file per blob, <dir>/<algorithm>/<hex>, holding the blob's digest, then
// the index. It does not look at the blob: imagefs checks the blob's digest
// again before it uses an index, so an index serves any blob of its digest,
// on any disk.
type IndexCache struct {
	dir string
	// Used and Wrote, when set, are told of each index given back and each
	// index written, with its path.
	Used, Wrote func(d digest.Digest, path string)
	// Failed, when set, is told why an index could not be written.
	Failed func(d digest.Digest, err error)
}

// NewIndexCache returns the cache of the indexes of store's blobs in dir,
// created (mode 0700) when the first index is written. A dir inside the
// content store's directory is refused: nothing is ever written there.
func NewIndexCache(dir string, store *Store) (*IndexCache, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("layer index directory %s: %w", dir, err)
	}
	root, err := filepath.Abs(store.dir)
	if err != nil {
		return nil, fmt.Errorf("content store %s: %w", store.dir, err)
	}
	if rel, err := filepath.Rel(root, abs); err == nil && (rel == "." || !strings.HasPrefix(rel, "..")) {
		return nil, fmt.Errorf("layer index directory %s is inside the content store %s: it must be outside the evidence", dir, store.dir)
	}
	return &IndexCache{dir: abs}, nil
}

// Dir returns the cache's directory.
func (c *IndexCache) Dir() string { return c.dir }

// path returns where the index of d is, "" for an invalid digest.
func (c *IndexCache) path(d digest.Digest) string {
	if d.Validate() != nil {
		return ""
	}
	return filepath.Join(c.dir, d.Algorithm().String(), d.Encoded())
}

// Get returns the index stored for the blob of digest d, or nil.
func (c *IndexCache) Get(d digest.Digest) []byte {
	p := c.path(d)
	if p == "" {
		return nil
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	head, index, ok := bytes.Cut(b, []byte("\n"))
	if !ok || string(head) != d.String() {
		return nil
	}
	if c.Used != nil {
		c.Used(d, p)
	}
	return index
}

// Put writes the index of the blob of d that write writes, replacing any: to
// a temporary file renamed into place, so that a reader sees a whole index
// or none. It is a cache: a crash may lose it, and nothing is synced.
func (c *IndexCache) Put(d digest.Digest, write func(io.Writer) error) {
	p := c.path(d)
	if p == "" {
		return
	}
	if err := writeIndex(p, d, write); err != nil {
		if c.Failed != nil {
			c.Failed(d, err)
		}
		return
	}
	if c.Wrote != nil {
		c.Wrote(d, p)
	}
}

// writeIndex writes the file of the index of d at p.
func writeIndex(p string, d digest.Digest, write func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), filepath.Base(p)+".tmp-*")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%s\n", d)
	if err == nil {
		err = write(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write layer index %s: %w", p, err)
	}
	return nil
}
