package diff

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/internal/deeptree"
	"github.com/ctrforensics/ctrforensics/internal/testutil"
)

// baseTime is the mtime of every file of the test image.
var baseTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// overlayFixture is an image layer, a container's upper directory and a
// read-write overlay mount of both, like a running container's root.
type overlayFixture struct {
	lower, upper, work, merged string
}

func requireRoot(t testing.TB) {
	t.Helper()
	testutil.RequiresRoot(t) // mounts overlayfs and creates whiteouts
}

// newOverlay creates the image from files (path -> content; a trailing slash
// makes a directory) and mounts the container root read-write.
func newOverlay(t testing.TB, files map[string]string) *overlayFixture {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	f := &overlayFixture{
		lower: filepath.Join(dir, "lower"), upper: filepath.Join(dir, "upper"),
		work: filepath.Join(dir, "work"), merged: filepath.Join(dir, "merged"),
	}
	for _, d := range []string{f.lower, f.upper, f.work, f.merged} {
		must(t, os.Mkdir(d, 0o755))
	}
	writeTree(t, f.lower, files)
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,index=off", f.lower, f.upper, f.work)
	must(t, unix.Mount("overlay", f.merged, "overlay", 0, opts))
	t.Cleanup(func() { unix.Unmount(f.merged, unix.MNT_DETACH) })
	return f
}

func writeTree(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(root, p)
		if strings.HasSuffix(p, "/") {
			must(t, os.MkdirAll(full, 0o755))
			continue
		}
		must(t, os.MkdirAll(filepath.Dir(full), 0o755))
		must(t, os.WriteFile(full, []byte(content), 0o644))
	}
	// Fixed times, files before directories, as an image layer has them.
	must(t, filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, baseTime, baseTime)
	}))
	must(t, os.Chtimes(root, baseTime, baseTime))
}

// diffBoth computes the change set by the fast path and by the double walk over
// a read-only merged mount, and fails the test unless they are identical.
func (f *overlayFixture) diffBoth(t testing.TB) []forensic.Change {
	t.Helper()
	must(t, unix.Unmount(f.merged, 0))
	ctx := context.Background()
	fast, err := OverlayDiff(ctx, f.upper, f.lower, Options{})
	must(t, err)
	ro := f.merged
	opts := fmt.Sprintf("lowerdir=%s:%s,index=off", f.upper, f.lower)
	must(t, unix.Mount("overlay", ro, "overlay", unix.MS_RDONLY, opts))
	defer unix.Unmount(ro, 0)
	walk, err := TreeDiff(ctx, ro, f.lower, Options{})
	must(t, err)
	// A copy-up without any difference is only visible in the upper directory;
	// the methods agree on everything else.
	seen := slices.DeleteFunc(slices.Clone(fast.Changes), func(c forensic.Change) bool { return c.CopyUpOnly })
	if !sameSummaries(walk.Changes, seen) {
		if len(walk.Changes)+len(fast.Changes) > 1000 {
			t.Fatalf("double walk (%d changes) and fast path (%d changes) differ", len(walk.Changes), len(fast.Changes))
		}
		t.Fatalf("double walk and fast path differ:\nwalk:\n%s\nfast:\n%s",
			strings.Join(summarize(walk.Changes), "\n"), strings.Join(summarize(seen), "\n"))
	}
	return fast.Changes
}

// sameSummaries compares two change sets one summary at a time, so that long
// paths are never all rendered at once.
func sameSummaries(a, b []forensic.Change) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if summary(&a[i]) != summary(&b[i]) {
			return false
		}
	}
	return true
}

// summarize renders what both methods must agree on.
func summarize(changes []forensic.Change) []string {
	out := make([]string, len(changes))
	for i := range changes {
		out[i] = summary(&changes[i])
	}
	return out
}

func summary(c *forensic.Change) string {
	cc, known := c.ContentChanged()
	return fmt.Sprintf("%s %s fields=%v digest=%s base=%s content=%v/%v link=%v lost=%s",
		c.Line(), c.Meta.Type, c.Fields, short(c.Digest), short(c.BaseDigest), cc, known, c.HardLinkTo != "", c.LostWith)
}

func short(d digest.Digest) string {
	if d == "" {
		return "-"
	}
	return d.Encoded()[:8]
}

// lines renders the changes as the table does, followed by what only JSON
// says: the entries lost with a directory and the copy-ups.
func lines(changes []forensic.Change) []string {
	out := make([]string, len(changes))
	for i, c := range changes {
		out[i] = c.Line()
		switch {
		case c.LostWith != "":
			out[i] += " (lost with " + c.LostWith + ")"
		case c.CopyUpOnly:
			out[i] += " (copy-up only)"
		}
	}
	return out
}

