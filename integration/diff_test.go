package integration

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/internal/testimage"
)

// change is one line of `diff --format json`, as a consumer decodes it.
type change struct {
	Kind           string            `json:"kind"`
	Path           string            `json:"path"`
	PathBase64     string            `json:"path_base64"`
	Type           string            `json:"type"`
	Mode           string            `json:"mode"`
	UID            uint32            `json:"uid"`
	GID            uint32            `json:"gid"`
	Size           int64             `json:"size"`
	Nlink          uint64            `json:"nlink"`
	Inode          uint64            `json:"inode"`
	Mtime          string            `json:"mtime"`
	Atime          string            `json:"atime"`
	Ctime          string            `json:"ctime"`
	Btime          *string           `json:"btime"`
	LinkTarget     *string           `json:"link_target"`
	Xattrs         map[string]string `json:"xattrs"`
	DevMajor       *uint32           `json:"dev_major"`
	Digest         *string           `json:"digest"`
	BaseDigest     *string           `json:"base_digest"`
	ContentChanged *bool             `json:"content_changed"`
	Changed        []string          `json:"changed"`
	NotHashed      string            `json:"not_hashed"`
	Runtime        bool              `json:"runtime"`
	HardLinkTo     *string           `json:"hard_link_to"`
	LostWith       *string           `json:"lost_with"`
	CopyUpOnly     bool              `json:"copy_up_only"`
	Source         string            `json:"source"`
	Mount          string            `json:"mount"`
	Base           *struct {
		Mode  string `json:"mode"`
		Size  int64  `json:"size"`
		Mtime string `json:"mtime"`
	} `json:"base"`
}

// rawPath returns the exact bytes of the path.
func (c change) rawPath(t testing.TB) string {
	if c.PathBase64 == "" {
		return c.Path
	}
	b, err := base64.StdEncoding.DecodeString(c.PathBase64)
	if err != nil {
		t.Fatalf("path_base64 of %q: %v", c.Path, err)
	}
	return string(b)
}

func decodeChanges(t testing.TB, out string) []change {
	t.Helper()
	var changes []change
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var c change
		err := dec.Decode(&c)
		if err == io.EOF {
			return changes
		}
		if err != nil {
			t.Fatalf("decode diff JSON: %v\n%s", err, out)
		}
		changes = append(changes, c)
	}
}

// comparable keeps what both diff methods must agree on: everything but the
// inode numbers, which differ between the upper directory and a merged mount.
func comparable(changes []change) []string {
	out := make([]string, len(changes))
	for i, c := range changes {
		c.Inode = 0
		b, _ := json.Marshal(c)
		out[i] = string(b)
	}
	return out
}

func find(t testing.TB, changes []change, p string) change {
	t.Helper()
	for _, c := range changes {
		if c.rawPath(t) == p {
			return c
		}
	}
	t.Fatalf("no change for %q", p)
	return change{}
}

func sha(b []byte) string { return digest.FromBytes(b).String() }

// imageContent returns a file's content in the web image.
func imageContent(t testing.TB, p string) []byte {
	t.Helper()
	img, err := testimage.WebImage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := len(img.Layers) - 1; i >= 0; i-- {
		for _, f := range img.Layers[i].Files {
			if f.Path == p {
				return f.Content
			}
		}
	}
	t.Fatalf("%s is not in the web image", p)
	return nil
}

func str(s *string) string {
	if s == nil {
		return "<null>"
	}
	return *s
}

func boolp(b *bool) string {
	if b == nil {
		return "<null>"
	}
	return fmt.Sprint(*b)
}

// scenario is an attack played in a fresh container and what diff must report.
type scenario struct {
	name   string
	script string
	// want are the table lines, runtime paths left out.
	want  []string
	check func(t *testing.T, changes []change)
}

