package contentdir

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// TestIndexCache gives an index back only while its blob file is the one it
// was made from.
func TestIndexCache(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, p string)
		kept   bool
	}{
		{"unchanged", func(*testing.T, string) {}, true},
		{"rewritten in place with the same bytes", func(t *testing.T, p string) {
			time.Sleep(10 * time.Millisecond) // a later change time
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("layer"), 0o444); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"replaced", func(t *testing.T, p string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("layer"), 0o444); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"removed", func(t *testing.T, p string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := store(t)
			d := digest.FromString("layer")
			put(t, s, d, []byte("layer"))
			c, err := NewIndexCache(filepath.Join(t.TempDir(), "index"), s)
			if err != nil {
				t.Fatal(err)
			}
			if c.Get(d) != nil {
				t.Fatal("an index before any was stored")
			}
			c.Put(d, func(w io.Writer) error {
				_, err := io.WriteString(w, "the\nindex")
				return err
			})
			p, _ := s.BlobPath(d)
			tt.change(t, p)
			got := c.Get(d)
			if kept := got != nil; kept != tt.kept || (kept && string(got) != "the\nindex") {
				t.Errorf("index %q, want kept=%v", got, tt.kept)
			}
		})
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
