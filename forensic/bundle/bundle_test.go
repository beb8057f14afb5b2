package bundle

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ctrforensics/ctrforensics/forensic/bagit"
	"github.com/ctrforensics/ctrforensics/forensic/custody"
)

// hostileBag seals a bag whose image layout index.json is given, with blobs,
// an acquisition record and a valid custody chain.
func hostileBag(t *testing.T, index string, blobs map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bag")
	w, err := bagit.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.WritePayload("image/index.json", []byte(index)))
	for name, content := range blobs {
		must(w.WritePayload("image/blobs/sha256/"+name, []byte(content)))
	}
	acq, _ := json.Marshal(Acquisition{CollectedBy: "alice", CollectedAt: "2026-11-23T08:00:00.000000000Z"})
	must(w.WriteTag(AcquisitionFile, acq))
	must(w.Finish(nil))
	tm, err := os.ReadFile(filepath.Join(dir, TagManifest))
	must(err)
	line, err := custody.Next(nil, mustTime(t), custody.ActionCollected, "alice", "", digestOf(tm), nil)
	must(err)
	must(os.WriteFile(filepath.Join(dir, custody.FileName), line, 0o644))
	return dir
}

func mustTime(t *testing.T) time.Time {
	t.Helper()
	return time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
}

func TestVerifyHostileLayout(t *testing.T) {
	tests := []struct {
		name  string
		index string
		blobs map[string]string
		want  string
	}{
		{"bad digest", `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:zz","size":3}]}`, nil, "bad digest"},
		{"missing manifest", `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + digest.FromString("gone").String() + `","size":4}]}`, nil, "is missing"},
		{"not json", `{{{`, nil, "index.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bag := hostileBag(t, tt.index, tt.blobs)
			rep, err := Verify(context.Background(), bag, VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var all []string
			for _, p := range rep.Problems {
				all = append(all, p.Path+": "+p.Check+": "+p.Detail)
			}
			if !strings.Contains(strings.Join(all, "\n"), tt.want) {
				t.Errorf("problems %q, want one with %q", all, tt.want)
			}
		})
	}
}

func TestVerifyLayoutCycle(t *testing.T) {
	// An index that lists itself: verify must stop, not loop.
	idx := ocispec.Index{Manifests: []ocispec.Descriptor{}}
	b, _ := json.Marshal(idx)
	d := digest.FromBytes(b)
	idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: d, Size: int64(len(b))})
	top, _ := json.Marshal(idx)
	bag := hostileBag(t, string(top), map[string]string{d.Encoded(): string(b)})
	rep, err := Verify(context.Background(), bag, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Valid() {
		t.Errorf("a valid index blob: problems %+v", rep.Problems)
	}
}

func TestAddCustodyNeedsAChain(t *testing.T) {
	bag := hostileBag(t, `{"schemaVersion":2,"manifests":[]}`, nil)
	if _, err := AddCustody(bag, "transferred", "bob", "", nil); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(bag, custody.FileName))
	os.Symlink("/etc/passwd", filepath.Join(bag, custody.FileName))
	if _, err := AddCustody(bag, "transferred", "bob", "", nil); err == nil {
		t.Error("appended through a symlink")
	}
}
