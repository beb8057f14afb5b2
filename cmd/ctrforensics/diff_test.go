package main

import (
	"strings"
	"testing"

	"github.com/ctrforensics/ctrforensics/forensic"
)

// TestDiffTableMarker checks the merged table: sorted by path, the
// snapshot's change first on an equal path, and a tab and the source in
// brackets on the lines from outside the snapshot, whatever the path holds.
func TestDiffTableMarker(t *testing.T) {
	md := &forensic.Metadata{Type: forensic.TypeFile}
	snap := []forensic.Change{
		{Kind: forensic.Added, Path: "/etc/hosts", Meta: md},
		{Kind: forensic.Added, Path: "/tmp/a\tb", Meta: md},
	}
	mounts := []forensic.Change{
		{Kind: forensic.Added, Path: "/dev/shm/x y", Meta: md, Source: forensic.SourceTmpfs, Mount: "/dev/shm"},
		{Kind: forensic.Changed, Path: "/etc/hosts", Meta: md, Source: forensic.SourceBind, Mount: "/etc/hosts"},
		{Kind: forensic.Added, Path: "/var/lib/db/\tz", Meta: md, Source: forensic.SourceVolume, Mount: "/var/lib/db"},
	}
	var lines []string
	for _, ch := range mergeChanges(snap, mounts) {
		lines = append(lines, tableLine(&ch))
	}
	want := "A /dev/shm/x y\t[tmpfs]\nA /etc/hosts\nC /etc/hosts\t[bind]\nA /tmp/a\\tb\nA /var/lib/db/\\tz\t[volume]"
	if got := strings.Join(lines, "\n"); got != want {
		t.Errorf("table:\n%s\nwant\n%s", got, want)
	}
	for _, l := range lines {
		if strings.Count(l, "\t") > 1 {
			t.Errorf("%q: a raw tab other than the marker's", l)
		}
	}
}
