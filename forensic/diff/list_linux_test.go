package diff

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/forensic"
)

// TestList lists a hostile tmpfs-like tree: every entry added, named under
// the mount's destination, nothing followed, opened or read beyond the limit.
func TestList(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(root, "sh"), []byte("elf"), 0o4755))
	must(unix.Chmod(filepath.Join(root, "sh"), 0o4755))
	must(os.Symlink("/", filepath.Join(root, "escape")))
	must(os.Mkdir(filepath.Join(root, "dir"), 0o700))
	must(os.WriteFile(filepath.Join(root, "dir", "f"), []byte("x\n"), 0o600))
	must(unix.Mkfifo(filepath.Join(root, "fifo"), 0o600))
	must(os.WriteFile(filepath.Join(root, "huge"), nil, 0o644))
	must(os.Truncate(filepath.Join(root, "huge"), 1<<40))

	d, err := List(context.Background(), root, "/dev/shm", Options{MaxHashBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		path   string
		typ    forensic.FileType
		digest digest.Digest
	}{
		{"/dev/shm/dir", forensic.TypeDir, ""},
		{"/dev/shm/dir/f", forensic.TypeFile, digest.FromString("x\n")},
		{"/dev/shm/escape", forensic.TypeSymlink, ""},
		{"/dev/shm/fifo", forensic.TypeFIFO, ""},
		{"/dev/shm/huge", forensic.TypeFile, ""},
		{"/dev/shm/sh", forensic.TypeFile, digest.FromString("elf")},
	}
	if len(d.Changes) != len(want) {
		t.Fatalf("%d changes, want %d: %+v", len(d.Changes), len(want), d.Changes)
	}
	for i, w := range want {
		c := d.Changes[i]
		if c.Kind != forensic.Added || c.Path != w.path || c.Meta.Type != w.typ || c.Digest != w.digest {
			t.Errorf("change %d: %s %s %s %s, want A %s %s %s", i, c.Kind, c.Path, c.Meta.Type, c.Digest, w.path, w.typ, w.digest)
		}
	}
	if c := d.Changes[2]; c.Meta.LinkTarget != "/" {
		t.Errorf("symlink target %q", c.Meta.LinkTarget)
	}
	if c := d.Changes[4]; c.NotHashed == nil || len(d.Notes) != 1 {
		t.Errorf("a 1 TiB sparse file above the limit: not hashed %v, notes %q", c.NotHashed, d.Notes)
	}
	if c := d.Changes[5]; c.Meta.Mode != 0o4755 {
		t.Errorf("setuid mode %o", c.Meta.Mode)
	}

	one, err := ListEntries(context.Background(), root, []string{"sh"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(one.Changes) != 1 || one.Changes[0].Path != "/sh" || one.Changes[0].Digest != digest.FromString("elf") {
		t.Errorf("ListEntries: %+v", one.Changes)
	}
}
