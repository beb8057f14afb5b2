package contentdir

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// store writes blobs (name -> bytes, stored under the digest of want[name]
// or of the bytes) into a fresh content store directory.
func store(t *testing.T) (*Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), Dir)
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func put(t *testing.T, s *Store, d digest.Digest, data []byte) {
	t.Helper()
	p, err := s.BlobPath(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o444); err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, s *Store, desc ocispec.Descriptor) ([]byte, error) {
	t.Helper()
	ra, err := s.ReaderAt(context.Background(), desc)
	if err != nil {
		return nil, err
	}
	defer ra.Close()
	return io.ReadAll(io.NewSectionReader(ra, 0, ra.Size()))
}

func TestReadChecksTheDigest(t *testing.T) {
	s, dir := store(t)
	good := []byte("a layer blob")
	gd := digest.FromBytes(good)
	put(t, s, gd, good)
	tampered := digest.FromString("what the manifest names")
	put(t, s, tampered, []byte("something else entirely"))
	linked := digest.FromString("linked")
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "blobs", "sha256", linked.Encoded())); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		desc    ocispec.Descriptor
		want    string
		corrupt bool
		notFoun bool
		anyErr  bool
	}{
		{name: "good", desc: ocispec.Descriptor{Digest: gd, Size: int64(len(good))}, want: string(good)},
		{name: "good, size unknown", desc: ocispec.Descriptor{Digest: gd}, want: string(good)},
		{name: "tampered", desc: ocispec.Descriptor{Digest: tampered}, corrupt: true},
		{name: "wrong size", desc: ocispec.Descriptor{Digest: gd, Size: 3}, corrupt: true},
		{name: "missing", desc: ocispec.Descriptor{Digest: digest.FromString("absent")}, notFoun: true},
		{name: "symlink", desc: ocispec.Descriptor{Digest: linked}, anyErr: true},
		{name: "invalid digest", desc: ocispec.Descriptor{Digest: "sha256:../../x"}, anyErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAll(t, s, tt.desc)
			var ce *CorruptBlobError
			switch {
			case tt.corrupt && !errors.As(err, &ce):
				t.Errorf("err %v, want a CorruptBlobError", err)
			case tt.notFoun && !errdefs.IsNotFound(err):
				t.Errorf("err %v, want not found", err)
			case tt.anyErr && err == nil:
				t.Errorf("read %q, want an error", got)
			case tt.want != "" && (err != nil || string(got) != tt.want):
				t.Errorf("read %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestOutOfOrderReadChecksFirst reads the tail of a tampered blob first: the
// whole blob is checked before any byte is served.
func TestOutOfOrderReadChecksFirst(t *testing.T) {
	s, _ := store(t)
	d := digest.FromString("original")
	put(t, s, d, []byte("modified"))
	ra, err := s.ReaderAt(context.Background(), ocispec.Descriptor{Digest: d})
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	buf := make([]byte, 3)
	var ce *CorruptBlobError
	if n, err := ra.ReadAt(buf, 4); !errors.As(err, &ce) || n != 0 {
		t.Errorf("ReadAt(4) = %d, %v; want 0 and a CorruptBlobError", n, err)
	}
	info, err := s.Info(context.Background(), d)
	if err != nil || info.Size != 8 {
		t.Errorf("Info = %+v, %v", info, err)
	}
	var _ content.Provider = s
}

func TestOpenRefusesADirectoryWithoutBlobs(t *testing.T) {
	if _, err := Open(t.TempDir()); err == nil {
		t.Error("Open of a directory without blobs/: no error")
	}
}

// TestReaderErrorIsSticky reads a tampered blob with Reader: the read that
// reaches the end fails, and so does every later read, even at the end.
func TestReaderErrorIsSticky(t *testing.T) {
	s, _ := store(t)
	d := digest.FromString("original")
	put(t, s, d, []byte("modified"))
	b, err := s.Open(ocispec.Descriptor{Digest: d})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r := b.Reader()
	buf := make([]byte, 64)
	n, err := r.Read(buf)
	var ce *CorruptBlobError
	if n != 8 || !errors.As(err, &ce) {
		t.Fatalf("first read = %d, %v; want 8 bytes and a CorruptBlobError", n, err)
	}
	for i := 0; i < 2; i++ {
		if n, err := r.Read(buf); n != 0 || !errors.As(err, &ce) {
			t.Errorf("read after the failure = %d, %v; want the CorruptBlobError again", n, err)
		}
	}
	good := []byte("fine")
	gd := digest.FromBytes(good)
	put(t, s, gd, good)
	gb, err := s.Open(ocispec.Descriptor{Digest: gd})
	if err != nil {
		t.Fatal(err)
	}
	defer gb.Close()
	if got, err := io.ReadAll(gb.Reader()); err != nil || string(got) != "fine" {
		t.Errorf("ReadAll = %q, %v", got, err)
	}
}
