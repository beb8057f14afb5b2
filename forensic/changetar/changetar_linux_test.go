package changetar

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/diff"
	"github.com/ctrforensics/ctrforensics/internal/testutil"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// overlayFixture is an image layer, a container's upper directory and an
// overlay mount of both, like a running container's root.
type overlayFixture struct {
	lower, upper, work, merged string
}

// newOverlay creates the image from files (path -> content; a trailing slash
// makes a directory) and mounts the container root read-write.
func newOverlay(t testing.TB, files map[string]string) *overlayFixture {
	t.Helper()
	testutil.RequiresRoot(t) // mounts overlayfs
	dir := t.TempDir()
	f := &overlayFixture{
		lower: filepath.Join(dir, "lower"), upper: filepath.Join(dir, "upper"),
		work: filepath.Join(dir, "work"), merged: filepath.Join(dir, "merged"),
	}
	for _, d := range []string{f.lower, f.upper, f.work, f.merged} {
		must(t, os.Mkdir(d, 0o755))
	}
	for p, content := range files {
		full := filepath.Join(f.lower, p)
		if strings.HasSuffix(p, "/") {
			must(t, os.MkdirAll(full, 0o755))
			continue
		}
		must(t, os.MkdirAll(filepath.Dir(full), 0o755))
		must(t, os.WriteFile(full, []byte(content), 0o644))
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,index=off", f.lower, f.upper, f.work)
	must(t, unix.Mount("overlay", f.merged, "overlay", 0, opts))
	t.Cleanup(func() { unix.Unmount(f.merged, unix.MNT_DETACH) })
	return f
}

// readOnly remounts the container root read-only and returns its changes and
// the read-only root.
func (f *overlayFixture) readOnly(t testing.TB) ([]forensic.Change, string) {
	t.Helper()
	must(t, unix.Unmount(f.merged, 0))
	d, err := diff.OverlayDiff(context.Background(), f.upper, f.lower, diff.Options{})
	must(t, err)
	must(t, unix.Mount("overlay", f.merged, "overlay", unix.MS_RDONLY, fmt.Sprintf("lowerdir=%s:%s", f.upper, f.lower)))
	return d.Changes, f.merged
}

func readTar(t testing.TB, r io.Reader) (map[string]*tar.Header, map[string]string) {
	t.Helper()
	got, content := map[string]*tar.Header{}, map[string]string{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return got, content
		}
		must(t, err)
		b, err := io.ReadAll(tr)
		must(t, err)
		got[hdr.Name], content[hdr.Name] = hdr, string(b)
	}
}

var webImage = map[string]string{
	"/var/www/html/index.html": "<h1>Welcome</h1>\n",
	"/etc/passwd":              "root:x:0:0:root:/root:/bin/sh\n",
	"/tmp/":                    "",
}

// TestWriteChangesTar archives a change set and reads it back: content, PAX
// times and xattrs, whiteouts, symlinks, and an attribute no tar can hold.
func TestWriteChangesTar(t *testing.T) {
	f := newOverlay(t, webImage)
	must(t, os.WriteFile(f.merged+"/var/www/html/shell.php", []byte("<?php x ?>\n"), 0o644))
	must(t, unix.Setxattr(f.merged+"/var/www/html/shell.php", "user.origin", []byte("dropper"), 0))
	must(t, unix.Setxattr(f.merged+"/var/www/html/shell.php", "user.a=b", []byte("odd"), 0))
	must(t, os.Remove(f.merged+"/etc/passwd"))
	must(t, os.Symlink("/etc/shadow", f.merged+"/tmp/s"))
	changes, ro := f.readOnly(t)
	var buf bytes.Buffer
	st, err := WriteChangesTar(context.Background(), &buf, ro, changes, Options{})
	must(t, err)
	got, content := readTar(t, &buf)
	if h := got["var/www/html/shell.php"]; h == nil || content["var/www/html/shell.php"] != "<?php x ?>\n" ||
		h.PAXRecords["SCHILY.xattr.user.origin"] != "dropper" || h.ModTime.Nanosecond() == 0 && h.PAXRecords["mtime"] == "" {
		t.Errorf("shell.php: %+v", h)
	}
	if got["etc/.wh.passwd"] == nil || got["tmp/s"] == nil || got["tmp/s"].Linkname != "/etc/shadow" {
		t.Errorf("entries: %v", mapKeys(got))
	}
	if len(st.Notes) != 1 || !strings.Contains(st.Notes[0], `"user.a=b"`) {
		t.Errorf("notes %q, want one naming the attribute user.a=b", st.Notes)
	}
}

func mapKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
