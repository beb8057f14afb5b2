package diff

import (
	"strings"
	"testing"
	"unsafe"
)

// TestPathsShareAChain checks paths joins correctly and that a chain of
// directories shares its bytes: each path's parent starts where it starts.
func TestPathsShareAChain(t *testing.T) {
	var a paths
	tests := []struct{ dir, name, want string }{
		{"/", "a", "/a"},
		{"/a", "b", "/a/b"},
		{"/a/b", "c", "/a/b/c"},
		{"/a", "x", "/a/x"}, // not the last path: copied
		{"/", "root2", "/root2"},
	}
	for _, tt := range tests {
		if got := a.join(tt.dir, tt.name); got != tt.want {
			t.Errorf("join(%q, %q) = %q, want %q", tt.dir, tt.name, got, tt.want)
		}
	}
	p := "/"
	chain := make([]string, 0, 5000)
	for i := 0; i < 5000; i++ {
		p = a.join(p, "d")
		chain = append(chain, p)
	}
	if want := strings.Repeat("/d", 5000); p != want {
		t.Fatalf("deepest path wrong: %d bytes", len(p))
	}
	shared := 0
	for i := 1; i < len(chain); i++ {
		if unsafe.StringData(chain[i]) == unsafe.StringData(chain[i-1]) {
			shared++
		}
	}
	if shared < len(chain)-20 { // a full buffer is replaced now and then
		t.Errorf("only %d of %d paths share their parent's bytes", shared, len(chain)-1)
	}
	for i, c := range chain { // earlier paths were not overwritten
		if len(c) != 2*(i+1) || strings.Count(c, "/d") != i+1 {
			t.Fatalf("path %d corrupted", i)
		}
	}
}
