package history

import (
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestSteps(t *testing.T) {
	d1, d2 := digest.FromString("one"), digest.FromString("two")
	cfg := ocispec.Image{RootFS: ocispec.RootFS{DiffIDs: []digest.Digest{d1, d2}}}
	for _, empty := range []bool{true, false, true, false, false} {
		cfg.History = append(cfg.History, ocispec.History{CreatedBy: "x", EmptyLayer: empty})
	}
	type want struct {
		layer  int
		diffID digest.Digest
		size   int64
	}
	tests := []struct {
		name   string
		layers []Layer
		want   []want
	}{
		{"layers given", []Layer{{DiffID: d1, Size: 10}, {DiffID: d2, Size: 20}},
			[]want{{-1, "", 0}, {0, d1, 10}, {-1, "", 0}, {1, d2, 20}, {-1, "", 0}}},
		{"diff_ids stand for nil layers", nil,
			[]want{{-1, "", 0}, {0, d1, 0}, {-1, "", 0}, {1, d2, 0}, {-1, "", 0}}},
		{"no layers", []Layer{},
			[]want{{-1, "", 0}, {-1, "", 0}, {-1, "", 0}, {-1, "", 0}, {-1, "", 0}}},
	}
	for _, tt := range tests {
		steps := Steps(cfg, tt.layers)
		if len(steps) != len(tt.want) {
			t.Fatalf("%s: %d steps, want %d", tt.name, len(steps), len(tt.want))
		}
		for i, s := range steps {
			w := tt.want[i]
			if s.Index != i || s.Empty != cfg.History[i].EmptyLayer || s.Layer != w.layer || s.DiffID != w.diffID || s.Size != w.size {
				t.Errorf("%s: step %d = %+v, want %+v", tt.name, i, s, w)
			}
		}
		if n := layerSteps(steps); n != 3 {
			t.Errorf("%s: %d layer steps, want 3", tt.name, n)
		}
	}
}

func TestCommandText(t *testing.T) {
	tests := []struct{ in, want string }{
		{`/bin/sh -c printf 'a\n' > /x && echo "C:\\dir"`, `/bin/sh -c printf 'a\n' > /x && echo "C:\\dir"`},
		{"RUN <<EOF\necho hi\nEOF", `RUN <<EOF\necho hi\nEOF`},
		{"tab\there\r\x1b[31mred\x7f", `tab\there\r\x1b[31mred\x7f`},
		{"bad \xff byte, zero\u200bwidth, ünïcode", `bad \xff byte, zero\u{200b}width, ünïcode`},
	}
	for _, tt := range tests {
		if got := CommandText(tt.in); got != tt.want {
			t.Errorf("CommandText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