func sha(s string) digest.Digest {
	return digest.NewDigestFromBytes(digest.SHA256, func() []byte { h := sha256.Sum256([]byte(s)); return h[:] }())
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var webImage = map[string]string{
	"/var/www/html/index.html":   "<h1>Welcome</h1>\n",
	"/var/www/html/about.html":   "<h1>About</h1>\n",
	"/var/www/html/static/a.css": "a{}\n",
	"/var/www/html/static/b.js":  "b()\n",
	"/etc/passwd":                "root:x:0:0:root:/root:/bin/sh\n",
	"/opt/data/one":              "1\n",
	"/opt/data/sub/two":          "2\n",
	"/tmp/":                      "",
}

// scenario is an attack on a container's root and the changes both walks
// must report for it: want, the docker-diff lines, and check, the details.
type scenario struct {
	name   string
	attack func(t testing.TB, root string)
	want   []string
	check  func(t *testing.T, changes []forensic.Change)
}

func TestDiffScenarios(t *testing.T) {
	tests := []scenario{
		{
			name: "deface and drop a shell",
			attack: func(t testing.TB, root string) {
				must(t, os.WriteFile(root+"/var/www/html/index.html", []byte("hacked\n"), 0o644))
				must(t, os.WriteFile(root+"/var/www/html/shell.php", []byte("<?php eval($_GET['cmd']); ?>\n"), 0o644))
			},
			want: []string{"C /var", "C /var/www", "C /var/www/html", "C /var/www/html/index.html", "A /var/www/html/shell.php"},
			check: func(t *testing.T, changes []forensic.Change) {
				idx := find(t, changes, "/var/www/html/index.html")
				if idx.Digest != sha("hacked\n") || idx.BaseDigest != sha("<h1>Welcome</h1>\n") || !idx.Has(forensic.FieldContent) {
					t.Errorf("index.html: digest %s base %s fields %v", idx.Digest, idx.BaseDigest, idx.Fields)
				}
				if sh := find(t, changes, "/var/www/html/shell.php"); sh.Digest != sha("<?php eval($_GET['cmd']); ?>\n") {
					t.Errorf("shell.php digest %s", sh.Digest)
				}
				if www := find(t, changes, "/var/www"); len(www.Fields) != 0 {
					t.Errorf("/var/www is only a parent, got fields %v", www.Fields)
				}
			},
		},
		{
			name:   "delete a file",
			attack: func(t testing.TB, root string) { must(t, os.Remove(root+"/etc/passwd")) },
			want:   []string{"C /etc", "D /etc/passwd"},
			check: func(t *testing.T, changes []forensic.Change) {
				if d := find(t, changes, "/etc/passwd"); d.BaseDigest != sha("root:x:0:0:root:/root:/bin/sh\n") {
					t.Errorf("deleted file keeps the digest of what was removed, got %q", d.BaseDigest)
				}
			},
		},
		{
			name: "delete a directory and recreate it",
			attack: func(t testing.TB, root string) {
				must(t, os.RemoveAll(root+"/opt/data"))
				must(t, os.Mkdir(root+"/opt/data", 0o755))
				must(t, os.WriteFile(root+"/opt/data/new", []byte("x"), 0o644))
			},
			want: []string{"C /opt", "C /opt/data", "A /opt/data/new", "D /opt/data/one", "D /opt/data/sub",
				"D /opt/data/sub/two (lost with /opt/data/sub)"},
		},
		{
			name:   "delete a directory",
			attack: func(t testing.TB, root string) { must(t, os.RemoveAll(root+"/opt/data")) },
			want: []string{"C /opt", "D /opt/data", "D /opt/data/one (lost with /opt/data)",
				"D /opt/data/sub (lost with /opt/data)", "D /opt/data/sub/two (lost with /opt/data)"},
			check: func(t *testing.T, changes []forensic.Change) {
				if d := find(t, changes, "/opt/data/sub/two"); d.BaseDigest != sha("2\n") || d.Meta.Type != forensic.TypeFile {
					t.Errorf("lost file: type %s base digest %s", d.Meta.Type, d.BaseDigest)
				}
				if d := find(t, changes, "/opt/data/sub"); d.Meta.Type != forensic.TypeDir {
					t.Errorf("lost directory: type %s", d.Meta.Type)
				}
			},
		},
		{
			name: "a file copied up without a change",
			attack: func(t testing.TB, root string) {
				must(t, os.Chtimes(root+"/var/www/html/about.html", baseTime, baseTime)) // copies it up
			},
			want: []string{"C /var/www/html/about.html (copy-up only)"},
			check: func(t *testing.T, changes []forensic.Change) {
				c := find(t, changes, "/var/www/html/about.html")
				if cc, known := c.ContentChanged(); cc || !known || len(c.Fields) != 0 || c.Digest != sha("<h1>About</h1>\n") {
					t.Errorf("copy-up: content changed %v/%v, fields %v, digest %s", cc, known, c.Fields, c.Digest)
				}
			},
		},
		{
			name:   "chmod only",
			attack: func(t testing.TB, root string) { must(t, os.Chmod(root+"/etc/passwd", 0o666)) },
			want:   []string{"C /etc", "C /etc/passwd"},
			check:  changedFields("/etc/passwd", false, forensic.FieldMode),
		},
		{
			name: "touch only",
			attack: func(t testing.TB, root string) {
				now := time.Now()
				must(t, os.Chtimes(root+"/var/www/html/about.html", now, now))
			},
			want:  []string{"C /var", "C /var/www", "C /var/www/html", "C /var/www/html/about.html"},
			check: changedFields("/var/www/html/about.html", false, forensic.FieldMtime),
		},
		{
			name: "edit with size and mtime put back",
			attack: func(t testing.TB, root string) {
				p := root + "/var/www/html/index.html"
				must(t, os.WriteFile(p, []byte("<h1>Welcomf</h1>\n"), 0o644))
				must(t, os.Chtimes(p, baseTime, baseTime))
			},
			want:  []string{"C /var", "C /var/www", "C /var/www/html", "C /var/www/html/index.html"},
			check: changedFields("/var/www/html/index.html", true, forensic.FieldContent),
		},
		{
			name: "hostile names",
			attack: func(t testing.TB, root string) {
				must(t, os.WriteFile(root+"/tmp/evil\nname", []byte("n"), 0o644))
				must(t, os.WriteFile(root+"/tmp/bad\xffname", []byte("u"), 0o644))
				must(t, os.Symlink("/etc/shadow", root+"/tmp/shadow"))
				must(t, unix.Mkfifo(root+"/tmp/fifo", 0o600))
				must(t, os.Link(root+"/tmp/evil\nname", root+"/tmp/hardlink"))
				l, err := net.Listen("unix", root+"/tmp/sock")
				must(t, err)
				l.(*net.UnixListener).SetUnlinkOnClose(false)
				l.Close()
			},
			want: []string{"C /tmp", `A /tmp/bad\xffname`, `A /tmp/evil\nname`, "A /tmp/fifo", "A /tmp/hardlink",
				"A /tmp/shadow", "A /tmp/sock"},
			check: func(t *testing.T, changes []forensic.Change) {
				if l := find(t, changes, "/tmp/shadow"); l.Meta.LinkTarget != "/etc/shadow" || l.Digest != "" {
					t.Errorf("symlink: target %q digest %q", l.Meta.LinkTarget, l.Digest)
				}
				if h := find(t, changes, "/tmp/hardlink"); h.HardLinkTo != "/tmp/evil\nname" {
					t.Errorf("hard link to %q", h.HardLinkTo)
				}
				if s := find(t, changes, "/tmp/sock"); s.Meta.Type != forensic.TypeSocket || s.Digest != "" {
					t.Errorf("socket: %+v", s)
				}
			},
		},
	}
	tests = append(tests, scenario{
		name: "a file replaces a directory",
		attack: func(t testing.TB, root string) {
			must(t, os.RemoveAll(root+"/opt/data"))
			must(t, os.WriteFile(root+"/opt/data", []byte("now a file\n"), 0o644))
		},
		want: []string{"C /opt", "C /opt/data", "D /opt/data/one (lost with /opt/data)",
			"D /opt/data/sub (lost with /opt/data)", "D /opt/data/sub/two (lost with /opt/data)"},
		check: func(t *testing.T, changes []forensic.Change) {
			if c := find(t, changes, "/opt/data"); !c.Has(forensic.FieldType) || c.Digest != sha("now a file\n") {
				t.Errorf("/opt/data: fields %v digest %s", c.Fields, c.Digest)
			}
			if d := find(t, changes, "/opt/data/one"); d.BaseDigest != sha("1\n") {
				t.Errorf("the deleted file keeps its digest: %s", d.BaseDigest)
			}
		},
	})
	// Another type replaces a directory, or a regular file.
	lostData := []string{"D /opt/data/one (lost with /opt/data)", "D /opt/data/sub (lost with /opt/data)",
		"D /opt/data/sub/two (lost with /opt/data)"}
	for _, r := range []struct {
		typ  forensic.FileType
		make func(t testing.TB, p string)
	}{
		{forensic.TypeSymlink, func(t testing.TB, p string) { must(t, os.Symlink("/etc/shadow", p)) }},
		{forensic.TypeFIFO, func(t testing.TB, p string) { must(t, unix.Mkfifo(p, 0o600)) }},
		{forensic.TypeDir, func(t testing.TB, p string) { must(t, os.Mkdir(p, 0o700)) }},
	} {
		if r.typ != forensic.TypeDir {
			tests = append(tests, scenario{
				name: "a " + string(r.typ) + " replaces a directory",
				attack: func(t testing.TB, root string) {
					must(t, os.RemoveAll(root+"/opt/data"))
					r.make(t, root+"/opt/data")
				},
				want: append([]string{"C /opt", "C /opt/data"}, lostData...),
				check: func(t *testing.T, changes []forensic.Change) {
					if c := find(t, changes, "/opt/data"); c.Meta.Type != r.typ || c.Base.Type != forensic.TypeDir || c.BaseDigest != "" {
						t.Errorf("/opt/data: %s over %s, base digest %s", c.Meta.Type, c.Base.Type, c.BaseDigest)
					}
				},
			})
		}
		tests = append(tests, scenario{
			name: "a " + string(r.typ) + " replaces a file",
			attack: func(t testing.TB, root string) {
				must(t, os.Remove(root+"/etc/passwd"))
				r.make(t, root+"/etc/passwd")
			},
			want: []string{"C /etc", "C /etc/passwd"},
			check: func(t *testing.T, changes []forensic.Change) {
				c := find(t, changes, "/etc/passwd")
				if c.Meta.Type != r.typ || c.BaseDigest != sha("root:x:0:0:root:/root:/bin/sh\n") || c.Digest != "" {
					t.Errorf("/etc/passwd: %s, digest %q, base digest %q (want the replaced content's)", c.Meta.Type, c.Digest, c.BaseDigest)
				}
				if cc, known := c.ContentChanged(); !cc || !known {
					t.Errorf("/etc/passwd: content changed %v/%v", cc, known)
				}
			},
		})
	}
	tests = append(tests, scenario{
		// On an overlay mounted by root, user.overlay.* attributes are the
		// container's own data: they must not hide a file, empty a directory
		// or force a fallback.
		name: "forged overlay attributes",
		attack: func(t testing.TB, root string) {
			must(t, os.WriteFile(root+"/tmp/implant", []byte("x"), 0o644))
			must(t, unix.Setxattr(root+"/tmp/implant", "user.overlay.whiteout", []byte(""), 0))
			must(t, unix.Setxattr(root+"/opt/data", "user.overlay.opaque", []byte("y"), 0))
			must(t, os.Mkdir(root+"/tmp/newdir", 0o755))
			must(t, unix.Setxattr(root+"/tmp/newdir", "user.overlay.redirect", []byte("/etc"), 0))
		},
		want: []string{"C /opt", "C /opt/data", "C /tmp", "A /tmp/implant", "A /tmp/newdir"},
		check: func(t *testing.T, changes []forensic.Change) {
			if c := find(t, changes, "/tmp/implant"); string(c.Meta.Xattrs["user.overlay.whiteout"]) != "" || len(c.Meta.Xattrs) != 1 {
				t.Errorf("implant xattrs %v", c.Meta.Xattrs)
			}
			if c := find(t, changes, "/opt/data"); !c.Has(forensic.FieldXattrs) {
				t.Errorf("/opt/data fields %v, want xattrs", c.Fields)
			}
		},
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newOverlay(t, webImage)
			tt.attack(t, f.merged)
			changes := f.diffBoth(t)
			if got := lines(changes); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if tt.check != nil {
				tt.check(t, changes)
			}
		})
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

// changedFields is a check that the change of p has exactly fields, and
// that its content changed or not, as told by both digests.
func changedFields(p string, content bool, fields ...forensic.Field) func(*testing.T, []forensic.Change) {
	return func(t *testing.T, changes []forensic.Change) {
		t.Helper()
		c := find(t, changes, p)
		if cc, known := c.ContentChanged(); cc != content || !known || !reflect.DeepEqual(c.Fields, fields) {
			t.Errorf("%s: content changed %v (known %v), fields %v; want %v, fields %v", p, cc, known, c.Fields, content, fields)
		}
	}
}

// TestOverlayDiffFallsBack checks the fast path refuses an upper directory
// whose entries rely on the lower layers (metacopy, redirect) in the overlay's
// own attribute namespace, and only there.
func TestOverlayDiffFallsBack(t *testing.T) {
	tests := []struct {
		attr      string
		userXattr bool
		fallback  bool
	}{
		{"trusted.overlay.metacopy", false, true},
		{"trusted.overlay.redirect", false, true},
		{"user.overlay.redirect", true, true},
		{"user.overlay.redirect", false, false}, // the container's own attribute
	}
	for _, tt := range tests {
		f := newOverlay(t, webImage)
		must(t, os.WriteFile(f.merged+"/var/www/html/index.html", []byte("x"), 0o644))
		must(t, unix.Unmount(f.merged, 0))
		must(t, unix.Lsetxattr(f.upper+"/var/www/html/index.html", tt.attr, []byte("y"), 0))
		_, err := OverlayDiff(context.Background(), f.upper, f.lower, Options{UserXattr: tt.userXattr})
		var fb *FallbackError
		if got := errors.As(err, &fb) && fb.Path == "/var/www/html/index.html"; got != tt.fallback {
			t.Errorf("%s (userxattr %v): error %v, want fallback %v", tt.attr, tt.userXattr, err, tt.fallback)
		}
	}
}

// TestNotHashedReasons checks the size limit gives a typed reason, that a file
// over the limit on both sides with equal metadata is counted in a note rather
// than reported, and that both methods agree.
func TestNotHashedReasons(t *testing.T) {
	f := newOverlay(t, map[string]string{"/big": "0123456789", "/same": "0123456789"})
	must(t, os.WriteFile(f.merged+"/new", []byte("0123456789"), 0o644))
	must(t, unix.Unmount(f.merged, 0))
	opts := Options{MaxHashBytes: 4}
	fast, err := OverlayDiff(context.Background(), f.upper, f.lower, opts)
	must(t, err)
	must(t, unix.Mount("overlay", f.merged, "overlay", unix.MS_RDONLY, fmt.Sprintf("lowerdir=%s:%s", f.upper, f.lower)))
	walk, err := TreeDiff(context.Background(), f.merged, f.lower, opts)
	must(t, err)
	for _, d := range []*Diff{fast, walk} {
		if got := lines(d.Changes); !reflect.DeepEqual(got, []string{"A /new"}) {
			t.Fatalf("%s: changes %q, want only /new", d.Method, got)
		}
		nh := d.Changes[0].NotHashed
		if nh == nil || nh.Why != forensic.TooLarge || nh.String() != "size 10 exceeds the size limit 4" {
			t.Errorf("%s: /new not hashed %+v", d.Method, nh)
		}
		if d.Method == MethodWalk && !slices.Contains(d.Notes, "2 files on both sides exceed the size limit and have equal metadata: content not compared") {
			t.Errorf("%s: notes %q", d.Method, d.Notes)
		}
		for _, n := range d.Notes {
			if strings.Contains(n, "--") {
				t.Errorf("%s: note names a flag: %q", d.Method, n)
			}
		}
	}
}

// limitOpenFiles lowers the soft limit of open descriptors for the rest of the
// test, as `ulimit -n` would.
func limitOpenFiles(t testing.TB, n uint64) {
	t.Helper()
	var old unix.Rlimit
	must(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &old))
	lim := old
	lim.Cur = min(n, old.Max)
	must(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &lim))
	t.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &old) })
}

// TestDeepChain is a chain of directories deeper than the descriptor limit,
// made in a container under `ulimit -n 1024`: both methods give every entry,
// and agree.
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
	start := time.Now()
	must(t, deeptree.Make(f.merged+"/tmp", depth, zEvery))
	t.Logf("made the chain in %v", time.Since(start))
	limitOpenFiles(t, 1024)
	start = time.Now()
	changes := f.diffBoth(t)
	t.Logf("both diffs in %v", time.Since(start))
	// /tmp changed, then every directory and every z below it was added.
	want := 1 + depth + depth/zEvery
	if len(changes) != want {
		t.Fatalf("%d changes, want %d", len(changes), want)
	}
	deepest := "/tmp" + strings.Repeat("/d", depth)
	if c := changes[len(changes)-1]; c.Path != deepest && c.Kind != forensic.Added {
		t.Errorf("last change %s %d bytes, want the deepest directory", c.Kind, len(c.Path))
	}
	if c := find(t, changes, "/tmp"+strings.Repeat("/d", 19000)+"/z"); c.Digest != sha("19000") {
		t.Errorf("z at level 19000: digest %s", c.Digest)
	}
}
