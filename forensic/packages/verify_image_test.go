package packages

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ctrforensics/ctrforensics/forensic/imagefs"
)

// tarLayer is an uncompressed layer of the given headers; a regular file's
// content is in contents under its name.
func tarLayer(t *testing.T, hdrs []*tar.Header, contents map[string]string) imagefs.Layer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range hdrs {
		c := contents[h.Name]
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(c))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	blob := b.Bytes()
	return imagefs.Layer{Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil }}
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestVerifyImage: a later layer that replaces a package's binary, deletes
// another and edits a conffile is seen in the final filesystem; a file a
// later layer rewrote together with its record (a package upgrade) is ok,
// and so is a hard link to an intact file.
func TestVerifyImage(t *testing.T) {
	dir := func(n string) *tar.Header { return &tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: 0o755} }
	reg := func(n string, mode int64) *tar.Header { return &tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: mode} }
	status := "Package: tools\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0\n" +
		"Conffiles:\n /etc/tools.conf " + md5hex("conf\n") + "\n\n" +
		"Package: upgraded\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.0\n\n"
	base := tarLayer(t, []*tar.Header{{Name: "bin", Typeflag: tar.TypeSymlink, Linkname: "usr/bin"},
		dir("etc/"), reg("etc/tools.conf", 0o644), dir("usr/"), dir("usr/bin/"),
		reg("usr/bin/tool", 0o755), reg("usr/bin/gone", 0o755), reg("usr/bin/kept", 0o755),
		{Name: "usr/bin/kept-link", Typeflag: tar.TypeLink, Linkname: "usr/bin/kept", Mode: 0o755},
		reg("usr/bin/up", 0o755),
		dir("var/"), dir("var/lib/"), dir("var/lib/dpkg/"), dir("var/lib/dpkg/info/"), reg("var/lib/dpkg/status", 0o644),
		reg("var/lib/dpkg/info/tools.md5sums", 0o644), reg("var/lib/dpkg/info/upgraded.md5sums", 0o644)},
		map[string]string{"etc/tools.conf": "conf\n", "usr/bin/tool": "tool\n", "usr/bin/gone": "gone\n",
			"usr/bin/kept": "kept\n", "usr/bin/up": "up 1\n", "var/lib/dpkg/status": status,
			"var/lib/dpkg/info/tools.md5sums": md5hex("tool\n") + "  usr/bin/tool\n" + md5hex("gone\n") + "  usr/bin/gone\n" +
				md5hex("kept\n") + "  usr/bin/kept\n" + md5hex("kept\n") + "  usr/bin/kept-link\n" +
				// Merged /usr: bin/kept is usr/bin/kept, checked once.
				md5hex("kept\n") + "  bin/kept\n",
			"var/lib/dpkg/info/upgraded.md5sums": md5hex("up 1\n") + "  usr/bin/up\n"})
	top := tarLayer(t, []*tar.Header{dir("etc/"), reg("etc/tools.conf", 0o644), dir("usr/"), dir("usr/bin/"),
		reg("usr/bin/tool", 0o755), reg("usr/bin/.wh.gone", 0), reg("usr/bin/up", 0o755),
		dir("var/"), dir("var/lib/"), dir("var/lib/dpkg/"), dir("var/lib/dpkg/info/"), reg("var/lib/dpkg/info/upgraded.md5sums", 0o644)},
		map[string]string{"etc/tools.conf": "edited\n", "usr/bin/tool": "xmrig\n", "usr/bin/up": "up 2\n",
			"var/lib/dpkg/info/upgraded.md5sums": md5hex("up 2\n") + "  usr/bin/up\n"})
	res, err := VerifyImage(context.Background(), []imagefs.Layer{base, top}, Options{}, imagefs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range res {
		got[r.Path] = string(r.Status) + " " + strings.Join(r.Changed, ",") + " " + r.Package
	}
	want := map[string]string{
		"/etc/tools.conf":    "config-modified content tools",
		"/usr/bin/tool":      "modified content tools",
		"/usr/bin/gone":      "missing  tools",
		"/usr/bin/kept":      "ok  tools",
		"/usr/bin/kept-link": "ok  tools",
		"/usr/bin/up":        "ok  upgraded",
	}
	if len(res) != len(want) {
		t.Errorf("results %+v, want %v", res, want)
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: got %q, want %q", p, got[p], w)
		}
	}
	for _, r := range res {
		if r.Path == "/usr/bin/tool" && (r.Expected != md5hex("tool\n") || r.Actual != md5hex("xmrig\n")) {
			t.Errorf("digests of /usr/bin/tool: %+v", r)
		}
	}
}

// TestVerifyImageMatchesDpkgVerify puts a layer over a debootstrap'ed Debian
// root that replaces a binary, edits a conffile and deletes a package's
// file, and compares VerifyImage with dpkg --verify --root on the image's
// final filesystem extracted: the same files flagged.
func TestVerifyImageMatchesDpkgVerify(t *testing.T) {
	tarPath := os.Getenv("CTRFORENSICS_DEBIAN_TAR")
	if tarPath == "" {
		t.Skip("CTRFORENSICS_DEBIAN_TAR unset (a debootstrap'ed Debian root as a tar)")
	}
	base := imagefs.Layer{Open: func(context.Context) (io.ReadCloser, error) { return os.Open(tarPath) }}
	dir := func(n string) *tar.Header { return &tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: 0o755} }
	reg := func(n string, mode int64) *tar.Header { return &tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: mode} }
	top := tarLayer(t, []*tar.Header{dir("etc/"), reg("etc/issue.net", 0o644), dir("usr/"), dir("usr/bin/"),
		reg("usr/bin/tail", 0o755), reg("usr/bin/.wh.find", 0)},
		map[string]string{"etc/issue.net": "Owned GNU/Linux\n", "usr/bin/tail": "#!/bin/sh\nexec /tmp/.x/xmrig\n"})
	layers := []imagefs.Layer{base, top}
	res, err := VerifyImage(context.Background(), layers, Options{}, imagefs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ours []string
	n := 0
	seen := map[string]bool{}
	for _, r := range res {
		if seen[r.Path] {
			t.Errorf("%s checked twice", r.Path)
		}
		seen[r.Path] = true
		if r.Status == OK {
			n++
			continue
		}
		p := r.Path
		if r.Recorded != "" {
			p = r.Recorded
		}
		ours = append(ours, p+" "+string(r.Status))
	}
	slices.Sort(ours)
	want := []string{"/etc/issue.net config-modified", "/usr/bin/find missing", "/usr/bin/tail modified"}
	if !slices.Equal(ours, want) {
		t.Errorf("flagged %v, want %v", ours, want)
	}
	if n < 1000 {
		t.Errorf("only %d files ok: the image's packages own thousands", n)
	}

	root := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(imagefs.Export(context.Background(), layers, pw, imagefs.Options{})) }()
	x := exec.Command("tar", "--numeric-owner", "-C", root, "-xf", "-")
	x.Stdin = pr
	if out, err := x.CombinedOutput(); err != nil {
		t.Fatalf("extract: %v\n%s", err, out)
	}
	out, _ := exec.Command("dpkg", "--root="+root, "--verify").Output()
	var dpkg []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		st := "modified"
		switch {
		case f[0] == "missing":
			st = "missing"
		case len(f) == 3 && f[1] == "c":
			st = "config-modified"
		}
		dpkg = append(dpkg, f[len(f)-1]+" "+st)
	}
	slices.Sort(dpkg)
	if !slices.Equal(ours, dpkg) {
		t.Errorf("ours %v, dpkg --verify %v", ours, dpkg)
	}
}
