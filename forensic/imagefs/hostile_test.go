package imagefs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// hostileImage is one layer of hostile entries over an ordinary one.
func hostileImage(t testing.TB) []Layer {
	return []Layer{
		layerOf(t, "gzip", tdir("etc/"), tfile("etc/passwd", "root")),
		layerOf(t, "gzip",
			tfile("../../etc/x", "escape"),
			tfile("x/../../y", "escape too"),
			tfile("/abs/path", "absolute"),
			tsym("a", "/etc"),
			tfile("a/passwd", "through the symlink"),
			tlink("h", "missing"),
			tlink("h2", "../../etc/passwd"),
			tfile("dup", "one"),
			tfile("dup", "two"),
			tfile("././ok/./fine", "ok"),
			tfile("etc/.wh...", ""),
			tfile(".wh..wh.plnk", ""),
			tlink("loop1", "loop2"),
			tlink("loop2", "loop1"),
			tfile(strings.Repeat("long/", 1000)+"f", "deep"),
			tsym("longlink", strings.Repeat("x", 5000)),
			tent{name: "fat", typ: tar.TypeReg, mode: 0o644, xattrs: map[string]string{"user.big": strings.Repeat("x", 70<<10)}},
		),
	}
}

// TestHostile checks the rules for hostile entries. Decision: an entry below
// a non-directory ("a -> /etc", then "a/passwd") is the literal path
// /a/passwd in the image namespace, never resolved, and warned about;
// Export leaves it out so that extracting the tar cannot write through "a".
func TestHostile(t *testing.T) {
	ctx := context.Background()
	layers := hostileImage(t)
	var w warnings
	files, err := Files(ctx, layers, Options{Warn: w.add})
	if err != nil {
		t.Fatal(err)
	}
	diffLines(t, "Files", lines(files), []string{
		`"/a" symlink L1 777 0 -> /etc`,
		`"/a/passwd" file L1 644 19`,
		`"/abs" dir L1 755 0`,
		`"/abs/path" file L1 644 8`,
		`"/dup" file L1 644 3`,
		`"/etc" dir L0 755 0`,
		`"/etc/passwd" file L0 644 4`,
		`"/fat" file L1 644 0`,
		`"/h" file L1 644 0 -> /missing (hard)`,
		`"/h2" file L1 644 0 -> ../../etc/passwd (hard)`,
		`"/loop1" file L1 644 0 -> /loop2 (hard)`,
		`"/loop2" file L1 644 0 -> /loop1 (hard)`,
		`"/ok" dir L1 755 0`,
		`"/ok/fine" file L1 644 2`,
	})
	for _, want := range [][]string{
		{"skipped entry ../../etc/x", "escapes the root"},
		{"skipped entry x/../../y", "escapes the root"},
		{"/a/passwd lies below non-directory /a", "not resolved"},
		{"hard link /h points to missing target /missing"},
		{"hard link /h2 points to missing target ../../etc/passwd"},
		{"hard link /loop1 points to missing target /loop2"},
		{"invalid whiteout etc/.wh..."},
		{"ignored whiteout metadata .wh..wh.plnk"},
		{"skipped entry long/long/", "longer than 4096 bytes"},
		{"skipped entry longlink", "longer than 4096 bytes"},
		{"/fat: dropped extended attributes beyond 65536 bytes"},
	} {
		if !w.has(want...) {
			t.Errorf("no warning with %q in %q", want, w.msgs)
		}
	}
	checkHostileCat(t, layers)
	checkHostileExport(t, layers)
	reps, err := Layers(ctx, layers, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if h := reps[1].Hidden; len(h) != 1 || h[0].Path != "/dup" || h[0].Digest != sha("one") {
		t.Errorf("hidden duplicate: %+v", h)
	}
}

func checkHostileCat(t *testing.T, layers []Layer) {
	tests := []struct {
		path, want, wantErr string
	}{
		{"/dup", "two", ""},
		{"/a/passwd", "through the symlink", ""},
		{"/h", "", "hard link to missing target /missing"},
		{"/loop1", "", "missing target"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		err := Cat(context.Background(), layers, tt.path, &buf, CatOptions{Layer: -1})
		if buf.String() != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("Cat(%s) = %q, %v", tt.path, buf.String(), err)
		}
	}
}

func checkHostileExport(t *testing.T, layers []Layer) {
	var buf bytes.Buffer
	var w warnings
	if err := Export(context.Background(), layers, &buf, Options{Warn: w.add}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range readExport(t, buf.Bytes()) {
		names = append(names, e.Path)
	}
	diffLines(t, "exported", names, []string{"/a", "/abs", "/etc", "/ok", "/etc/passwd", "/abs/path", "/dup", "/ok/fine", "/fat"})
	if !w.has("skipped /a/passwd", "below non-directory /a") || !w.has("skipped hard link /h ") {
		t.Errorf("export warnings: %q", w.msgs)
	}
}

// bombLayer is a layer whose blob, compressed with comp, holds one file of
// size zero bytes, generated while it is read and never stored.
func bombLayer(comp string, size int64) Layer {
	mt := ocispec.MediaTypeImageLayerGzip
	if comp == "zstd" {
		mt = ocispec.MediaTypeImageLayerZstd
	}
	return Layer{MediaType: mt, Open: func(context.Context) (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeBomb(pw, comp, size)) }()
		return pr, nil
	}}
}

