package snapshot

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ctrforensics/ctrforensics/forensic/packages"
)

// TestHasPackageDatabase checks the look-up that lets a diff skip the
// package check: a database directory counts, a file or a symlink in its
// path does not (the tree's symlinks are never followed, not even to a
// directory that has one).
func TestHasPackageDatabase(t *testing.T) {
	elsewhere := t.TempDir()
	if err := os.MkdirAll(filepath.Join(elsewhere, "lib", "dpkg"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		dirs  []string
		files []string
		links map[string]string
		want  bool
	}{
		{"empty", nil, nil, nil, false},
		{"dpkg", []string{"var/lib/dpkg"}, nil, nil, true},
		{"apk", []string{"lib/apk/db"}, nil, nil, true},
		{"rpm sysimage", []string{"usr/lib/sysimage/rpm"}, nil, nil, true},
		{"var/lib only", []string{"var/lib/misc"}, nil, nil, false},
		{"dpkg is a file", []string{"var/lib"}, []string{"var/lib/dpkg"}, nil, false},
		{"var is a symlink", nil, nil, map[string]string{"var": elsewhere}, false},
		{"dpkg is a symlink", []string{"var/lib"}, nil, map[string]string{"var/lib/dpkg": filepath.Join(elsewhere, "lib", "dpkg")}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, d := range tt.dirs {
				if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range tt.files {
				if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for l, target := range tt.links {
				if err := os.Symlink(target, filepath.Join(root, l)); err != nil {
					t.Fatal(err)
				}
			}
			if got := hasPackageDatabase(root); got != tt.want {
				t.Errorf("hasPackageDatabase = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestRecordsMayOwn checks which changes need the package check whatever
// the image holds.
func TestRecordsMayOwn(t *testing.T) {
	for _, tt := range []struct {
		path string
		want bool
	}{
		{"/etc/issue", false},
		{"/tmp/x", false},
		{"/var/lib/dpkg/status", true},
		{"/lib/apk/db/installed", true},
		{"/usr/lib/python3/dist-packages/requests/api.py", true},
		{"/usr/local/lib/python3.12/site-packages/x.py", true},
		{"/site-packages", false},
	} {
		if got := recordsMayOwn([]packages.Target{{Path: tt.path}}); got != tt.want {
			t.Errorf("recordsMayOwn(%s) = %v, want %v", tt.path, got, tt.want)
		}
	}
}
