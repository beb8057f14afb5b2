package changetar

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/diff"
	"github.com/ctrforensics/ctrforensics/forensic/internal/deeptree"
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
	if st.Padding != 0 {
		t.Errorf("%d bytes of padding: the plan of an unchanged tree is not exact", st.Padding)
	}
}

func mapKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestDeepChain archives a chain of directories deeper than the descriptor
// limit, made in a container under `ulimit -n 1024`: the tar holds every
// change, in order, and reads back with archive/tar.
func TestDeepChain(t *testing.T) {
	const depth, zEvery = 20000, 1000
	if testing.Short() {
		t.Skip("a 20,000-deep tree")
	}
	f := newOverlay(t, webImage)
	t.Cleanup(func() {
		unix.Unmount(f.merged, unix.MNT_DETACH)
		must(t, deeptree.Remove(f.upper+"/tmp"))
	})
	must(t, deeptree.Make(f.merged+"/tmp", depth, zEvery))
	var lim unix.Rlimit
	must(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &lim))
	old := lim
	lim.Cur = 1024
	must(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &lim))
	t.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &old) })
	changes, ro := f.readOnly(t)
	if want := 1 + depth + depth/zEvery; len(changes) != want {
		t.Fatalf("%d changes, want %d", len(changes), want)
	}
	pr, pw := io.Pipe()
	type result struct {
		entries int
		err     error
	}
	done := make(chan result)
	go func() { // read back as the tar is written: it is hundreds of megabytes
		var r result
		tr := tar.NewReader(pr)
		for ; ; r.entries++ {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				r.err = err
				break
			}
			want := strings.TrimPrefix(changes[r.entries].Path, "/")
			if hdr.Typeflag == tar.TypeDir {
				want += "/"
			}
			if hdr.Name != want {
				r.err = fmt.Errorf("entry %d: %d-byte name, want %d bytes", r.entries, len(hdr.Name), len(want))
				break
			}
		}
		pr.CloseWithError(r.err)
		done <- r
	}()
	st, err := WriteChangesTar(context.Background(), pw, ro, changes, Options{})
	pw.CloseWithError(err)
	r := <-done
	must(t, err)
	must(t, r.err)
	if st.Entries != int64(len(changes)) || r.entries != len(changes) || len(st.Notes) != 0 || st.Padding != 0 {
		t.Errorf("%d entries written, %d read, notes %q; want %d", st.Entries, r.entries, st.Notes, len(changes))
	}
}

// TestSparseFile archives files with holes: the holes take no room in the
// tar, archive/tar reads each back to the logical content the diff hashed,
// and GNU tar restores the same bytes.
func TestSparseFile(t *testing.T) {
	const size = 64 << 20
	f := newOverlay(t, webImage)
	type part struct {
		off  int64
		data string
	}
	files := map[string][]part{
		"tmp/holes":      {{0, "head"}, {size / 2, "middle"}, {size - 4, "tail"}}, // data, hole, data, hole, data
		"tmp/only-hole":  {},                                                      // truncate -s 1G
		"tmp/hole-first": {{size - 5, "last!"}},
	}
	for name, parts := range files {
		fh, err := os.Create(f.merged + "/" + name)
		must(t, err)
		must(t, fh.Truncate(size))
		for _, p := range parts {
			_, err := fh.WriteAt([]byte(p.data), p.off)
			must(t, err)
		}
		must(t, fh.Close())
	}
	changes, ro := f.readOnly(t)
	out, err := os.Create(filepath.Join(t.TempDir(), "changes.tar"))
	must(t, err)
	st, err := WriteChangesTar(context.Background(), out, ro, changes, Options{})
	must(t, err)
	must(t, out.Close())
	fi, err := os.Stat(out.Name())
	must(t, err)
	if fi.Size() > 64<<10 {
		t.Errorf("tar of three 64 MiB sparse files is %d bytes", fi.Size())
	}
	if len(st.Notes) != 0 || st.Padding != 0 {
		t.Errorf("notes %q, %d bytes of padding", st.Notes, st.Padding)
	}
	// archive/tar gives the logical content, whose digest the diff recorded.
	in, err := os.Open(out.Name())
	must(t, err)
	defer in.Close()
	tr := tar.NewReader(in)
	seen := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		if _, ok := files[hdr.Name]; !ok {
			continue
		}
		seen++
		h := sha256.New()
		n, err := io.Copy(h, tr)
		must(t, err)
		c := find(t, changes, "/"+hdr.Name)
		if got := digest.NewDigest(digest.SHA256, h); n != size || hdr.Size != size || got != c.Digest {
			t.Errorf("%s: %d bytes (header %d), digest %s, diff saw %s", hdr.Name, n, hdr.Size, got, c.Digest)
		}
	}
	if seen != len(files) {
		t.Errorf("%d sparse files in the tar, want %d", seen, len(files))
	}
	// GNU tar restores the same bytes, holes included.
	dir := t.TempDir()
	if b, err := exec.Command("tar", "-xf", out.Name(), "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("tar -xf: %v: %s", err, b)
	}
	for name := range files {
		b, err := exec.Command("sha256sum", filepath.Join(dir, name)).Output()
		must(t, err)
		if got := "sha256:" + strings.Fields(string(b))[0]; got != find(t, changes, "/"+name).Digest.String() {
			t.Errorf("%s restored by GNU tar: %s", name, got)
		}
	}
}

