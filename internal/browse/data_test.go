package browse

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/imagefs"
)

func entry(p string, typ forensic.FileType, layer int) imagefs.Entry {
	return imagefs.Entry{Path: p, Type: typ, Layer: layer, Mode: 0o644}
}

// TestRows checks the tree of each selected layer: marks, deleted and
// hidden rows in path order, the layer to read bytes from, and findings.
func TestRows(t *testing.T) {
	d := &Data{
		Files: []imagefs.Entry{entry("/etc", forensic.TypeDir, 0), entry("/etc/passwd", forensic.TypeFile, 1),
			entry("/tmp", forensic.TypeDir, 0), entry("/tmp/.x", forensic.TypeDir, 1), entry("/tmp/.x/run", forensic.TypeFile, 1)},
		Layers: []Layer{
			{Changes: []imagefs.Change{{Kind: forensic.Added, Entry: entry("/etc", forensic.TypeDir, 0)}}},
			{Changes: []imagefs.Change{
				{Kind: forensic.Changed, Entry: entry("/etc/passwd", forensic.TypeFile, 1), Fields: []forensic.Field{forensic.FieldContent}},
				{Kind: forensic.Deleted, Entry: entry("/srv/data", forensic.TypeDir, 0)},
				{Kind: forensic.Added, Entry: entry("/tmp/.x/run", forensic.TypeFile, 1)},
			}, Hidden: []imagefs.Entry{entry("/etc/shadow", forensic.TypeFile, 1)}},
		},
	}
	findings := findingsByPath([]string{"high CTRF-IMG-010: container command runs /tmp/.x/run from a world-writable directory: /tmp/.x/run."})
	tests := []struct {
		layer int
		want  []string
	}{
		{0, []string{"A /etc 0 read:-2", "  /etc/passwd 1 read:1", "  /tmp 0 read:-2", "  /tmp/.x 1 read:-2", " !/tmp/.x/run 1 read:1"}},
		{1, []string{"  /etc 0 read:-2", "C /etc/passwd 1 read:1", "H /etc/shadow 1 read:1", "D /srv/data 0 read:-2",
			"  /tmp 0 read:-2", "  /tmp/.x 1 read:-2", "A!/tmp/.x/run 1 read:1"}},
	}
	for _, tt := range tests {
		var got []string
		for _, r := range d.rows(tt.layer, findings) {
			flag := " "
			if r.finding != "" {
				flag = "!"
			}
			got = append(got, fmt.Sprintf("%c%s%s %d read:%d", r.mark, flag, r.path, r.layer, r.from))
		}
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("layer %d:\ngot:\n%s\nwant:\n%s", tt.layer, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
	}
}

func TestHexLinesAndText(t *testing.T) {
	if got := hexLines([]byte("SECRET-KEY-BYTES\n")); len(got) != 2 || got[1] != "00000010  0a                                               |.|" {
		t.Errorf("hexLines = %q", got)
	}
	for in, want := range map[string]bool{"text\n\tok": true, "bin\x00": false, "\xff": false} {
		if isText([]byte(in)) != want {
			t.Errorf("isText(%q) != %v", in, want)
		}
	}
}
