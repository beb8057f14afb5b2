package bundle

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ctrforensics/ctrforensics/forensic/custody"
)

// hostileBag writes a sealed bundle directory whose image layout index.json
// is given, with blobs, through the Writer.
func hostileBag(t *testing.T, index string, blobs map[string]string) string {
	t.Helper()
	payload := map[string]string{ImagePath("index.json"): index}
	for name, content := range blobs {
		payload[ImagePath("blobs/sha256/"+name)] = content
	}
	return writeBundle(t, "bag", payload, nil)
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
