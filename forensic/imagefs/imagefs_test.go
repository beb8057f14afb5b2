package imagefs

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ctrforensics/ctrforensics/forensic"
)

// testImage is a 3-layer image: gzip, zstd, then uncompressed.
func testImage(t testing.TB) []Layer {
	t.Helper()
	su := tent{name: "usr/bin/su", typ: tar.TypeReg, body: "su-binary", mode: 0o4755,
		xattrs: map[string]string{"security.capability": "\x01\x00\x00\x02"}}
	return []Layer{
		layerOf(t, "gzip",
			tdir("etc/"), tfile("etc/passwd", "root:x:0:0\n"),
			tdir("app/"), tfile("app/config", "v1"), tdir("app/cache/"), tfile("app/cache/a", "a"), tfile("app/cache/b", "b"),
			tdir("tmp/"), tfile("tmp/secret", "AKIA-SECRET"),
			tdir("bin/"), tent{name: "bin/sh", typ: tar.TypeReg, body: "#!sh", mode: 0o755}, tlink("bin/bash", "bin/sh"),
			tsym("app/shadow", "/etc/shadow"),
			tdir("data/"), tfile("data/bad\xffname", "x"), tfile("data/new\nline", "y"),
		),
		layerOf(t, "zstd",
			tfile("app/config", "v2"), tfile("tmp/.wh.secret", ""),
			tdir("app/cache/"), tfile("app/cache/.wh..wh..opq", ""), tfile("app/cache/c", "c"),
			tfile("new/added", "n"),
		),
		layerOf(t, "none",
			tdir("usr/"), tdir("usr/bin/"), su, tlink("usr/bin/su2", "/usr/bin/su"),
			tdir("dev/"), tent{name: "dev/null", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3},
			tdir("run/"), tent{name: "run/fifo", typ: tar.TypeFifo, mode: 0o600},
		),
	}
}

func testImageFiles() []string {
	return []string{
		`"/app" dir L0 755 0`,
		`"/app/cache" dir L1 755 0`,
		`"/app/cache/c" file L1 644 1`,
		`"/app/config" file L1 644 2`,
		`"/app/shadow" symlink L0 777 0 -> /etc/shadow`,
		`"/bin" dir L0 755 0`,
		`"/bin/bash" file L0 644 4 -> /bin/sh (hard)`,
		`"/bin/sh" file L0 755 4`,
		`"/data" dir L0 755 0`,
		`"/data/bad\xffname" file L0 644 1`,
		`"/data/new\nline" file L0 644 1`,
		`"/dev" dir L2 755 0`,
		`"/dev/null" char L2 666 0`,
		`"/etc" dir L0 755 0`,
		`"/etc/passwd" file L0 644 11`,
		`"/new" dir L1 755 0`,
		`"/new/added" file L1 644 1`,
		`"/run" dir L2 755 0`,
		`"/run/fifo" fifo L2 600 0`,
		`"/tmp" dir L0 755 0`,
		`"/usr" dir L2 755 0`,
		`"/usr/bin" dir L2 755 0`,
		`"/usr/bin/su" file L2 4755 9`,
		`"/usr/bin/su2" file L2 644 9 -> /usr/bin/su (hard)`,
	}
}

func TestFiles(t *testing.T) {
	ctx := context.Background()
	var w warnings
	files, err := Files(ctx, testImage(t), Options{Digest: true, Warn: w.add})
	if err != nil {
		t.Fatal(err)
	}
	diffLines(t, "Files", lines(files), testImageFiles())
	if len(w.msgs) != 0 {
		t.Errorf("warnings: %q", w.msgs)
	}
	byPath := map[string]Entry{}
	for _, e := range files {
		byPath[e.Path] = e
	}
	checks := []struct {
		path string
		ok   func(Entry) bool
	}{
		{"/usr/bin/su", func(e Entry) bool {
			return e.Mode&0o4000 != 0 && e.Xattrs["security.capability"] == "\x01\x00\x00\x02" && e.Digest == sha("su-binary")
		}},
		{"/usr/bin/su2", func(e Entry) bool { return e.Digest == sha("su-binary") }},
		{"/dev/null", func(e Entry) bool { return e.DevMajor == 1 && e.DevMinor == 3 }},
		{"/app/config", func(e Entry) bool { return e.Digest == sha("v2") && e.Mtime.Equal(testTime()) }},
		{"/new", func(e Entry) bool { return e.Digest == "" && e.Mtime.Unix() == 0 }},
	}
	for _, c := range checks {
		if e, ok := byPath[c.path]; !ok || !c.ok(e) {
			t.Errorf("%s: unexpected %+v", c.path, e)
		}
	}
}