func scenarios(t *testing.T) []scenario {
	canary := hostCanary(t)
	return []scenario{
		{
			name: "article attack",
			script: `echo '<h1>hacked by x</h1>' > /var/www/html/index.html
printf '%s\n' "<?php eval(\$_GET['cmd']); ?>" > /var/www/html/shell.php`,
			want: []string{"C /var", "C /var/www", "C /var/www/html", "C /var/www/html/index.html", "A /var/www/html/shell.php"},
			check: func(t *testing.T, changes []change) {
				idx := find(t, changes, "/var/www/html/index.html")
				if str(idx.Digest) != sha([]byte("<h1>hacked by x</h1>\n")) ||
					str(idx.BaseDigest) != sha(imageContent(t, "/var/www/html/index.html")) ||
					boolp(idx.ContentChanged) != "true" {
					t.Errorf("index.html: digest %s base %s content_changed %s", str(idx.Digest), str(idx.BaseDigest), boolp(idx.ContentChanged))
				}
				shell := find(t, changes, "/var/www/html/shell.php")
				if str(shell.Digest) != sha([]byte("<?php eval($_GET['cmd']); ?>\n")) || shell.Type != "file" {
					t.Errorf("shell.php: %+v", shell)
				}
				if html := find(t, changes, "/var/www/html"); len(html.Changed) != 1 || html.Changed[0] != "mtime" {
					t.Errorf("/var/www/html gained a file, so its mtime changed; got %v", html.Changed)
				}
				if www := find(t, changes, "/var/www"); len(www.Changed) != 0 {
					t.Errorf("/var/www is listed only as a parent; got changed %v", www.Changed)
				}
			},
		},
		{
			name:   "delete a file",
			script: `rm /etc/app/config.ini`,
			want:   []string{"C /etc", "C /etc/app", "D /etc/app/config.ini"},
			check: func(t *testing.T, changes []change) {
				d := find(t, changes, "/etc/app/config.ini")
				if str(d.BaseDigest) != sha(imageContent(t, "/etc/app/config.ini")) || d.Digest != nil || d.Mode != "0640" {
					t.Errorf("deleted file: base %s digest %s mode %s", str(d.BaseDigest), str(d.Digest), d.Mode)
				}
			},
		},
		{
			name:   "delete a directory and recreate it",
			script: `rm -rf /opt/data && mkdir /opt/data && echo fresh > /opt/data/new.txt`,
			want: []string{"C /opt", "C /opt/data", "D /opt/data/customers.csv", "A /opt/data/new.txt",
				"D /opt/data/notes.txt", "D /opt/data/report.txt"},
		},
		{
			name:   "delete a directory",
			script: `rm -rf /opt/data`,
			want:   []string{"C /opt", "D /opt/data"},
			check:  checkLost("/opt/data", "dir"),
		},
		{
			name:   "a file replaces a directory",
			script: `rm -rf /opt/data && echo now-a-file > /opt/data`,
			want:   []string{"C /opt", "C /opt/data"},
			check:  checkLost("/opt/data", "file"),
		},
		{
			name:   "a FIFO replaces a directory",
			script: `rm -rf /opt/data && mkfifo /opt/data`,
			want:   []string{"C /opt", "C /opt/data"},
			check:  checkLost("/opt/data", "fifo"),
		},
		{
			name:   "a symlink replaces a file",
			script: `rm /etc/app/config.ini && ln -s /etc/shadow /etc/app/config.ini`,
			want:   []string{"C /etc", "C /etc/app", "C /etc/app/config.ini"},
			check: func(t *testing.T, changes []change) {
				c := find(t, changes, "/etc/app/config.ini")
				if c.Type != "symlink" || str(c.BaseDigest) != sha(imageContent(t, "/etc/app/config.ini")) || c.Digest != nil {
					t.Errorf("symlink over a file: type %s digest %s base_digest %s (want the replaced content's)",
						c.Type, str(c.Digest), str(c.BaseDigest))
				}
			},
		},
		{
			name:   "a file copied up without a change",
			script: `touch -r /var/www/html/about.html /var/www/html/about.html`,
			want:   nil,
			check: func(t *testing.T, changes []change) {
				c := find(t, changes, "/var/www/html/about.html")
				if !c.CopyUpOnly || len(c.Changed) != 0 || boolp(c.ContentChanged) != "false" || str(c.Digest) != str(c.BaseDigest) {
					t.Errorf("copy-up: copy_up_only %v changed %v content_changed %s", c.CopyUpOnly, c.Changed, boolp(c.ContentChanged))
				}
			},
		},
		{
			name:   "chmod only",
			script: `chmod 4777 /var/www/html/app.php`,
			want:   []string{"C /var", "C /var/www", "C /var/www/html", "C /var/www/html/app.php"},
			check: func(t *testing.T, changes []change) {
				c := find(t, changes, "/var/www/html/app.php")
				if boolp(c.ContentChanged) != "false" || !reflect.DeepEqual(c.Changed, []string{"mode"}) ||
					c.Mode != "4777" || c.Base.Mode != "0644" || str(c.Digest) != str(c.BaseDigest) {
					t.Errorf("chmod: %+v", c)
				}
			},
		},
		{
			name:   "touch only",
			script: `touch /var/www/html/about.html`,
			want:   []string{"C /var", "C /var/www", "C /var/www/html", "C /var/www/html/about.html"},
			check: func(t *testing.T, changes []change) {
				c := find(t, changes, "/var/www/html/about.html")
				if boolp(c.ContentChanged) != "false" || !reflect.DeepEqual(c.Changed, []string{"mtime"}) {
					t.Errorf("touch: content_changed %s changed %v", boolp(c.ContentChanged), c.Changed)
				}
			},
		},
		{
			name: "edit with size and mtime put back",
			script: `printf X | dd of=/var/www/html/index.html bs=1 seek=5 count=1 conv=notrunc 2>/dev/null
touch -r /var/www/html/about.html /var/www/html/index.html`,
			want: []string{"C /var", "C /var/www", "C /var/www/html", "C /var/www/html/index.html"},
			check: func(t *testing.T, changes []change) {
				c := find(t, changes, "/var/www/html/index.html")
				if boolp(c.ContentChanged) != "true" || !reflect.DeepEqual(c.Changed, []string{"content"}) ||
					c.Mtime != c.Base.Mtime || c.Size != c.Base.Size {
					t.Errorf("hidden edit: content_changed %s changed %v mtime %s/%s", boolp(c.ContentChanged), c.Changed, c.Mtime, c.Base.Mtime)
				}
			},
		},
		{
			name:   "hard link",
			script: `ln /etc/passwd /tmp/pw`,
			want:   []string{"C /etc", "C /etc/passwd", "C /tmp", "A /tmp/pw"},
			check: func(t *testing.T, changes []change) {
				if pw := find(t, changes, "/tmp/pw"); str(pw.HardLinkTo) != "/etc/passwd" || pw.Nlink != 2 {
					t.Errorf("hard link: hard_link_to %s nlink %d", str(pw.HardLinkTo), pw.Nlink)
				}
				if p := find(t, changes, "/etc/passwd"); !reflect.DeepEqual(p.Changed, []string{"nlink"}) {
					t.Errorf("/etc/passwd: changed %v, want nlink only", p.Changed)
				}
			},
		},
		{
			name:   "symlinks pointing out of the container",
			script: fmt.Sprintf(`ln -s /etc/shadow /var/www/html/s.txt; ln -s %s /tmp/canary`, canary.path),
			want:   []string{"C /tmp", "A /tmp/canary", "C /var", "C /var/www", "C /var/www/html", "A /var/www/html/s.txt"},
			check: func(t *testing.T, changes []change) {
				for p, target := range map[string]string{"/var/www/html/s.txt": "/etc/shadow", "/tmp/canary": canary.path} {
					c := find(t, changes, p)
					if c.Type != "symlink" || str(c.LinkTarget) != target || c.Digest != nil {
						t.Errorf("%s: type %s target %s digest %s", p, c.Type, str(c.LinkTarget), str(c.Digest))
					}
				}
				canary.assertUntouched(t)
			},
		},
		{
			name:   "fifo and device node",
			script: `mkfifo /tmp/pipe && mknod /tmp/null c 1 3`,
			want:   []string{"C /tmp", "A /tmp/null", "A /tmp/pipe"},
			check: func(t *testing.T, changes []change) {
				if c := find(t, changes, "/tmp/pipe"); c.Type != "fifo" || c.Digest != nil {
					t.Errorf("fifo: %+v", c)
				}
				if c := find(t, changes, "/tmp/null"); c.Type != "char" || c.DevMajor == nil || *c.DevMajor != 1 {
					t.Errorf("device: %+v", c)
				}
			},
		},
		{
			name:   "names with a newline and invalid UTF-8",
			script: `cd /tmp && touch "$(printf 'evil\nname')" "$(printf 'bad\377name')" 'back\slash'`,
			want:   []string{"C /tmp", `A /tmp/back\\slash`, `A /tmp/bad\xffname`, `A /tmp/evil\nname`},
			check: func(t *testing.T, changes []change) {
				bad := find(t, changes, "/tmp/bad\xffname")
				if bad.PathBase64 == "" || bad.Path != `/tmp/bad\xffname` {
					t.Errorf("invalid UTF-8 name: path %q path_base64 %q", bad.Path, bad.PathBase64)
				}
				if nl := find(t, changes, "/tmp/evil\nname"); nl.PathBase64 != "" {
					t.Errorf("a valid UTF-8 name needs no base64: %+v", nl)
				}
			},
		},
		{
			name:   "large sparse file",
			script: `truncate -s 1G /tmp/sparse`,
			want:   []string{"C /tmp", "A /tmp/sparse"},
			check: func(t *testing.T, changes []change) {
				c := find(t, changes, "/tmp/sparse")
				if c.Size != 1<<30 || str(c.Digest) != zeroDigest(1<<30) || c.NotHashed != "" {
					t.Errorf("sparse: size %d digest %s not_hashed %q", c.Size, str(c.Digest), c.NotHashed)
				}
			},
		},
		{
			name:   "directory chain 2000 deep",
			script: `cd /tmp && i=0 && while [ $i -lt 2000 ]; do mkdir d && cd d || exit 1; i=$((i+1)); done && echo bottom > leaf`,
			want:   deepChain(2000),
			check: func(t *testing.T, changes []change) {
				leaf := changes[len(changes)-1]
				if !strings.HasSuffix(leaf.Path, "/leaf") || str(leaf.Digest) != sha([]byte("bottom\n")) || len(leaf.Path) < 4000 {
					t.Errorf("leaf: %d bytes of path, digest %s", len(leaf.Path), str(leaf.Digest))
				}
			},
		},
	}
}

