package fdio

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReadNamesAndLinks(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b", "a", "new\nline", "c"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	long := "/" + strings.Repeat("x", 300)
	if err := os.Symlink(long, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	fd, err := OpenNoatime(unix.AT_FDCWD, dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	want := []string{"a", "b", "c", "link", "new\nline"}
	for i := 0; i < 2; i++ { // a second read starts from the beginning again
		got, err := ReadNames(fd)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("read %d: %q, %v", i, got, err)
		}
	}
	if got, err := ReadlinkAt(fd, "link"); err != nil || got != long {
		t.Errorf("ReadlinkAt = %q, %v", got, err)
	}
	if _, err := OpenNoatime(fd, "link", unix.O_RDONLY|unix.O_NOFOLLOW); err != unix.ELOOP {
		t.Errorf("opening a symlink with O_NOFOLLOW: %v, want ELOOP", err)
	}
}

func TestOpenRegularRefusesASwappedEntry(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	dirfd, err := OpenDir(unix.AT_FDCWD, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer Close(dirfd)
	fd, err := OpenRegular(dirfd, "f", st.Ino)
	if err != nil {
		t.Fatalf("OpenRegular of the stat'ed file: %v", err)
	}
	Close(fd)
	// The file is swapped for a FIFO after the stat: opening it would block.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenRegular(dirfd, "f", st.Ino); err != ErrReplaced {
		t.Errorf("OpenRegular of a FIFO swapped in: %v, want ErrReplaced", err)
	}
}

func TestXattrs(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(p, "user.a", []byte("1"), 0); err != nil {
		t.Skipf("no user xattrs here: %v", err)
	}
	if err := unix.Setxattr(p, "user.skip", []byte("2"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f", filepath.Join(dir, "l")); err != nil {
		t.Fatal(err)
	}
	dirfd, err := OpenDir(unix.AT_FDCWD, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer Close(dirfd)
	names, values, err := Xattrs(dirfd, "f", func(a string) bool { return a != "user.skip" })
	sort.Strings(names)
	if err != nil || !reflect.DeepEqual(names, []string{"user.a", "user.skip"}) ||
		!reflect.DeepEqual(values, map[string][]byte{"user.a": []byte("1")}) {
		t.Errorf("Xattrs(f) = %q, %q, %v", names, values, err)
	}
	// A symlink's own attributes, never its target's.
	if names, values, err := Xattrs(dirfd, "l", nil); err != nil || len(names)+len(values) != 0 {
		t.Errorf("Xattrs(symlink) = %q, %q, %v", names, values, err)
	}
}