func TestLayers(t *testing.T) {
	layers := testImage(t)
	reps, err := Layers(context.Background(), layers, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		k       int
		changes []string
		hidden  []string
		bytes   int64
	}{
		{0, nil, []string{"/app/cache/a", "/app/cache/b", "/app/config", "/tmp/secret"}, 32},
		{1, []string{"C /app/cache", "D /app/cache/a", "D /app/cache/b", "A /app/cache/c", "C /app/config",
			"A /new", "A /new/added", "D /tmp/secret"}, nil, 4},
		{2, []string{"A /dev", "A /dev/null", "A /run", "A /run/fifo", "A /usr", "A /usr/bin", "A /usr/bin/su",
			"A /usr/bin/su2"}, nil, 9},
	}
	for _, tt := range tests {
		r := reps[tt.k]
		if tt.changes != nil {
			diffLines(t, "changes", changeLines(r.Changes), tt.changes)
		}
		var hidden []string
		for _, e := range r.Hidden {
			hidden = append(hidden, e.Path)
		}
		diffLines(t, "hidden", hidden, tt.hidden)
		if r.Index != tt.k || r.DiffID != layers[tt.k].DiffID || r.Bytes != tt.bytes {
			t.Errorf("layer %d: index %d diffID %s bytes %d", tt.k, r.Index, r.DiffID, r.Bytes)
		}
		if r.Added+r.Changed+r.Deleted != len(r.Changes) {
			t.Errorf("layer %d: counts %d+%d+%d for %d changes", tt.k, r.Added, r.Changed, r.Deleted, len(r.Changes))
		}
	}
	secret := reps[0].Hidden[3]
	if secret.Digest != sha("AKIA-SECRET") || secret.Layer != 0 {
		t.Errorf("hidden secret: %+v", secret)
	}
	if d := reps[1].Changes[7]; d.Kind != forensic.Deleted || d.Size != 11 || d.Layer != 0 {
		t.Errorf("deleted secret: %+v", d)
	}
}

func TestCat(t *testing.T) {
	layers := testImage(t)
	tests := []struct {
		path    string
		layer   int
		want    string
		wantErr string
	}{
		{"/tmp/secret", 0, "AKIA-SECRET", ""},
		{"/tmp/secret", -1, "", "not found in the final filesystem"},
		{"/tmp/secret", 1, "", "not found in layer 1"},
		{"/app/config", -1, "v2", ""},
		{"app/config", 0, "v1", ""},
		{"/app/cache/a", 0, "a", ""},
		{"/app/shadow", -1, "", "not found in the final filesystem: it resolves to /etc/shadow"},
		{"/app/shadow", 0, "", "symbolic link to /etc/shadow, not followed"},
		{"/bin/bash", -1, "#!sh", ""},
		{"/usr/bin/su2", 2, "su-binary", ""},
		{"/app", -1, "", "not a regular file but a dir"},
		{"/dev/null", -1, "", "not a regular file but a char"},
		{"/data/new\nline", -1, "y", ""},
		{"/../../etc/passwd", -1, "", "not a path"},
		{"/etc/passwd", 3, "", "out of range"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		err := Cat(context.Background(), layers, tt.path, &buf, CatOptions{Layer: tt.layer})
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("Cat(%q, %d): error %v, want %q", tt.path, tt.layer, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || buf.String() != tt.want):
			t.Errorf("Cat(%q, %d) = %q, %v; want %q", tt.path, tt.layer, buf.String(), err, tt.want)
		}
	}
}