func find(t *testing.T, changes []forensic.Change, p string) *forensic.Change {
	t.Helper()
	for i := range changes {
		if changes[i].Path == p {
			return &changes[i]
		}
	}
	t.Fatalf("no change for %q", p)
	return nil
}

// TestArchiveChangedAfterPlan plans an archive, changes the files before it
// is written, and checks that the archive still has the planned size, reads
// back, keeps each header as the diff recorded it, and notes every file
// not archived as recorded.
func TestArchiveChangedAfterPlan(t *testing.T) {
	f := newOverlay(t, webImage)
	files := map[string]string{"grow": "abc", "shrink": "abcdef", "gone": "x", "swap": "y", "same": "aaaa"}
	for name, data := range files {
		must(t, os.WriteFile(f.merged+"/tmp/"+name, []byte(data), 0o644))
	}
	changes, ro := f.readOnly(t)
	a, err := Plan(context.Background(), ro, changes, Layer, Options{})
	must(t, err)
	must(t, unix.Unmount(ro, 0))
	up := f.upper + "/tmp/"
	must(t, os.WriteFile(up+"grow", []byte("abcdef"), 0o644))
	must(t, os.WriteFile(up+"shrink", []byte("ab"), 0o644))
	must(t, os.WriteFile(up+"same", []byte("bbbb"), 0o644))
	must(t, os.Remove(up+"gone"))
	must(t, os.Remove(up+"swap"))
	must(t, os.Mkdir(up+"swap", 0o755))
	must(t, unix.Mount("overlay", ro, "overlay", unix.MS_RDONLY, fmt.Sprintf("lowerdir=%s:%s", f.upper, f.lower)))
	var buf bytes.Buffer
	st, err := a.WriteTo(context.Background(), &buf)
	must(t, err)
	if int64(buf.Len()) != a.Size() || st.Padding == 0 {
		t.Errorf("archive of %d bytes, %d planned, %d of padding", buf.Len(), a.Size(), st.Padding)
	}
	got, content := readTar(t, &buf)
	cases := []struct {
		name, content, note string
		omitted             bool
	}{
		{"grow", "abc", "grew since the diff (3 bytes, now 6)", false},
		{"shrink", "", "shrank since the diff (6 bytes, now 2)", true},
		{"gone", "", "content not archived: file does not exist", true},
		{"swap", "", "no longer a regular file (now dir)", true},
		{"same", "bbbb", "changed since the diff", false},
	}
	for _, c := range cases {
		h := got["tmp/"+c.name]
		if h == nil || h.Typeflag != tar.TypeReg || content["tmp/"+c.name] != c.content || (h.PAXRecords[contentRecord] == "omitted") != c.omitted {
			t.Errorf("%s: header %+v, content %q; want %q (omitted %v)", c.name, h, content["tmp/"+c.name], c.content, c.omitted)
		}
		if !slices.ContainsFunc(st.Notes, func(n string) bool { return strings.HasPrefix(n, "/tmp/"+c.name+": ") && strings.Contains(n, c.note) }) {
			t.Errorf("%s: no note saying %q in %q", c.name, c.note, st.Notes)
		}
		if m := find(t, changes, "/tmp/"+c.name).Meta; h != nil && !h.ModTime.Equal(m.Mtime) {
			t.Errorf("%s: header mtime %v, the diff recorded %v", c.name, h.ModTime, m.Mtime)
		}
	}
}
