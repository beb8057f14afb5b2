package mountutil

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/internal/testutil"
)

// TestHideSpecial covers the FIFOs, sockets and devices of a read-only bind
// mount with an empty file, leaves whiteouts, regular files, directories and
// symlinks alone (a symlink to a FIFO included), writes nothing to the layer,
// and is undone by UnmountUnder.
func TestHideSpecial(t *testing.T) {
	testutil.RequiresRoot(t)
	layer := t.TempDir()
	mk := func(name string, mode uint32, dev int) {
		if err := unix.Mknod(filepath.Join(layer, name), mode, dev); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(layer, "d/e"), 0o755); err != nil {
		t.Fatal(err)
	}
	mk("fifo", unix.S_IFIFO|0o644, 0)
	mk("d/e/fifo", unix.S_IFIFO|0o644, 0)
	mk("sock", unix.S_IFSOCK|0o644, 0)
	mk("null", unix.S_IFCHR|0o644, int(unix.Mkdev(1, 3)))
	mk("loop", unix.S_IFBLK|0o644, int(unix.Mkdev(7, 0)))
	mk("whiteout", unix.S_IFCHR, 0) // mode 0, device 0/0: an overlay whiteout
	if err := os.WriteFile(filepath.Join(layer, "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("fifo", filepath.Join(layer, "link")); err != nil {
		t.Fatal(err)
	}
	cover := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(cover, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := Mount(ReadOnlyMounts([]string{layer}), root); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := UnmountUnder(root); err != nil {
			t.Error(err)
		}
	})
	n, err := HideSpecial(root, cover)
	if err != nil || n != 5 {
		t.Fatalf("HideSpecial = %d, %v; want 5 entries hidden", n, err)
	}
	for name, want := range map[string]os.FileMode{
		"fifo": 0, "d/e/fifo": 0, "sock": 0, "null": 0, "loop": 0, "file": 0,
		"whiteout": os.ModeDevice | os.ModeCharDevice, "link": os.ModeSymlink, "d": os.ModeDir,
	} {
		fi, err := os.Lstat(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != want {
			t.Errorf("%s is %v, want type %v", name, fi.Mode(), want)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "fifo"), []byte("x"), 0o644); err == nil {
		t.Error("a cover is writable")
	}
	if fi, err := os.Lstat(filepath.Join(layer, "fifo")); err != nil || fi.Mode().Type() != os.ModeNamedPipe {
		t.Errorf("the layer's fifo changed: %v %v", fi.Mode(), err)
	}
	unmounted, err := UnmountUnder(root)
	if err != nil || len(unmounted) != 6 {
		t.Fatalf("UnmountUnder unmounted %d (%v), want the 5 covers and the view", len(unmounted), err)
	}
	if fi, err := os.Lstat(filepath.Join(root, "fifo")); !os.IsNotExist(err) {
		t.Errorf("after unmounting, %v is still there (%v)", fi, err)
	}
}

// TestHideSpecialDeepTree covers a FIFO at the bottom of a directory chain
// deeper than the descriptor limit and longer than PATH_MAX: HideSpecial must
// keep its descriptors bounded, and UnmountUnder must remove the cover it
// cannot name by path (with the view above it).
func TestHideSpecialDeepTree(t *testing.T) {
	testutil.RequiresRoot(t)
	const depth = 2100 // "/d" a level: over 4096 bytes of path
	layer := t.TempDir()
	fd, err := unix.Open(layer, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < depth; i++ {
		if err := unix.Mkdirat(fd, "d", 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := unix.Openat(fd, "d", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = next
	}
	err = unix.Mknodat(fd, "fifo", unix.S_IFIFO|0o644, 0)
	unix.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	cover := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(cover, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := Mount(ReadOnlyMounts([]string{layer}), root); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(root, unix.MNT_DETACH) })

	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	low := lim
	low.Cur = 512
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	n, err := HideSpecial(root, cover)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if err != nil || n != 1 {
		t.Fatalf("HideSpecial = %d, %v; want 1 entry hidden", n, err)
	}
	unmounted, err := UnmountUnder(root)
	if err != nil || len(unmounted) != 2 {
		t.Fatalf("UnmountUnder unmounted %d (%v), want the cover and the view", len(unmounted), err)
	}
	if left, err := MountsUnder(root); err != nil || len(left) != 0 {
		t.Errorf("still mounted: %d %v", len(left), err)
	}
}

// TestHideOneDecidesOnTheDescriptor plays the race a running container can
// win: the entry was a FIFO when the walk looked, and is a regular file with
// content when the cover is about to be mounted. The cover must not hide it.
func TestHideOneDecidesOnTheDescriptor(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "was-a-fifo"), []byte("real content"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	cover := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(cover, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	dirfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dirfd)
	t.Cleanup(func() {
		if _, err := UnmountUnder(dir); err != nil {
			t.Error(err)
		}
	})
	for _, tc := range []struct {
		name string
		want bool
	}{{"was-a-fifo", false}, {"fifo", true}} {
		hidden, err := hideOne(dirfd, tc.name, cover)
		if err != nil || hidden != tc.want {
			t.Errorf("hideOne(%s) = %v, %v; want %v", tc.name, hidden, err, tc.want)
		}
	}
	if got, err := os.ReadFile(filepath.Join(dir, "was-a-fifo")); err != nil || string(got) != "real content" {
		t.Errorf("the regular file reads %q, %v: a cover hides its content", got, err)
	}
}
