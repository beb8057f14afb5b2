package ocilayout

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestExtendKeepsUnknownFields(t *testing.T) {
	raw := []byte(`{"architecture":"amd64","os":"linux","container_config":{"Hostname":"x"},"config":{"Cmd":["/bin/sh"]},
"rootfs":{"type":"layers","diff_ids":["sha256:aa"]},"history":[{"created_by":"ADD x"}]}`)
	created := time.Date(2026, 11, 29, 6, 0, 0, 5, time.UTC)
	ids := []digest.Digest{"sha256:bb", "sha256:cc"}
	out, err := Extend(raw, ids, ocispec.History{CreatedBy: "ctrforensics commit web"}, created)
	if err != nil {
		t.Fatal(err)
	}
	var img ocispec.Image
	var m map[string]json.RawMessage
	if err := json.Unmarshal(out, &img); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(out, &m)
	switch {
	case string(m["container_config"]) != `{"Hostname":"x"}`:
		t.Errorf("unknown field lost: %s", out)
	case len(img.RootFS.DiffIDs) != 2 || img.RootFS.DiffIDs[1] != "sha256:cc":
		t.Errorf("diff_ids: %v", img.RootFS.DiffIDs)
	case len(img.History) != 2 || img.History[1].CreatedBy != "ctrforensics commit web":
		t.Errorf("history: %+v", img.History)
	case !img.Created.Equal(created) || img.Config.Cmd[0] != "/bin/sh":
		t.Errorf("created %v, config %+v", img.Created, img.Config)
	}
	again, _ := Extend(raw, ids, ocispec.History{CreatedBy: "ctrforensics commit web"}, created)
	if !bytes.Equal(out, again) {
		t.Error("Extend is not deterministic")
	}
	if _, err := Extend([]byte(`[1]`), ids, ocispec.History{}, created); err == nil {
		t.Error("a config that is not an object was accepted")
	}
}

// TestLayoutForms writes the same blobs as a directory and twice as a tar:
// the tars are identical, and nothing appears at the output before Commit.
func TestLayoutForms(t *testing.T) {
	dir := t.TempDir()
	var tars [][]byte
	for _, name := range []string{"a.tar", "b.tar", "d"} {
		out := filepath.Join(dir, name)
		w, err := Create(out)
		if err != nil {
			t.Fatal(err)
		}
		layer, diffID, err := w.PutLayer(func(dst io.Writer) error { _, err := io.WriteString(dst, "tar bytes"); return err })
		if err != nil {
			t.Fatal(err)
		}
		if diffID != digest.FromString("tar bytes") {
			t.Errorf("diffID %s", diffID)
		}
		f, err := w.Open(layer.Digest)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !zr.ModTime.IsZero() || zr.Name != "" || zr.Comment != "" {
			t.Errorf("gzip header carries time %v, name %q, comment %q: layers would not be reproducible", zr.ModTime, zr.Name, zr.Comment)
		}
		if _, err := os.Lstat(out); err == nil {
			t.Fatal("output exists before Commit")
		}
		path, err := w.Commit(ocispec.Index{Manifests: []ocispec.Descriptor{layer}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(w.Partial()); err == nil {
			t.Error("staging directory left after Commit")
		}
		if strings.HasSuffix(name, ".tar") {
			b, _ := os.ReadFile(path)
			tars = append(tars, b)
		} else if _, err := os.Stat(filepath.Join(path, BlobPath(layer.Digest))); err != nil {
			t.Error(err)
		}
		if _, err := Create(out); err == nil {
			t.Errorf("Create over an existing %s succeeded", name)
		}
	}
	if !bytes.Equal(tars[0], tars[1]) {
		t.Error("tar layouts of the same blobs differ")
	}
}

func TestAbandonLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(filepath.Join(dir, "x.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.PutBlob("text/plain", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	w.Abandon()
	if e, _ := os.ReadDir(dir); len(e) != 0 {
		t.Errorf("left %v", e)
	}
}
