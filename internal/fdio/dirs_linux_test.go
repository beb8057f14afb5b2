package fdio

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// makeChain creates depth nested directories "d" below root, each holding a
// file "z" that sorts after "d"; it returns nothing but errors the test.
func makeChain(t *testing.T, root string, depth int) {
	t.Helper()
	fd, err := OpenDir(unix.AT_FDCWD, root)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < depth; i++ {
		if err := unix.Mkdirat(fd, "d", 0o755); err != nil {
			t.Fatal(err)
		}
		zfd, err := unix.Openat(fd, "z", unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(zfd)
		next, err := OpenDir(fd, "d")
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = next
	}
	unix.Close(fd)
}

// TestDirsStayWithinBudget walks a chain far deeper than the budget, using
// every parent again after its child (to stat "z"), and checks the
// descriptors open never exceed the budget plus the two a caller pins.
func TestDirsStayWithinBudget(t *testing.T) {
	const depth, budget = 300, 8
	root := t.TempDir()
	makeChain(t, root, depth)
	ds := NewDirs(budget)
	top, err := ds.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer top.Close()
	peak, seen := 0, 0
	var walk func(d *Dir, level int)
	walk = func(d *Dir, level int) {
		if level < depth {
			sub, err := d.Open("d", 0)
			if err != nil {
				t.Fatalf("level %d: %v", level, err)
			}
			walk(sub, level+1)
			sub.Close()
		}
		fd, err := d.Acquire()
		if err != nil {
			t.Fatalf("level %d: reacquire: %v", level, err)
		}
		if _, err := Fstatat(fd, "z"); err != nil && level < depth {
			t.Fatalf("level %d: stat z: %v", level, err)
		}
		seen++
		peak = max(peak, ds.OpenCount())
		d.Release()
	}
	walk(top, 0)
	if seen != depth+1 {
		t.Errorf("visited %d levels, want %d", seen, depth+1)
	}
	if peak > budget+2 {
		t.Errorf("%d descriptors open at the peak, budget %d", peak, budget)
	}
	if ds.OpenCount() != 1 {
		t.Errorf("%d descriptors open after closing every handle but the root", ds.OpenCount())
	}
}

// TestDirsRefuseAReplacedDirectory checks a handle reopened by name must be
// the directory it was: one renamed away and replaced by another is refused.
func TestDirsRefuseAReplacedDirectory(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"a/b", "c"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ds := NewDirs(2)
	top, err := ds.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer top.Close()
	a, err := top.Open("a", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := a.Open("b", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c, err := top.Open("c", 0) // closes a and b: the budget is two
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ds.OpenCount() != 2 {
		t.Fatalf("%d descriptors open, budget 2", ds.OpenCount())
	}
	if err := os.Rename(filepath.Join(root, "a"), filepath.Join(root, "old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Acquire(); !errors.Is(err, ErrDirReplaced) {
		t.Errorf("reacquire of a replaced directory: %v, want ErrDirReplaced", err)
	}
	// A symlink put in its place is never followed.
	if err := os.Remove(filepath.Join(root, "a")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("old", filepath.Join(root, "a")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Acquire(); !errors.Is(err, unix.ELOOP) && !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("reacquire through a symlink: %v, want ELOOP", err)
	}
}
