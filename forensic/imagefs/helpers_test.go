package imagefs

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// testTime is the mtime of every test entry.
func testTime() time.Time { return time.Date(2024, 1, 2, 3, 4, 5, 600, time.UTC) }

// tent is a tar entry of a test layer.
type tent struct {
	name   string
	typ    byte
	body   string
	mode   int64
	link   string
	xattrs map[string]string
	major  int64
	minor  int64
	mtime  time.Time // testTime() when zero
}

func tfile(name, body string) tent {
	return tent{name: name, typ: tar.TypeReg, body: body, mode: 0o644}
}
func tdir(name string) tent { return tent{name: name, typ: tar.TypeDir, mode: 0o755} }
func tsym(name, target string) tent {
	return tent{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}
func tlink(name, target string) tent {
	return tent{name: name, typ: tar.TypeLink, link: target, mode: 0o644}
}

// tarOf returns the tar of entries.
func tarOf(t testing.TB, entries ...tent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mtime := e.mtime
		if mtime.IsZero() {
			mtime = testTime()
		}
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Size: int64(len(e.body)),
			ModTime: mtime, Devmajor: e.major, Devminor: e.minor, Format: tar.FormatPAX}
		for k, v := range e.xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords[xattrPrefix+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("write %q: %v", e.name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// compress compresses data with comp ("gzip", "zstd" or "none") and returns
// the blob and its media type.
func compress(t testing.TB, comp string, data []byte) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	switch comp {
	case "gzip":
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		zw.Write(data)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes(), ocispec.MediaTypeImageLayerGzip
	case "zstd":
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(data)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes(), ocispec.MediaTypeImageLayerZstd
	}
	return data, ocispec.MediaTypeImageLayer
}

// blobLayer returns a layer serving blob from memory.
func blobLayer(blob []byte, mediaType string, diffID digest.Digest) Layer {
	return Layer{
		Digest: digest.FromBytes(blob), DiffID: diffID, MediaType: mediaType,
		Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil },
	}
}

// layerOf builds a layer of entries compressed with comp.
func layerOf(t testing.TB, comp string, entries ...tent) Layer {
	t.Helper()
	data := tarOf(t, entries...)
	blob, mt := compress(t, comp, data)
	return blobLayer(blob, mt, digest.FromBytes(data))
}

// warnings collects warnings.
type warnings struct{ msgs []string }

func (w *warnings) add(m string) { w.msgs = append(w.msgs, m) }

// has says whether some warning contains every part.
func (w *warnings) has(parts ...string) bool {
	for _, m := range w.msgs {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(m, p)
		}
		if all {
			return true
		}
	}
	return false
}

// line summarizes an entry for comparisons.
func line(e Entry) string {
	s := fmt.Sprintf("%q %s L%d %o %d", e.Path, e.Type, e.Layer, e.Mode, e.Size)
	if e.LinkTarget != "" {
		s += " -> " + e.LinkTarget
	}
	if e.HardLink {
		s += " (hard)"
	}
	return s
}

func lines(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = line(e)
	}
	return out
}

func changeLines(cs []Change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c.Kind) + " " + c.Path
	}
	return out
}

func sha(s string) digest.Digest { return digest.FromString(s) }

// diffLines reports the first difference between got and want.
func diffLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") == strings.Join(want, "\n") {
		return
	}
	t.Errorf("%s:\ngot:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
}
