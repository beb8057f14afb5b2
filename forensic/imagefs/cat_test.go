package imagefs

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// readAheadImage has a path whose final state each of its layers decides:
// the top one, the middle ones, the bottom one; a whiteout and an opaque
// directory above a lower file; a hard link shipped before its target in the
// same layer; a symbolic link to a directory of another layer; and a path
// shipped twice in one layer, a decoy first (extraction keeps the last).
func readAheadImage(t *testing.T) []Layer {
	return []Layer{
		layerOf(t, "gzip", tdir("etc/"), tfile("etc/passwd", "passwd 0"), tfile("etc/hosts", "hosts 0"),
			tdir("data/"), tfile("data/x", "x 0"), tdir("opt/"), tfile("opt/a", "a 0"),
			tdir("usr/"), tdir("usr/bin/"), tfile("usr/bin/tool", "tool 0")),
		layerOf(t, "zstd", tdir("etc/"), tfile("etc/passwd", "passwd 1"), tfile(".wh.data", ""),
			tdir("opt/"), tfile("opt/.wh..wh..opq", ""), tfile("opt/b", "b 1")),
		layerOf(t, "gzip", tdir("etc/"), tlink("etc/link", "etc/target"), tfile("etc/target", "target 2"),
			tsym("bin", "usr/bin"), tfile("dup", "decoy"), tfile("other", "o"), tfile("dup", "real")),
		layerOf(t, "none", tdir("etc/"), tfile("etc/motd", "motd 3")),
	}
}

// TestCatReadAhead checks that reading layers ahead changes nothing Cat
// says: the same bytes, errors, links followed and warnings whatever the
// number of layers read at once, wherever the path's final state is decided.
func TestCatReadAhead(t *testing.T) {
	layers := readAheadImage(t)
	tests := []struct {
		path, want, wantErr, followed string
	}{
		{path: "/etc/motd", want: "motd 3"},                              // the top layer decides
		{path: "/etc/passwd", want: "passwd 1"},                          // a middle one
		{path: "/etc/hosts", want: "hosts 0"},                            // the bottom one
		{path: "/data/x", wantErr: "not found"},                          // a whiteout above it
		{path: "/opt/a", wantErr: "not found"},                           // an opaque directory above it
		{path: "/opt/b", want: "b 1"},                                    // shipped with the opaque marker
		{path: "/etc/link", want: "target 2"},                            // a hard link before its target
		{path: "/bin/tool", want: "tool 0", followed: "/bin -> usr/bin"}, // a link to a lower layer's directory
		{path: "/dup", want: "real"},                                     // the last of two entries
		{path: "/nowhere", wantErr: "not found"},
	}
	for _, tt := range tests {
		for _, ahead := range []int{1, 2, 3, len(layers) + 1} {
			var buf bytes.Buffer
			var followed []string
			var warned warnings
			err := cat(context.Background(), layers, tt.path, &buf, CatOptions{Layer: -1, Options: Options{Warn: warned.add},
				Followed: func(l, target string) { followed = append(followed, l+" -> "+target) }}, ahead)
			switch {
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || buf.Len() > 0):
				t.Errorf("Cat(%s), ahead %d = %q, %v; want the error %q", tt.path, ahead, buf.String(), err, tt.wantErr)
			case tt.wantErr == "" && (err != nil || buf.String() != tt.want):
				t.Errorf("Cat(%s), ahead %d = %q, %v; want %q", tt.path, ahead, buf.String(), err, tt.want)
			case strings.Join(followed, ",") != tt.followed:
				t.Errorf("Cat(%s), ahead %d followed %q, want %q", tt.path, ahead, followed, tt.followed)
			case len(warned.msgs) > 0:
				t.Errorf("Cat(%s), ahead %d warned %q", tt.path, ahead, warned.msgs)
			}
		}
	}
}

// corrupt serves l's blob with one byte changed at offset off from the end;
// its Digest stays the one of the original bytes.
func corrupt(t *testing.T, l Layer, off int) Layer {
	rc, err := l.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	blob, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(blob)
	bad[len(bad)-off] ^= 0x20
	l.Open = func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(bad)), nil }
	return l
}

