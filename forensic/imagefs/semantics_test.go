package imagefs

import (
	"bytes"
	"context"
	"testing"
)

func TestSemantics(t *testing.T) {
	tests := []struct {
		name    string
		layers  [][]tent
		files   []string
		changes []string // of the last layer
	}{
		{
			name:    "directory replaced by a file",
			layers:  [][]tent{{tdir("d/"), tfile("d/x", "x"), tdir("d/s/"), tfile("d/s/y", "y")}, {tfile("d", "f")}},
			files:   []string{`"/d" file L1 644 1`},
			changes: []string{"C /d", "D /d/s", "D /d/x"},
		},
		{
			name:    "file replaced by a directory",
			layers:  [][]tent{{tfile("f", "x")}, {tdir("f/"), tfile("f/y", "y")}},
			files:   []string{`"/f" dir L1 755 0`, `"/f/y" file L1 644 1`},
			changes: []string{"C /f", "A /f/y"},
		},
		{
			name:    "whiteout and re-add in one layer",
			layers:  [][]tent{{tdir("d/"), tfile("d/x", "x")}, {tfile(".wh.d", ""), tdir("d/"), tfile("d/new", "n")}},
			files:   []string{`"/d" dir L1 755 0`, `"/d/new" file L1 644 1`},
			changes: []string{"C /d", "A /d/new", "D /d/x"},
		},
		{
			name:    "opaque root",
			layers:  [][]tent{{tdir("a/"), tfile("a/x", "x"), tfile("b", "b")}, {tfile(".wh..wh..opq", ""), tfile("c", "c")}},
			files:   []string{`"/c" file L1 644 1`},
			changes: []string{"D /a", "D /b", "A /c"},
		},
		{
			name:    "opaque directory keeps a re-added child's subtree out",
			layers:  [][]tent{{tdir("o/"), tdir("o/s/"), tfile("o/s/x", "x")}, {tfile("o/.wh..wh..opq", ""), tdir("o/s/")}},
			files:   []string{`"/o" dir L0 755 0`, `"/o/s" dir L1 755 0`},
			changes: []string{"C /o", "C /o/s", "D /o/s/x"},
		},
		{
			name:    "whiteout of a missing path",
			layers:  [][]tent{{tfile("a", "a")}, {tfile(".wh.nothing", "")}},
			files:   []string{`"/a" file L0 644 1`},
			changes: []string{},
		},
		{
			name:    "hard link keeps content its deleted target had",
			layers:  [][]tent{{tfile("a", "old")}, {tlink("b", "a")}, {tfile(".wh.a", "")}},
			files:   []string{`"/b" file L1 644 3 -> /a (hard)`},
			changes: []string{"D /a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var layers []Layer
			for _, l := range tt.layers {
				layers = append(layers, layerOf(t, "none", l...))
			}
			files, err := Files(context.Background(), layers, Options{})
			if err != nil {
				t.Fatal(err)
			}
			diffLines(t, "files", lines(files), tt.files)
			reps, err := Layers(context.Background(), layers, Options{})
			if err != nil {
				t.Fatal(err)
			}
			diffLines(t, "changes", changeLines(reps[len(reps)-1].Changes), tt.changes)
			checkExportMatches(t, layers, files)
		})
	}
}

// checkExportMatches checks that Export writes what Files lists, with
// content where Cat finds it.
func checkExportMatches(t *testing.T, layers []Layer, files []Entry) {
	t.Helper()
	var buf bytes.Buffer
	if err := Export(context.Background(), layers, &buf, Options{}); err != nil {
		t.Fatal(err)
	}
	got := readExport(t, buf.Bytes())
	if len(got) != len(files) {
		t.Fatalf("exported %d entries, listed %d", len(got), len(files))
	}
	for _, e := range files {
		if e.Type != "file" {
			continue
		}
		var content bytes.Buffer
		if err := Cat(context.Background(), layers, e.Path, &content, CatOptions{Layer: -1}); err != nil {
			t.Errorf("Cat(%s): %v", e.Path, err)
		}
		for _, g := range got {
			if g.Path == e.Path && !g.HardLink && g.Digest != sha(content.String()) {
				t.Errorf("exported %s has %s, Cat gives %q", e.Path, g.Digest, content.String())
			}
		}
	}
}
