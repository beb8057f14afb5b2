package diff

import (
	"testing"

	"github.com/ctrforensics/ctrforensics/forensic"
)

func TestMarkRuntime(t *testing.T) {
	dir := func(kind forensic.Kind, p string, fields ...forensic.Field) forensic.Change {
		return forensic.Change{Kind: kind, Path: p, Meta: &forensic.Metadata{Type: forensic.TypeDir}, Fields: fields}
	}
	file := func(kind forensic.Kind, p string) forensic.Change {
		return forensic.Change{Kind: kind, Path: p, Meta: &forensic.Metadata{Type: forensic.TypeFile}}
	}
	changes := []forensic.Change{
		dir(forensic.Changed, "/etc", forensic.FieldMtime),
		file(forensic.Added, "/etc/hosts"),
		file(forensic.Added, "/etc/resolv.conf"),
		{Kind: forensic.Changed, Path: "/etc/group", Meta: &forensic.Metadata{Type: forensic.TypeFile}, CopyUpOnly: true},
		dir(forensic.Changed, "/opt", forensic.FieldMode), // a chmod by someone: not the runtime's
		dir(forensic.Added, "/opt/mnt"),
		dir(forensic.Added, "/run"),
		dir(forensic.Changed, "/var", forensic.FieldMtime),
		dir(forensic.Added, "/var/mnt"),
		file(forensic.Added, "/var/shell.php"), // the attacker's, next to a mount point
	}
	MarkRuntime(changes, []string{"/etc/hosts", "/etc/resolv.conf", "/opt/mnt", "/run/", "/var/mnt", "/proc"})
	want := map[string]bool{"/etc": true, "/etc/group": false, "/etc/hosts": true, "/etc/resolv.conf": true, "/opt": false,
		"/opt/mnt": true, "/run": true, "/var": false, "/var/mnt": true, "/var/shell.php": false}
	for _, c := range changes {
		if c.Runtime != want[c.Path] {
			t.Errorf("%s: runtime %v, want %v", c.Path, c.Runtime, want[c.Path])
		}
	}
}