// checkLost checks that the directory dir of the web image, now of type typ,
// carries every entry it held as lost with it, with its type and the digest
// of its content.
func checkLost(dir, typ string) func(t *testing.T, changes []change) {
	return func(t *testing.T, changes []change) {
		if d := find(t, changes, dir); d.Type != typ || d.LostWith != nil {
			t.Errorf("%s: type %s lost_with %s", dir, d.Type, str(d.LostWith))
		}
		var lost []string
		for _, c := range changes {
			if c.LostWith == nil {
				continue
			}
			lost = append(lost, c.Path)
			if c.Kind != "D" || *c.LostWith != dir || c.Type != "file" || str(c.BaseDigest) != sha(imageContent(t, c.Path)) {
				t.Errorf("%s: kind %s type %s lost_with %s base_digest %s", c.Path, c.Kind, c.Type, str(c.LostWith), str(c.BaseDigest))
			}
		}
		want := []string{dir + "/customers.csv", dir + "/notes.txt", dir + "/report.txt"}
		if !reflect.DeepEqual(lost, want) {
			t.Errorf("lost with %s: %q, want %q", dir, lost, want)
		}
	}
}

// tableLines splits the table output into its lines.
func tableLines(out string) []string {
	if out == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n")
}

// seenByWalk leaves out the copy-ups without a difference, which only the
// overlay's upper directory shows.
func seenByWalk(changes []change) []change {
	return slices.DeleteFunc(slices.Clone(changes), func(c change) bool { return c.CopyUpOnly })
}

