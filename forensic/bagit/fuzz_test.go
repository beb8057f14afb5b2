package bagit

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// TestMain shortens the fuzzer's minimization of new inputs from its default
// of 60 s, unless -fuzzminimizetime is given: seeds are tar archives of
// several KiB, whose minimization would take the whole of a 60 s fuzzing run.
func TestMain(m *testing.M) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.fuzzminimizetime" })
	if !given {
		if err := flag.Set("test.fuzzminimizetime", "2s"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	os.Exit(m.Run())
}

func FuzzVerifyTar(f *testing.F) {
	dir := filepath.Join(f.TempDir(), "bag")
	w, err := Create(dir, MD5, SHA256)
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range []testPayload{{"a", []byte("a\n")}, {"sub/b c", []byte("b")}, {"image/blobs/sha256/x", nil}} {
		if err := w.WritePayload(p.rel, p.data); err != nil {
			f.Fatal(err)
		}
	}
	if err := w.WriteTag("meta.json", []byte("{}")); err != nil {
		f.Fatal(err)
	}
	if err := w.Finish([]Field{{"Bagging-Date", "2025-01-01"}}); err != nil {
		f.Fatal(err)
	}
	// Whole-second times keep PAX records, and so the seeds, small.
	err = filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, time.Unix(1e9, 0), time.Unix(1e9, 0))
	})
	if err != nil {
		f.Fatal(err)
	}
	for _, gz := range []bool{false, true} {
		var buf bytes.Buffer
		if err := Pack(dir, &buf, gz); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := Options{Keep: func(string) bool { return true }, Extra: func(p string) bool { return p == "custody.jsonl" }}
		res, err := verifyTar(context.Background(), func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		}, opts)
		if err != nil {
			return
		}
		if !sort.SliceIsSorted(res.Problems, func(a, b int) bool {
			pa, pb := res.Problems[a], res.Problems[b]
			return pa.Path < pb.Path || pa.Path == pb.Path && pa.Check < pb.Check
		}) {
			t.Errorf("problems not sorted: %v", res.Problems)
		}
	})
}

// benchSize is the payload size of BenchmarkVerifyDir.
const benchSize = 256 << 20

func BenchmarkVerifyDir(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "bag")
	w, err := Create(dir)
	if err != nil {
		b.Fatal(err)
	}
	f, err := w.CreatePayload("rootfs/changes.tar")
	if err != nil {
		b.Fatal(err)
	}
	chunk := randomBytes(7, 1<<20)
	for range benchSize / len(chunk) {
		if _, err := f.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	if err := w.Finish(nil); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		res, err := Verify(context.Background(), dir, Options{})
		if err != nil || !res.Valid() {
			b.Fatalf("%v %v", err, res.Problems)
		}
	}
}

// BenchmarkCreatePayload measures writing and hashing a payload with
// sha256 and sha512.
func BenchmarkCreatePayload(b *testing.B) {
	chunk := randomBytes(7, 1<<20)
	b.SetBytes(benchSize)
	for b.Loop() {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), "bag")
		w, err := Create(dir)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		f, err := w.CreatePayload("rootfs/changes.tar")
		if err != nil {
			b.Fatal(err)
		}
		for range benchSize / len(chunk) {
			if _, err := f.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		must(b, os.RemoveAll(dir))
		b.StartTimer()
	}
}
