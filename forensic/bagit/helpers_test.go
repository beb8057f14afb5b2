package bagit

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// testPayload is the payload of the bags the tests build.
type testPayload struct {
	rel  string
	data []byte
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// testPayloads covers an empty file, nested paths, a space, a percent sign,
// an image blob and a file large enough to be hashed by the workers.
func testPayloads(large int) []testPayload {
	blob := []byte(`{"schemaVersion":2}`)
	sum := sha256.Sum256(blob)
	return []testPayload{
		{"empty", nil},
		{"rootfs/changes.tar", randomBytes(1, large)},
		{"a b.txt", []byte("space in the name\n")},
		{"100%.txt", []byte("percent in the name\n")},
		{"image/index.json", []byte(`{"manifests":[]}`)},
		{"image/blobs/sha256/" + hex.EncodeToString(sum[:]), blob},
	}
}

const testTag = "metadata/acquisition.json"

// makeBag writes a finished bag with testPayloads into a new directory.
func makeBag(t testing.TB, large int, algs ...Algorithm) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bag")
	w, err := Create(dir, algs...)
	if err != nil {
		t.Fatal(err)
	}
	fillBag(t, w, large)
	return dir
}

// fillBag writes testPayloads and a tag file into w, and finishes it.
func fillBag(t testing.TB, w *Writer, large int) {
	t.Helper()
	for _, p := range testPayloads(large) {
		if err := w.WritePayload(p.rel, p.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteTag(testTag, []byte(`{"tool":"ctrforensics"}`)); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish([]Field{{"Source-Organization", "Example"}, {"External-Identifier", "case 42"}}); err != nil {
		t.Fatal(err)
	}
}

// packBag packs a bag directory into a file next to it.
func packBag(t testing.TB, dir string, gz bool) string {
	t.Helper()
	name := dir + ".tar"
	if gz {
		name += ".gz"
	}
	var buf bytes.Buffer
	if err := Pack(dir, &buf, gz); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// hasProblem reports whether res holds a problem with check at path.
func hasProblem(res *Result, check, path string) bool {
	for _, p := range res.Problems {
		if p.Check == check && p.Path == path {
			return true
		}
	}
	return false
}

// verifyBytes verifies a tar or tar.gz held in memory.
func verifyBytes(t testing.TB, data []byte, opts Options) *Result {
	t.Helper()
	res, err := verifyTar(context.Background(), func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// tarEntry is an entry the tests write with archive/tar.
type tarEntry struct {
	hdr  tar.Header
	data []byte
}

func fileEntry(name string, data []byte) tarEntry {
	return tarEntry{tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, 0)}, data}
}

// readTarEntries reads all entries of an uncompressed tar.
func readTarEntries(t testing.TB, data []byte) []tarEntry {
	t.Helper()
	var out []tarEntry
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{*hdr, b})
	}
}

// writeTarEntries writes entries as a tar.
func writeTarEntries(t testing.TB, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := e.hdr
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// listTree returns every path below dir.
func listTree(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func problemList(res *Result) string {
	var b strings.Builder
	for _, p := range res.Problems {
		b.WriteString("\n  " + p.Check + " " + p.Path + ": " + p.Detail)
	}
	return b.String()
}