// TestCatCorruptBlob checks that a layer Cat needs is checked to its end: a
// blob that does not match its digest, or a tar that does not match its
// DiffID, fails Cat even when the path is found before the damage, and
// nothing is written; a damaged or hostile layer Cat does not need (read
// ahead, or not read at all) changes nothing and warns of nothing.
func TestCatCorruptBlob(t *testing.T) {
	pad := strings.Repeat("p", 64<<10)
	early := func(comp string) Layer { // the file first, then 64 KiB of other content
		return layerOf(t, comp, tdir("etc/"), tfile("etc/f", "found early"), tfile("pad", pad))
	}
	noDiffID := func(l Layer) Layer { l.DiffID = ""; return l }
	otherDiffID := func(l Layer) Layer { l.DiffID = digest.FromString("other"); return l }
	hostile := layerOf(t, "gzip", tfile("../escape", "x"), tfile("etc/g", "below"))
	tests := []struct {
		name    string
		layers  []Layer
		path    string
		want    string
		wantErr string
	}{
		{"uncompressed blob changed after the file", []Layer{noDiffID(corrupt(t, early("none"), 4096))}, "/etc/f", "", "blob digest: mismatch"},
		{"gzip blob changed after the file", []Layer{corrupt(t, early("gzip"), 16)}, "/etc/f", "", "layer 0"},
		{"zstd blob changed after the file", []Layer{corrupt(t, early("zstd"), 8)}, "/etc/f", "", "layer 0"},
		{"lower needed layer changed", []Layer{noDiffID(corrupt(t, early("none"), 4096)), layerOf(t, "gzip", tfile("top", "t"))},
			"/etc/f", "", "blob digest: mismatch"},
		{"DiffID mismatch", []Layer{otherDiffID(early("gzip"))}, "/etc/f", "", "diff ID: mismatch"},
		{"damaged layer not needed", []Layer{corrupt(t, early("gzip"), 16), early("zstd")}, "/etc/f", "found early", ""},
		{"hostile layer not needed", []Layer{hostile, early("gzip")}, "/etc/f", "found early", ""},
	}
	for _, tt := range tests {
		for _, ahead := range []int{1, 2} {
			var buf bytes.Buffer
			var warned warnings
			err := cat(context.Background(), tt.layers, tt.path, &buf, CatOptions{Layer: -1, Options: Options{Warn: warned.add}}, ahead)
			switch {
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || buf.Len() > 0):
				t.Errorf("%s, ahead %d: Cat = %q, %v; want nothing and the error %q", tt.name, ahead, buf.String(), err, tt.wantErr)
			case tt.wantErr == "" && (err != nil || buf.String() != tt.want || len(warned.msgs) > 0):
				t.Errorf("%s, ahead %d: Cat = %q, %v, warnings %q; want %q", tt.name, ahead, buf.String(), err, warned.msgs, tt.want)
			}
		}
	}
	// The hostile layer warns when it is needed.
	var warned warnings
	var buf bytes.Buffer
	if err := cat(context.Background(), []Layer{hostile, early("gzip")}, "/etc/g", &buf, CatOptions{Layer: -1, Options: Options{Warn: warned.add}}, 2); err != nil ||
		buf.String() != "below" || !warned.has("layer 0", "escapes the root") {
		t.Errorf("Cat(/etc/g) = %q, %v, warnings %q", buf.String(), err, warned.msgs)
	}
}

func TestParseLoadAverage(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"0.52 1.13 1.54 2/301 16628\n", 0.52, true},
		{"12.94 9.39 6.13 5/400 1", 12.94, true},
		{"", 0, false},
		{"x 1 2", 0, false},
		{"-1 0 0", -1, false},
	}
	for _, tt := range tests {
		got, ok := parseLoadAverage([]byte(tt.in))
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("parseLoadAverage(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestCatRereadChecked checks that a file too big to be kept while its
// layer is read (it is read again afterwards) fails Cat when the blob
// changed between the two reads, before or after the file.
func TestCatRereadChecked(t *testing.T) {
	big := strings.Repeat("b", maxKept+10)
	for _, off := range []int{4096, maxKept / 2} { // in the padding after the file, in the file
		l := layerOf(t, "none", tdir("etc/"), tfile("etc/big", big), tfile("pad", strings.Repeat("p", 64<<10)))
		l.DiffID = ""
		bad := corrupt(t, l, off)
		opens := 0
		open := l.Open
		l.Open = func(ctx context.Context) (io.ReadCloser, error) {
			if opens++; opens > 1 {
				return bad.Open(ctx)
			}
			return open(ctx)
		}
		var buf bytes.Buffer
		err := Cat(context.Background(), []Layer{l}, "/etc/big", &buf, CatOptions{Layer: -1})
		if err == nil || !strings.Contains(err.Error(), "changed since it was checked") || opens != 2 {
			t.Errorf("blob changed at -%d between reads: %v (%d opens)", off, err, opens)
		}
	}
	// Unchanged, the second read passes.
	l := layerOf(t, "gzip", tdir("etc/"), tfile("etc/big", big), tfile("pad", "p"))
	var buf bytes.Buffer
	if err := Cat(context.Background(), []Layer{l}, "/etc/big", &buf, CatOptions{Layer: -1}); err != nil || buf.String() != big {
		t.Errorf("Cat(/etc/big): %d bytes, %v", buf.Len(), err)
	}
}

// TestKeepsOneEntryPerPath checks that a layer shipping a wanted path many
// times keeps the content of its last entry only.
func TestKeepsOneEntryPerPath(t *testing.T) {
	l := layerOf(t, "gzip", tfile("f", "one"), tfile("f", "two"), tfile("g", "g"), tfile("f", "three"))
	lo, err := readLayerKeeping(context.Background(), []Layer{l}, 0, newConfig(Options{}, false), false, func(p string) bool { return p == "/f" })
	if err != nil {
		t.Fatal(err)
	}
	if len(lo.kept) != 1 || string(lo.kept[lo.lookup("/f").ord]) != "three" {
		t.Errorf("kept %q", lo.kept)
	}
}
