package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteNew(t *testing.T) {
	failure := errors.New("fill failed")
	tests := []struct {
		name    string
		before  string // "" for no file
		fill    string
		fillErr error
		want    string
	}{
		{"new file", "", "new", nil, "new"},
		{"replaces", "old", "new", nil, "new"},
		{"failure keeps the old file", "old", "half", failure, "old"},
		{"failure creates nothing", "", "half", failure, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f")
			if tt.before != "" {
				if err := os.WriteFile(p, []byte(tt.before), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := WriteNew(p, func(f *os.File) error {
				if _, err := f.WriteString(tt.fill); err != nil {
					return err
				}
				return tt.fillErr
			})
			if !errors.Is(err, tt.fillErr) {
				t.Fatalf("err %v, want %v", err, tt.fillErr)
			}
			got, rerr := os.ReadFile(p)
			if tt.want == "" && !os.IsNotExist(rerr) || tt.want != "" && string(got) != tt.want {
				t.Errorf("file holds %q (%v), want %q", got, rerr, tt.want)
			}
			names, _ := os.ReadDir(dir)
			if n := len(names); n != map[bool]int{true: 0, false: 1}[tt.want == ""] {
				t.Errorf("directory holds %v: a temporary file was left", names)
			}
		})
	}
}

func TestWriteViaRefusesAnotherDirectory(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	err := WriteVia(filepath.Join(a, "f"), filepath.Join(b, "tmp"), func(*os.File) error { return nil })
	if err == nil {
		t.Fatal("a temporary file in another directory was accepted")
	}
	if _, err := os.Stat(filepath.Join(b, "tmp")); !os.IsNotExist(err) {
		t.Errorf("temporary file created: %v", err)
	}
}

func TestWriteViaRefusesExistingTemp(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	if err := os.WriteFile(tmp, []byte("someone else's"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteVia(filepath.Join(dir, "f"), tmp, func(*os.File) error { return nil }); err == nil {
		t.Fatal("an existing temporary file was overwritten")
	}
	if b, _ := os.ReadFile(tmp); string(b) != "someone else's" {
		t.Errorf("temporary file changed to %q", b)
	}
}

func TestIsTempName(t *testing.T) {
	temp, err := TempName("/out/image.tar")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want bool
	}{
		{temp, true},
		{filepath.Base(temp), true},
		{"/out/image.tar", false},
		{"/out/image.tar.tmp-", false},
		{"/out/image.tar.tmp-0123456789ab.bak", false},
		{"/out/image.tar.tmp-0123456789zz", false},
		{"/out/image.tar.tmp-0123456789abcd", false},
		{".tmp-0123456789ab", false},
	}
	for _, tt := range tests {
		if got := IsTempName(tt.name); got != tt.want {
			t.Errorf("IsTempName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