// readExport reads an exported tar back into entries, digesting contents,
// and checks that every parent comes before its children.
func readExport(t *testing.T, data []byte) []Entry {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	seen := map[string]bool{"/": true}
	var out []Entry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		p := "/" + strings.TrimSuffix(h.Name, "/")
		if !seen[path.Dir(p)] {
			t.Errorf("%q comes before its parent", p)
		}
		seen[p] = true
		if strings.Contains(h.Name, whPrefix) {
			t.Errorf("whiteout %q exported", h.Name)
		}
		t, hardLink, _ := recType(h.Typeflag)
		e := Entry{Path: p, Type: fileType(t), Mode: uint32(h.Mode), Size: h.Size, Mtime: h.ModTime.UTC(),
			DevMajor: h.Devmajor, DevMinor: h.Devminor, UID: uint32(h.Uid), GID: uint32(h.Gid), HardLink: hardLink}
		if h.Typeflag == tar.TypeSymlink {
			e.LinkTarget = h.Linkname
		}
		if hardLink {
			e.LinkTarget = "/" + h.Linkname
		}
		if t == tFile && !hardLink {
			e.Digest, _ = digest.FromReader(tr)
		}
		for k, v := range h.PAXRecords {
			if name, ok := strings.CutPrefix(k, xattrPrefix); ok {
				if e.Xattrs == nil {
					e.Xattrs = map[string]string{}
				}
				e.Xattrs[name] = v
			}
		}
		out = append(out, e)
	}
}

// exportLine summarizes what an export must preserve of an entry.
func exportLine(e Entry, sizes map[string]int64) string {
	if e.HardLink {
		e.Size, e.Digest = sizes[e.LinkTarget], ""
	}
	return line(e) + " " + forensic.FormatTime(e.Mtime) + " " + string(e.Digest) +
		strings.Repeat(" x", len(e.Xattrs)) + " " + e.Xattrs["security.capability"]
}

func TestExportRoundTrip(t *testing.T) {
	ctx := context.Background()
	layers := testImage(t)
	files, err := Files(ctx, layers, Options{Digest: true})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Export(ctx, layers, &buf, Options{}); err != nil {
		t.Fatal(err)
	}
	got := readExport(t, buf.Bytes())
	sizes := map[string]int64{}
	for _, e := range files {
		sizes[e.Path] = e.Size
	}
	index := map[string]Entry{}
	for _, e := range got {
		index[e.Path] = e
	}
	if len(got) != len(files) {
		t.Errorf("exported %d entries, listed %d", len(got), len(files))
	}
	for _, want := range files {
		g, ok := index[want.Path]
		g.Layer = want.Layer
		if !ok || exportLine(g, sizes) != exportLine(want, sizes) {
			t.Errorf("exported %s\n     want %s", exportLine(g, sizes), exportLine(want, sizes))
		}
	}
}

func TestCompression(t *testing.T) {
	entries := []tent{tdir("d/"), tfile("d/f", "content"), tsym("d/l", "../f")}
	want := []string{`"/d" dir L0 755 0`, `"/d/f" file L0 644 7`, `"/d/l" symlink L0 777 0 -> ../f`}
	for _, comp := range []string{"gzip", "zstd", "none"} {
		for _, sniffed := range []bool{false, true} {
			l := layerOf(t, comp, entries...)
			if sniffed {
				l.MediaType = ""
			}
			files, err := Files(context.Background(), []Layer{l}, Options{})
			if err != nil {
				t.Fatalf("%s (sniffed %v): %v", comp, sniffed, err)
			}
			diffLines(t, comp, lines(files), want)
		}
	}
}

