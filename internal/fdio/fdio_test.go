package fdio

import (
	"os"
	"path/filepath"
	"reflect"
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