func deepChain(n int) []string {
	want := []string{"C /tmp"}
	p := "/tmp"
	for i := 0; i < n; i++ {
		p += "/d"
		want = append(want, "A "+p)
	}
	return append(want, "A "+p+"/leaf")
}

func zeroDigest(size int64) string {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for n := int64(0); n < size; n += int64(len(buf)) {
		h.Write(buf)
	}
	return digest.NewDigest(digest.SHA256, h).String()
}

// TestDiffScenarios plays each attack in a fresh container and checks the exact
// table by both methods, the digests and the flags, and that the overlay fast
// path and the double walk over read-only mounts report the same JSON (but for
// copy-ups without a difference, which only the fast path can see).
func TestDiffScenarios(t *testing.T) {
	for i, sc := range scenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			c := h.runContainer(t, fmt.Sprintf("scenario-%d", i), "overlayfs")
			h.attack(t, c, sc.script)
			for _, method := range []string{"overlay", "walk"} {
				table := h.mustCLI(t, "diff", "--method", method, c.id)
				if got := tableLines(table); !reflect.DeepEqual(got, sc.want) {
					t.Fatalf("diff table (%s) differs:\n%s", method, firstDifferences(got, sc.want))
				}
			}
			fast := decodeChanges(t, h.mustCLI(t, "diff", "--format", "json", "--method", "overlay", c.id))
			walk := decodeChanges(t, h.mustCLI(t, "diff", "--format", "json", "--method", "walk", c.id))
			if got, want := comparable(walk), comparable(seenByWalk(fast)); !reflect.DeepEqual(got, want) {
				t.Fatalf("double walk (got) and fast path (want) differ:\n%s", firstDifferences(got, want))
			}
			if sc.check != nil {
				sc.check(t, fast)
			}
		})
	}
}