func writeBomb(w io.Writer, comp string, size int64) error {
	var zw io.WriteCloser
	if comp == "zstd" {
		zw, _ = zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest))
	} else {
		zw, _ = gzip.NewWriterLevel(w, gzip.BestSpeed)
	}
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Size: size, Mode: 0o644}); err != nil {
		return err
	}
	zeros := make([]byte, 1<<20)
	for n := int64(0); n < size; n += int64(len(zeros)) {
		if _, err := tw.Write(zeros[:min(int64(len(zeros)), size-n)]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// TestBomb reads a layer of 64 GiB of zeros with a 4 MiB bound: it must fail
// fast, naming the layer and the limit, with memory bounded.
func TestBomb(t *testing.T) {
	for _, comp := range []string{"gzip", "zstd"} {
		for _, digest := range []bool{false, true} {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			start := time.Now()
			layers := []Layer{layerOf(t, "none", tfile("ok", "x")), bombLayer(comp, 64<<30)}
			_, err := Files(ctx, layers, Options{MaxLayerBytes: 4 << 20, Digest: digest})
			cancel()
			if err == nil || !strings.Contains(err.Error(), "layer 1") || !strings.Contains(err.Error(), "limit of 4194304 bytes") {
				t.Errorf("%s: error %v", comp, err)
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			t.Logf("%s digest=%v: %v in %v, heap %d MiB", comp, digest, err, time.Since(start), ms.HeapInuse>>20)
			if ms.HeapInuse > 256<<20 {
				t.Errorf("%s: heap in use %d MiB", comp, ms.HeapInuse>>20)
			}
		}
	}
}

// TestCancel stops a read that would last long.
func TestCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := Files(ctx, []Layer{bombLayer("gzip", 1<<40)}, Options{MaxLayerBytes: 1 << 50})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want a deadline", err)
	}
}

// rawHeader returns a ustar header block.
func rawHeader(name string, flag byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b, name)
	copy(b[100:], "0000644\x00")
	copy(b[124:], fmt.Sprintf("%011o\x00", size))
	copy(b[136:], "00000000000\x00")
	b[156] = flag
	copy(b[257:], "ustar\x0000")
	copy(b[148:], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// padded pads b to a multiple of 512 bytes.
func padded(b []byte) []byte {
	return append(b, make([]byte, (512-len(b)%512)%512)...)
}

// sparseTar is a PAX 1.0 sparse file of 1 TiB logical size holding 1 byte.
func sparseTar() []byte {
	var recs string
	for _, kv := range [][2]string{{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"},
		{"GNU.sparse.name", "sparse"}, {"GNU.sparse.realsize", "1099511627776"}} {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec) + 2
		recs += fmt.Sprintf("%d%s", n, rec)
	}
	var b []byte
	b = append(b, rawHeader("PaxHeaders/sparse", tar.TypeXHeader, int64(len(recs)))...)
	b = append(b, padded([]byte(recs))...)
	data := append(padded([]byte("1\n1099511627775\n1\n")), 'x')
	b = append(b, rawHeader("sparse", tar.TypeReg, int64(len(data)))...)
	b = append(b, padded(data)...)
	return append(b, make([]byte, 1024)...)
}

// TestSparseBomb checks that the content a sparse entry expands to is
// bounded, though it is not read from the blob.
func TestSparseBomb(t *testing.T) {
	l := blobLayer(sparseTar(), ocispec.MediaTypeImageLayer, "")
	files, err := Files(context.Background(), []Layer{l}, Options{})
	if err != nil || len(files) != 1 || files[0].Size != 1<<40 {
		t.Fatalf("listing: %v %+v", err, files)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = Files(ctx, []Layer{l}, Options{Digest: true, MaxLayerBytes: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "content exceeds the limit") {
		t.Errorf("digest: %v", err)
	}
}
