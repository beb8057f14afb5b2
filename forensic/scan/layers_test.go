package scan

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/ctrforensics/ctrforensics/forensic/imagefs"
)

// layer builds a gzip layer from name -> content ("" content with a
// trailing-slash name is a directory).
func layer(t *testing.T, entries ...[2]string) imagefs.Layer {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, e := range entries {
		h := &tar.Header{Name: e[0], Mode: 0o755, Typeflag: tar.TypeReg, Size: int64(len(e[1]))}
		if e[0][len(e[0])-1] == '/' {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw.Bytes())
	zw.Close()
	blob := gz.Bytes()
	return imagefs.Layer{Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil }}
}

func TestLayersFindDeletedFiles(t *testing.T) {
	const elf = "\x7fELF\x02\x01\x01"
	layers := []imagefs.Layer{
		layer(t, [2]string{"bin/", ""}, [2]string{"bin/sh", elf}, [2]string{"etc/", ""}, [2]string{"etc/cron.daily/", ""}, [2]string{"etc/cron.daily/apt", "#!/bin/sh\napt-get update\n"}),
		layer(t, [2]string{"usr/", ""}, [2]string{"usr/lib/", ""}, [2]string{"usr/lib/.x/", ""}, [2]string{"usr/lib/.x/payload", elf},
			[2]string{"tmp/", ""}, [2]string{"tmp/kept", elf}),
		layer(t, [2]string{"usr/lib/.x/.wh.payload", ""}),
	}
	rep, err := Scan(context.Background(), LayersInput(layers), Options{})
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		rule, path string
		layer      int
		hidden     bool
	}
	got := map[key]bool{}
	for _, f := range rep.Findings {
		got[key{f.Rule, f.Path, f.Layer, f.Hidden}] = true
	}
	want := []key{{RuleHiddenExec, "/usr/lib/.x/payload", 1, true}, {RuleHiddenExec, "/tmp/kept", 1, false}}
	for _, w := range want {
		if !got[w] {
			t.Errorf("missing finding %+v in %+v", w, rep.Findings)
		}
	}
	if len(rep.Findings) != len(want) {
		t.Errorf("findings %+v, want exactly %+v (the image's own cron file must not fire)", rep.Findings, want)
	}
}

// TestLayersRefuseATamperedLayer: a layer whose content does not match its
// DiffID fails the scan instead of giving findings on unverified bytes.
func TestLayersRefuseATamperedLayer(t *testing.T) {
	l := layer(t, [2]string{"tmp/", ""}, [2]string{"tmp/x", "\x7fELF"})
	l.DiffID = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	if _, err := Scan(context.Background(), LayersInput([]imagefs.Layer{l}), Options{}); err == nil {
		t.Fatal("a layer that does not match its DiffID was scanned")
	}
}