// TestDiffNativeSnapshotter runs the article's attack on the native
// snapshotter, where only the double walk applies, and expects what overlayfs
// reports for the same attack.
func TestDiffNativeSnapshotter(t *testing.T) {
	sc := scenarios(t)[0]
	results := map[string][]change{}
	for _, sn := range []string{"overlayfs", "native"} {
		c := h.runContainer(t, "native-cmp-"+sn, sn)
		h.attack(t, c, sc.script)
		r := h.cli(t, "diff", "--format", "json", c.id)
		if r.code != 0 {
			t.Fatalf("%s: exit %d: %s", sn, r.code, r.stderr)
		}
		if sn == "native" && !strings.Contains(r.stderr, "compared the whole trees") {
			t.Errorf("native diff does not say it used the double walk: %q", r.stderr)
		}
		results[sn] = decodeChanges(t, r.stdout)
	}
	// Directory mtimes are not compared on native, which does not keep them.
	key := func(cs []change) []string {
		var out []string
		for _, c := range cs {
			fields := c.Changed
			if c.Type == "dir" {
				fields = slices.DeleteFunc(slices.Clone(fields), func(f string) bool { return f == "mtime" })
			}
			out = append(out, fmt.Sprintf("%s %s %s %v %s %s %v", c.Kind, c.Path, c.Type, fields, str(c.Digest), str(c.BaseDigest), c.Runtime))
		}
		return out
	}
	if got, want := key(results["native"]), key(results["overlayfs"]); !reflect.DeepEqual(got, want) {
		t.Fatalf("native (got) and overlayfs (want) differ:\n%s", firstDifferences(got, want))
	}
}

// TestDiffTaskStates diffs one attacked container running, paused, stopped and
// with its task deleted: the answer must not change, and the task state must
// be left as it was.
func TestDiffTaskStates(t *testing.T) {
	ctx := h.ctx(t)
	c := h.runContainer(t, "task-states", "overlayfs")
	h.attack(t, c, scenarios(t)[0].script)
	want := h.mustCLI(t, "diff", c.id)
	check := func(state string) {
		t.Helper()
		if got := h.mustCLI(t, "diff", c.id); got != want {
			t.Errorf("%s: diff\n%s\nwant\n%s", state, got, want)
		}
		st, err := c.task.Status(ctx)
		if state != "no task" && (err != nil || string(st.Status) != state) {
			t.Errorf("task is %v (%v) after diff, want %s", st.Status, err, state)
		}
	}
	check("running")
	if err := c.task.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	check("paused")
	if err := c.task.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.task.Kill(ctx, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, c)
	check("stopped")
	if _, err := c.task.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	check("no task")
}

