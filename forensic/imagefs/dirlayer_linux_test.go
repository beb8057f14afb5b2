package imagefs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/internal/testutil"
)

// upperDir builds an overlayfs upper directory as containerd's snapshotter
// leaves it, over the lower layer of TestDirLayer.
// It returns the directory and the target of its symlink "escape", a
// directory outside it.
func upperDir(t *testing.T, xattr string) (dir, outside string) {
	t.Helper()
	dir, outside = t.TempDir(), t.TempDir()
	steps := []func() error{
		func() error { return os.WriteFile(filepath.Join(outside, "host-secret"), []byte("host"), 0o600) },
		func() error { return os.MkdirAll(filepath.Join(dir, "etc"), 0o755) },
		func() error { return os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root2"), 0o644) },
		func() error { return unix.Mknod(filepath.Join(dir, "etc/gone"), unix.S_IFCHR, 0) },
		func() error { return os.MkdirAll(filepath.Join(dir, "opt"), 0o700) },
		func() error { return unix.Setxattr(filepath.Join(dir, "opt"), xattr, []byte("y"), 0) },
		func() error { return unix.Setxattr(filepath.Join(dir, "opt"), "user.keep", []byte("kept"), 0) },
		func() error { return os.WriteFile(filepath.Join(dir, "opt/new"), []byte("n"), 0o644) },
		func() error { return os.WriteFile(filepath.Join(dir, "h1"), []byte("linked"), 0o644) },
		func() error { return os.Link(filepath.Join(dir, "h1"), filepath.Join(dir, "h2")) },
		func() error { return os.Symlink("/etc/shadow", filepath.Join(dir, "lnk")) },
		func() error { return os.Symlink(outside, filepath.Join(dir, "escape")) },
		func() error { return unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600) },
		func() error { return os.WriteFile(filepath.Join(dir, "bad\xffname\n"), []byte("odd"), 0o644) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	return dir, outside
}

func TestDirLayer(t *testing.T) {
	testutil.RequiresRoot(t) // mknod and trusted.* xattrs
	lower := layerOf(t, "gzip",
		tdir("etc/"), tfile("etc/passwd", "root"), tfile("etc/gone", "x"),
		tdir("opt/"), tfile("opt/old", "o"), tdir("opt/sub/"), tfile("opt/sub/deep", "d"),
		tfile("keep", "k"))
	for _, xattr := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		dir, outside := upperDir(t, xattr)
		upper := DirLayer(dir)
		layers := []Layer{lower, upper}
		files, err := Files(context.Background(), layers, Options{Digest: true})
		if err != nil {
			t.Fatal(err)
		}
		diffLines(t, xattr, lines(files), []string{
			`"/bad\xffname\n" file L1 644 3`,
			`"/escape" symlink L1 777 0 -> ` + outside,
			`"/etc" dir L1 755 0`,
			`"/etc/passwd" file L1 644 5`,
			`"/fifo" fifo L1 600 0`,
			`"/h1" file L1 644 6`,
			`"/h2" file L1 644 6 -> /h1 (hard)`,
			`"/keep" file L0 644 1`,
			`"/lnk" symlink L1 777 0 -> /etc/shadow`,
			`"/opt" dir L1 700 0`,
			`"/opt/new" file L1 644 1`,
		})
		for _, e := range files {
			if e.Path == "/opt" && (len(e.Xattrs) != 1 || e.Xattrs["user.keep"] != "kept") {
				t.Errorf("/opt xattrs %q", e.Xattrs)
			}
		}
		var buf bytes.Buffer
		if err := Cat(context.Background(), layers, "/h2", &buf, CatOptions{Layer: -1}); err != nil || buf.String() != "linked" {
			t.Errorf("Cat(/h2) = %q, %v", buf.String(), err)
		}
		reps, err := Layers(context.Background(), layers, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if reps[1].DiffID == "" {
			t.Error("no DiffID computed for the directory layer")
		}
	}
}