func TestVerifyDigests(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Layer)
		wantErr string
	}{
		{"ok", func(*Layer) {}, ""},
		{"diff ID", func(l *Layer) { l.DiffID = digest.FromString("other") }, "diff ID: mismatch"},
		{"blob", func(l *Layer) { l.Digest = digest.FromString("other") }, "blob digest: mismatch"},
		{"invalid", func(l *Layer) { l.DiffID = "sha256:nothex" }, "expected digest"},
		{"media type", func(l *Layer) { l.MediaType = "application/vnd.oci.image.layer.v1.tar+encrypted" }, "unsupported media type"},
	}
	for _, tt := range tests {
		l := layerOf(t, "gzip", tfile("f", "x"))
		tt.mutate(&l)
		_, err := Files(context.Background(), []Layer{l}, Options{})
		if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestComparePaths(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"/a", "/a", 0}, {"/a", "/a/b", -1}, {"/a/b", "/a-b", -1}, {"/a-b", "/a/b", 1},
		{"/", "/a", -1}, {"/a/z", "/ab", -1}, {"/b", "/a/z", 1}, {"/a\xff", "/a/", 1},
	}
	for _, tt := range tests {
		if got := comparePaths(tt.a, tt.b); (got > 0) != (tt.want > 0) || (got < 0) != (tt.want < 0) {
			t.Errorf("comparePaths(%q, %q) = %d, want sign of %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// mergedUsrImage is a merged-/usr base (/bin -> usr/bin) with sh a relative
// link to busybox, and a top layer of links: absolute, escaping with "..",
// chained, looping, and one through a directory a later layer deleted.
func mergedUsrImage(t testing.TB) []Layer {
	return []Layer{
		layerOf(t, "gzip",
			tsym("bin", "usr/bin"), tdir("usr/"), tdir("usr/bin/"), tfile("usr/bin/busybox", "BUSYBOX"),
			tsym("usr/bin/sh", "busybox"), tdir("etc/"), tfile("etc/passwd", "image passwd"),
			tdir("old/"), tfile("old/f", "old"),
		),
		layerOf(t, "zstd",
			tsym("etc/up", "../../../../etc/passwd"), tsym("etc/abs", "/etc/passwd"),
			tsym("etc/chain", "abs"), tsym("etc/loop", "loop"), tsym("etc/dangling", "/nowhere"),
			tsym("lib", "old"), tfile(".wh.old", ""),
		),
	}
}

func TestCatFollowsLinksInsideTheImage(t *testing.T) {
	layers := mergedUsrImage(t)
	tests := []struct {
		path     string
		noFollow bool
		want     string
		followed []string
		wantErr  string
	}{
		{path: "/bin/sh", want: "BUSYBOX", followed: []string{"/bin -> usr/bin", "/usr/bin/sh -> busybox"}},
		{path: "/bin/sh", noFollow: true, want: "busybox", followed: []string{"/bin -> usr/bin"}},
		{path: "/etc/up", want: "image passwd", followed: []string{"/etc/up -> ../../../../etc/passwd"}},
		{path: "/etc/chain", want: "image passwd", followed: []string{"/etc/chain -> abs", "/etc/abs -> /etc/passwd"}},
		{path: "/etc/loop", wantErr: "more than 40 symbolic links"},
		{path: "/etc/dangling", wantErr: "not found in the final filesystem: it resolves to /nowhere"},
		{path: "/lib/f", wantErr: "not found in the final filesystem"},
		{path: "/usr/bin", wantErr: "not a regular file but a dir"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		var followed []string
		err := Cat(context.Background(), layers, tt.path, &buf, CatOptions{Layer: -1, NoFollow: tt.noFollow,
			Followed: func(l, target string) { followed = append(followed, l+" -> "+target) }})
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("Cat(%q): error %v, want %q", tt.path, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || buf.String() != tt.want):
			t.Errorf("Cat(%q, no-follow %v) = %q, %v; want %q", tt.path, tt.noFollow, buf.String(), err, tt.want)
		case tt.wantErr == "" && strings.Join(followed, ",") != strings.Join(tt.followed, ","):
			t.Errorf("Cat(%q) followed %q, want %q", tt.path, followed, tt.followed)
		}
	}
}

// TestCatReadsOnlyTheLayersItNeeds counts how often each layer is opened:
// a file the top layer ships (with its parent, as docker and buildkit write
// layers) is known from the top layer alone, whose read keeps the content.
// Reading ahead opens at most ahead-1 layers below the lowest one asked for,
// never more.
func TestCatReadsOnlyTheLayersItNeeds(t *testing.T) {
	opened := make([]int, 3)
	layers := []Layer{
		layerOf(t, "gzip", tdir("etc/"), tfile("etc/passwd", "v0")),
		layerOf(t, "gzip", tdir("etc/"), tfile("etc/passwd", "v1")),
		layerOf(t, "zstd", tdir("etc/"), tfile("etc/passwd", "v2"), tsym("etc/link", "passwd"), tfile("etc/.wh.gone", "")),
	}
	var mu sync.Mutex // layers read ahead are opened by other goroutines
	for k := range layers {
		open := layers[k].Open
		layers[k].Open = func(ctx context.Context) (io.ReadCloser, error) {
			mu.Lock()
			opened[k]++
			mu.Unlock()
			return open(ctx)
		}
	}
	tests := []struct {
		path   string
		ahead  int
		want   string
		opened []int
	}{
		{"/etc/passwd", 1, "v2", []int{0, 0, 1}},
		{"/etc/link", 1, "v2", []int{0, 0, 2}}, // passwd is looked up after the layer was read
		{"/etc/gone", 1, "", []int{0, 0, 1}},
		{"/etc/passwd", 2, "v2", []int{0, 1, 1}},
		{"/etc/link", 2, "v2", []int{0, 1, 2}},
		{"/etc/gone", 2, "", []int{0, 1, 1}},
		{"/etc/passwd", 3, "v2", []int{1, 1, 1}},
		{"/etc/passwd", 8, "v2", []int{1, 1, 1}},
	}
	for _, tt := range tests {
		clear(opened)
		var buf bytes.Buffer
		err := cat(context.Background(), layers, tt.path, &buf, CatOptions{Layer: -1}, tt.ahead)
		if buf.String() != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("Cat(%s), ahead %d = %q, %v", tt.path, tt.ahead, buf.String(), err)
		}
		// cat has waited for the layers it read ahead: the counts are final.
		if !slices.Equal(opened, tt.opened) {
			t.Errorf("Cat(%s), ahead %d opened the layers %v times, want %v", tt.path, tt.ahead, opened, tt.opened)
		}
	}
}

// TestExportLayer writes each layer of the test image as stored and compares
// it with the tar it was built from, whiteouts included; a corrupt blob fails.
func TestExportLayer(t *testing.T) {
	layers := testImage(t)
	for k, comp := range []string{"gzip", "zstd", "none"} {
		var buf bytes.Buffer
		if err := ExportLayer(context.Background(), layers, k, &buf, Options{}); err != nil {
			t.Fatalf("layer %d (%s): %v", k, comp, err)
		}
		if got := digest.FromBytes(buf.Bytes()); got != layers[k].DiffID {
			t.Errorf("layer %d (%s): exported %s, the layer's DiffID is %s", k, comp, got, layers[k].DiffID)
		}
		if k == 1 && !bytes.Contains(buf.Bytes(), []byte("tmp/.wh.secret")) {
			t.Errorf("layer 1 exported without its whiteout")
		}
	}
	bad := layers[1]
	bad.DiffID = sha("something else")
	if err := ExportLayer(context.Background(), []Layer{bad}, 0, io.Discard, Options{}); err == nil || !strings.Contains(err.Error(), "mismatch") {
		t.Errorf("export of a layer that does not match its DiffID: %v", err)
	}
	if err := ExportLayer(context.Background(), layers, 3, io.Discard, Options{}); err == nil {
		t.Error("export of layer 3 of 3: no error")
	}
}

// TestLayersChangedFields checks the fields a layer's changes report against
// the layers below, and the mtime-only re-ship.
func TestLayersChangedFields(t *testing.T) {
	later := testTime().Add(time.Hour)
	touched := tfile("etc/touched", "same")
	touched.mtime = later
	chmodded := tfile("etc/chmod", "x")
	chmodded.mode = 0o4755
	layers := []Layer{
		layerOf(t, "gzip", tdir("etc/"), tfile("etc/touched", "same"), tfile("etc/chmod", "x"), tfile("etc/edit", "old"),
			tfile("etc/same", "s"), tsym("etc/link", "a"), tfile("etc/typed", "f"),
			tent{name: "etc/xa", typ: tar.TypeReg, mode: 0o644, xattrs: map[string]string{"user.a": "1"}}),
		layerOf(t, "zstd", tdir("etc/"), touched, chmodded, tfile("etc/edit", "new!"), tfile("etc/same", "s"),
			tsym("etc/link", "b"), tdir("etc/typed/"), tfile("etc/xa", "")),
	}
	reps, err := Layers(context.Background(), layers, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range reps[1].Changes {
		line := fmt.Sprintf("%s %s %v", c.Kind, c.Path, c.Fields)
		if c.MtimeOnly() {
			line += " mtime-only"
		}
		if c.BaseDigest != "" && c.Path == "/etc/edit" {
			line += " base " + c.BaseDigest.String()[:15]
		}
		got = append(got, line)
	}
	diffLines(t, "layer 1 changes", got, []string{
		"C /etc []",
		"C /etc/chmod [mode]",
		"C /etc/edit [size content] base " + sha("old").String()[:15],
		"C /etc/link [link_target]",
		"C /etc/same []",
		"C /etc/touched [mtime] mtime-only",
		"C /etc/typed [type]",
		"C /etc/xa [xattrs]",
	})
}

// TestReadAllPastALargeLayer checks that the layers behind one still being
// read are read meanwhile, up to the entries allowed to wait: layer 0's read
// ends only once layer 3 was opened, which, with two reads at a time, needs
// layers 1 and 2 read and waiting (a read slot held until its layer is
// taken would wait forever); and that with no entries allowed to wait, no
// read starts past the one waiting.
func TestReadAllPastALargeLayer(t *testing.T) {
	tests := []struct {
		maxWaiting int
		want       []int // the layers opened while layer 0 is read
	}{
		{1 << 17, []int{1, 2, 3}},
		{0, []int{1}},
	}
	for _, tt := range tests {
		var layers []Layer
		for k := range 4 {
			layers = append(layers, layerOf(t, "gzip", tfile(fmt.Sprintf("f%d", k), "x")))
		}
		opened := make(chan int, len(layers))
		for k := 1; k < len(layers); k++ {
			open := layers[k].Open
			layers[k].Open = func(ctx context.Context) (io.ReadCloser, error) {
				opened <- k
				return open(ctx)
			}
		}
		var got []int
		open0 := layers[0].Open
		layers[0].Open = func(ctx context.Context) (io.ReadCloser, error) {
			for len(got) < len(tt.want) {
				select {
				case k := <-opened:
					got = append(got, k)
				case <-time.After(10 * time.Second):
					return nil, fmt.Errorf("layers opened while layer 0 is read: %v, want %v", got, tt.want)
				}
			}
			select { // nothing more is opened meanwhile
			case k := <-opened:
				got = append(got, k)
			case <-time.After(50 * time.Millisecond):
			}
			return open0(ctx)
		}
		read, taken := readAll(context.Background(), layers, newConfig(Options{}, false), false, 2, tt.maxWaiting)
		for k := range layers {
			r := <-read[k]
			taken(r.lo)
			if r.err != nil {
				t.Errorf("max waiting %d: layer %d: %v", tt.maxWaiting, k, r.err)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("max waiting %d: layers opened while layer 0 was read: %v, want %v", tt.maxWaiting, got, tt.want)
		}
	}
}