func waitStopped(t *testing.T, c *container) {
	ctx := h.ctx(t)
	for i := 0; i < 100; i++ {
		st, err := c.task.Status(ctx)
		if err == nil && st.Status == "stopped" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("task did not stop")
}

// TestDiffMaxHashBytes checks a file over the limit is reported as not hashed,
// with the reason, in JSON and on stderr.
func TestDiffMaxHashBytes(t *testing.T) {
	c := h.runContainer(t, "max-hash", "overlayfs")
	h.attack(t, c, `truncate -s 600M /tmp/big && echo small > /tmp/small`)
	r := h.cli(t, "diff", "--format", "json", "--max-hash-bytes", "512MiB", c.id)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	changes := decodeChanges(t, r.stdout)
	big := find(t, changes, "/tmp/big")
	if big.Digest != nil || !strings.Contains(big.NotHashed, "exceeds the size limit") {
		t.Errorf("big: digest %s not_hashed %q", str(big.Digest), big.NotHashed)
	}
	if small := find(t, changes, "/tmp/small"); small.Digest == nil {
		t.Error("small file was not hashed")
	}
	if !strings.Contains(r.stderr, "/tmp/big not hashed: size 629145600 exceeds the size limit") {
		t.Errorf("stderr does not report the file: %q", r.stderr)
	}
}

// TestDiffRuntimePaths checks that mount points runc creates are flagged and
// hidden from the table unless --all.
func TestDiffRuntimePaths(t *testing.T) {
	c := h.runContainer(t, "runtime-paths", "overlayfs")
	changes := decodeChanges(t, h.mustCLI(t, "diff", "--format", "json", c.id))
	run := find(t, changes, "/run")
	if run.Kind != "A" || !run.Runtime {
		t.Fatalf("/run is created by runc (the image has none): %+v", run)
	}
	if table := h.mustCLI(t, "diff", c.id); table != "" {
		t.Errorf("an untouched container shows changes:\n%s", table)
	}
	if all := h.mustCLI(t, "diff", "--all", c.id); !strings.Contains(all, "A /run\n") {
		t.Errorf("--all does not show /run:\n%s", all)
	}
}

// canary is a file on the host that no command may read: a symlink in a
// container points at it.
type canary struct {
	path  string
	atime time.Time
}

func hostCanary(t *testing.T) *canary {
	dir := t.TempDir()
	p := filepath.Join(dir, "host-secret")
	if err := os.WriteFile(p, []byte("HOST SECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// An atime older than the mtime: any read would update it under relatime.
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(p, old, time.Now()); err != nil {
		t.Fatal(err)
	}
	return &canary{path: p, atime: old}
}

func (c *canary) assertUntouched(t *testing.T) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(c.path, &st); err != nil {
		t.Fatal(err)
	}
	if got := time.Unix(st.Atim.Unix()); !got.Equal(c.atime) {
		t.Errorf("the host file %s was read through a symlink: atime %v", c.path, got)
	}
}

// firstDifferences describes where two line lists differ, briefly: deep paths
// make lines thousands of bytes long.
func firstDifferences(got, want []string) string {
	clip := func(s string) string {
		if len(s) > 400 {
			return s[:200] + " ... " + s[len(s)-200:]
		}
		return s
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d lines, want %d\n", len(got), len(want))
	shown := 0
	for i := 0; i < max(len(got), len(want)) && shown < 5; i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			fmt.Fprintf(&b, "line %d:\n  got  %s\n  want %s\n", i, clip(g), clip(w))
			shown++
		}
	}
	return b.String()
}

// TestFallbackOnOverlayRedirect plants an overlay redirect attribute in a
// container's upper directory (pointing at the directory's own path, so the
// merged tree is unchanged): the fast path must not interpret it, the default
// method must fall back to the double walk and say so, and the answer must be
// the same.
func TestFallbackOnOverlayRedirect(t *testing.T) {
	sc := scenarios(t)[0]
	c := h.runContainer(t, "redirect", "overlayfs")
	h.attack(t, c, sc.script)
	dir := filepath.Join(h.upperDir(t, c), "var/www")
	if err := unix.Lsetxattr(dir, "trusted.overlay.redirect", []byte("/var/www"), 0); err != nil {
		t.Fatal(err)
	}
	r := h.cli(t, "diff", c.id)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n"); !reflect.DeepEqual(got, sc.want) {
		t.Errorf("diff table differs:\n%s", firstDifferences(got, sc.want))
	}
	if !strings.Contains(r.stderr, "note: compared the whole trees: overlay fast path not usable: overlay redirect attribute at /var/www") {
		t.Errorf("the fallback is not reported: %q", r.stderr)
	}
	if r := h.cli(t, "diff", "--method", "overlay", c.id); r.code != 2 || !strings.Contains(r.stderr, "redirect") {
		t.Errorf("--method overlay: exit %d, stderr %q; want exit 2 naming the redirect", r.code, r.stderr)
	}
}
