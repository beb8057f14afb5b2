package contentdir

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestIndexCache gives an index back under its digest, whatever became of
// the blob file (imagefs checks the blob's digest before using it), and
// ignores a file that names another digest.
func TestIndexCache(t *testing.T) {
	s, _ := store(t)
	d, other := digest.FromString("layer"), digest.FromString("other")
	put(t, s, d, []byte("layer"))
	c, err := NewIndexCache(filepath.Join(t.TempDir(), "index"), s)
	if err != nil {
		t.Fatal(err)
	}
	if c.Get(d) != nil {
		t.Fatal("an index before any was stored")
	}
	var wrote string
	c.Wrote = func(_ digest.Digest, p string) { wrote = p }
	c.Put(d, func(w io.Writer) error {
		_, err := io.WriteString(w, "the\nindex")
		return err
	})
	if got := c.Get(d); string(got) != "the\nindex" {
		t.Errorf("index %q, want %q", got, "the\nindex")
	}
	p, _ := s.BlobPath(d)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if got := c.Get(d); string(got) != "the\nindex" {
		t.Errorf("index %q once the blob is gone, want it kept", got)
	}
	// A file copied under another digest's name is not that digest's index.
	b, err := os.ReadFile(wrote)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(wrote), other.Encoded()), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := c.Get(other); got != nil {
		t.Errorf("index %q under another digest's name was given back", got)
	}
}

// TestIndexCacheOutsideTheStore refuses a directory inside the content store.
func TestIndexCacheOutsideTheStore(t *testing.T) {
	s, dir := store(t)
	for _, d := range []string{dir, filepath.Join(dir, "index"), filepath.Join(dir, "blobs", "x")} {
		if _, err := NewIndexCache(d, s); err == nil {
			t.Errorf("%s accepted", d)
		}
	}
	if _, err := NewIndexCache(dir+"-index", s); err != nil {
		t.Errorf("a sibling directory: %v", err)
	}
}
