package main

import (
	"bytes"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ctrforensics/ctrforensics/forensic/history"
	"github.com/ctrforensics/ctrforensics/internal/output"
	"github.com/ctrforensics/ctrforensics/snapshot"
)

// TestHistoryJSON pins the names and order of `image history --format json`
// (README): an entry without a layer has no layer, diff_id or size; one
// without a time has no created.
func TestHistoryJSON(t *testing.T) {
	created := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	d := digest.FromString("layer")
	img := &snapshot.ResolvedImage{Name: "web:1", Platform: "linux/amd64",
		ManifestDesc: ocispec.Descriptor{Digest: digest.FromString("m")}, ConfigDesc: ocispec.Descriptor{Digest: digest.FromString("c")}}
	img.Config.History = []ocispec.History{
		{Created: &created, CreatedBy: "ENV A=1", EmptyLayer: true, Author: "me"},
		{CreatedBy: "RUN make", Comment: "c"},
	}
	steps := history.Steps(img.Config, []history.Layer{{DiffID: d, Size: 0}})
	findings := []history.Finding{{Rule: "R1", Severity: history.High, Title: "t", Reason: "r", History: 1, Evidence: "e"}}
	var b bytes.Buffer
	if err := output.JSONLines(&b, []historyDoc{historyJSON(img, steps, findings)}); err != nil {
		t.Fatal(err)
	}
	want := `{"config":"` + digest.FromString("c").String() + `","findings":[{"evidence":"e","history":1,"reason":"r","rule":"R1","severity":"high","title":"t"}],` +
		`"history":[{"author":"me","comment":"","created":"2024-01-02T03:04:05.000000000Z","created_by":"ENV A=1","empty_layer":true,"index":0},` +
		`{"author":"","comment":"c","created_by":"RUN make","diff_id":"` + d.String() + `","empty_layer":false,"index":1,"layer":0,"size":0}],` +
		`"image":"web:1","manifest":"` + digest.FromString("m").String() + `","platform":"linux/amd64"}` + "\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
