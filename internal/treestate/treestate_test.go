package treestate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDescribeAndDiff(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, root := range []string{a, b} {
		if err := os.Mkdir(filepath.Join(root, "d"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../x", filepath.Join(root, "d", "l")); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(a, "d", "f"), []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "d", "f"), []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "extra"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	da, err := Describe(a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := Describe(b)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(da["d/l"], "target=../x") || !strings.HasPrefix(da["d"], "dir ") {
		t.Errorf("descriptions: %v", da)
	}
	diffs := Diff(WithoutDirTimes(db), WithoutDirTimes(da))
	if len(diffs) != 2 || !strings.HasPrefix(diffs[0], "d/f: got") || !strings.HasPrefix(diffs[1], "extra: extra") {
		t.Errorf("Diff = %q, want the changed d/f and the extra file", diffs)
	}
	if d := Diff(WithoutDirTimes(da), WithoutDirTimes(da)); len(d) != 0 {
		t.Errorf("a tree differs from itself: %q", d)
	}
}
