package diff

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ctrforensics/ctrforensics/internal/benchtree"
)

// benchFixture builds an image of files files with 100 changes, once per size.
func benchFixture(b *testing.B, files int) *benchtree.Fixture {
	b.Helper()
	requireRoot(b)
	f, err := benchtree.Build(b.TempDir(), files, 100)
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// BenchmarkOverlayDiff measures the fast path; the floor below is a bare walk
// of the same upper directory that hashes its regular files.
func BenchmarkOverlayDiff(b *testing.B) {
	for _, files := range []int{10000, 100000} {
		f := benchFixture(b, files)
		b.Run(fmt.Sprintf("files=%d", files), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := OverlayDiff(context.Background(), f.Upper, f.Lower, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("floor/files=%d", files), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if err := hashTree(f.Upper); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func hashTree(root string) error {
	return filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		fh, err := os.Open(p)
		if err != nil {
			return err
		}
		defer fh.Close()
		_, err = digest.SHA256.FromReader(fh)
		return err
	})
}
