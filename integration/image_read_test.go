package integration

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/containerd/v2/client"
	"github.com/opencontainers/go-digest"

	"github.com/ctrforensics/ctrforensics/internal/testdaemon"
	"github.com/ctrforensics/ctrforensics/internal/testimage"
)

// mergedUsrName is a merged-/usr image: /bin -> usr/bin, sh -> busybox.
const mergedUsrName = "docker.io/ctrforensics/merged-usr:1"

// mergedUsrStep is the created_by of the top layer: backslashes, quotes and
// a heredoc's newlines, as buildkit records them.
const mergedUsrStep = "RUN /bin/sh -c printf 'a\\tb\\n' > /x && echo \"C:\\\\dir\" && cat <<EOF\nline\nEOF"

// mergedUsrOnce imports, without unpacking it, a merged-/usr image whose top
// layer has links escaping the root and pointing at host files, and one that
// layer 2 replaces and deletes.
var mergedUsrOnce = sync.OnceValues(func() (client.Image, error) {
	ctx := h.daemon.Context(context.Background())
	img := &testimage.Image{Name: mergedUsrName, Layers: []testimage.Layer{
		{Files: []testimage.File{
			testimage.Symlink("/bin", "usr/bin"), testimage.Dir("/usr", 0o755), testimage.Dir("/usr/bin", 0o755),
			testimage.Reg("/usr/bin/busybox", 0o755, "BUSYBOX BYTES\n"), testimage.Symlink("/usr/bin/sh", "busybox"),
			testimage.Dir("/etc", 0o755), testimage.Reg("/etc/hostname", 0o644, "image-hostname\n"),
			{Path: "/etc/hard", Type: tar.TypeLink, Linkname: "/etc/hostname"},
			testimage.Dir("/opt", 0o755), testimage.Dir("/opt/app", 0o755), testimage.Reg("/opt/app/conf", 0o644, "v1\n"),
		}},
		{Compression: testimage.Zstd, Files: []testimage.File{
			testimage.Dir("/etc", 0o755),
			testimage.Symlink("/etc/up", "../../../../../etc/hostname"),
			testimage.Symlink("/etc/host-only", "/proc/self/status"),
		}},
		{Compression: testimage.None, CreatedBy: mergedUsrStep, Files: []testimage.File{
			testimage.Dir("/opt", 0o755), testimage.Dir("/opt/app", 0o755),
			{Path: "/opt/app/conf", Type: tar.TypeReg, Mode: 0o644, Content: []byte("v1\n"), ModTime: testimage.DefaultTime().Add(3600e9)},
			testimage.Whiteout("/etc/hostname"),
		}},
	}}
	return testdaemon.ImportImage(ctx, h.client, img, "overlayfs")
})

// TestImageCatFollowsLinksInsideTheImage reads /bin/sh of a merged-/usr
// image through two links, resolved in the image and named on stderr, never
// on the host; --no-follow prints a link's target.
func TestImageCatFollowsLinksInsideTheImage(t *testing.T) {
	if _, err := mergedUsrOnce(); err != nil {
		t.Fatal(err)
	}
	host := captureHost(t)
	r := h.cli(t, "image", "cat", mergedUsrName, "/bin/sh")
	if r.code != 0 || r.stdout != "BUSYBOX BYTES\n" {
		t.Fatalf("cat /bin/sh: exit %d, %q, %s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"followed symbolic link /bin -> usr/bin", "followed symbolic link /usr/bin/sh -> busybox"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("cat /bin/sh: stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if got := h.mustCLI(t, "image", "cat", "--no-follow", mergedUsrName, "/bin/sh"); got != "busybox" {
		t.Errorf("cat --no-follow /bin/sh = %q, want the link's target", got)
	}
	tests := []struct {
		args    []string
		code    int
		stdout  string
		stderrs []string
	}{
		// The hard link keeps the content; its other name is deleted above.
		{[]string{"/etc/hard"}, 0, "image-hostname\n", nil},
		{[]string{"/etc/up"}, 2, "", []string{"not found in the final filesystem: it resolves to /etc/hostname"}},
		{[]string{"--layer", "0", "/etc/hostname"}, 0, "image-hostname\n", nil},
		{[]string{"/etc/host-only"}, 2, "", []string{"resolves to /proc/self/status"}},
		{[]string{"--layer", "0", "/bin/sh"}, 2, "", []string{"not found in layer 0"}},
		{[]string{"--layer", "0", "/usr/bin/sh"}, 2, "", []string{"symbolic link to busybox, not followed", "--no-follow"}},
		{[]string{"/opt/app/conf"}, 0, "v1\n", nil},
	}
	for _, tt := range tests {
		r := h.cli(t, append(append([]string{"image", "cat"}, mergedUsrName), tt.args...)...)
		if r.code != tt.code || r.stdout != tt.stdout {
			t.Errorf("cat %q: exit %d, stdout %q; want %d, %q\n%s", tt.args, r.code, r.stdout, tt.code, tt.stdout, r.stderr)
		}
		for _, want := range tt.stderrs {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("cat %q: stderr lacks %q:\n%s", tt.args, want, r.stderr)
			}
		}
		if tt.code == 2 && strings.Count(strings.TrimSpace(r.stderr), "\n") > 2 {
			t.Errorf("cat %q: error is not one line:\n%s", tt.args, r.stderr)
		}
	}
	compareHost(t, "after image cat", host, captureHost(t))
}

// TestImageHistoryPrintsCommandsAsTheyWere checks that the history table
// keeps backslashes and quotes as they were and escapes only control
// characters.
func TestImageHistoryPrintsCommandsAsTheyWere(t *testing.T) {
	if _, err := mergedUsrOnce(); err != nil {
		t.Fatal(err)
	}
	out := h.mustCLI(t, "image", "history", "--no-trunc", mergedUsrName)
	want := `RUN /bin/sh -c printf 'a\tb\n' > /x && echo "C:\\dir" && cat <<EOF\nline\nEOF`
	if !strings.Contains(out, want) {
		t.Errorf("history table lacks %s:\n%s", want, out)
	}
}

// TestImageExportLayerAndGlobs writes one layer as stored, whiteout
// included and byte for byte its DiffID, and lists files with ** globs.
func TestImageExportLayerAndGlobs(t *testing.T) {
	img, err := mergedUsrOnce()
	if err != nil {
		t.Fatal(err)
	}
	diffIDs, err := img.RootFS(h.ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "layer2.tar")
	h.mustCLI(t, "image", "export", "--layer", "2", "-o", out, mergedUsrName)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := digest.FromBytes(data); got != diffIDs[2] {
		t.Errorf("export --layer 2 wrote %s, the layer's DiffID is %s", got, diffIDs[2])
	}
	if names := tarNames(t, out); !names["etc/.wh.hostname"] || !names["opt/app/conf"] {
		t.Errorf("export --layer 2: %v, want the whiteout and the file", names)
	}
	if r := h.cli(t, "image", "export", "--layer", "3", "-o", out+".x", mergedUsrName); r.code != 2 || !strings.Contains(r.stderr, "the image has 3 layers") {
		t.Errorf("export --layer 3: exit %d %s", r.code, r.stderr)
	}
	tests := []struct {
		glob      string
		want, not []string
	}{
		{"/usr/**", []string{"/usr/bin/busybox", "/usr/bin/sh"}, []string{"/etc/up", "/bin "}},
		{"/**/conf", []string{"/opt/app/conf"}, []string{"/usr/bin/busybox"}},
		{"/etc/*", []string{"/etc/up", "/etc/hard"}, []string{"/opt/app/conf"}},
	}
	for _, tt := range tests {
		got := h.mustCLI(t, "image", "files", "--path", tt.glob, mergedUsrName)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("--path %s lacks %s:\n%s", tt.glob, w, got)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(got, n) {
				t.Errorf("--path %s lists %s:\n%s", tt.glob, n, got)
			}
		}
	}
	if r := h.cli(t, "image", "files", "--path", "/usr/{a", mergedUsrName); r.code != 2 || !strings.Contains(r.stderr, "bad --path") {
		t.Errorf("bad glob: exit %d %s", r.code, r.stderr)
	}
}

// TestImageLayersChangedFields reads what each layer changed against the
// layers below: an mtime-only re-ship is marked, JSON carries the link
// target, the digests and the fields.
func TestImageLayersChangedFields(t *testing.T) {
	if _, err := mergedUsrOnce(); err != nil {
		t.Fatal(err)
	}
	table := h.mustCLI(t, "image", "layers", mergedUsrName)
	for _, want := range []string{"  C /opt/app/conf  (mtime only: same content re-shipped)", "  A /etc/up -> ../../../../../etc/hostname",
		"  D /etc/hostname"} {
		if !strings.Contains(table, want) {
			t.Errorf("image layers lacks %q:\n%s", want, table)
		}
	}
	rowsSeen := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(h.mustCLI(t, "image", "layers", "--format", "json", mergedUsrName)), "\n") {
		var row struct {
			Index   int `json:"index"`
			Changes []struct {
				Kind       string   `json:"kind"`
				Path       string   `json:"path"`
				LinkTarget string   `json:"link_target"`
				Digest     string   `json:"digest"`
				BaseDigest string   `json:"base_digest"`
				Fields     []string `json:"fields"`
				MtimeOnly  bool     `json:"mtime_only"`
			} `json:"changes"`
		}
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatal(err)
		}
		for _, c := range row.Changes {
			got := fmt.Sprintf("%d %s %s %s %s %s %v %v", row.Index, c.Kind, c.Path, c.LinkTarget, c.Digest, c.BaseDigest, c.Fields, c.MtimeOnly)
			switch c.Path {
			case "/opt/app/conf", "/etc/up", "/usr/bin/busybox":
				rowsSeen[c.Path] = got
			}
		}
	}
	conf := digest.FromString("v1\n").String()
	want := map[string]string{
		"/opt/app/conf":    fmt.Sprintf("2 C /opt/app/conf  %s %s [mtime] true", conf, conf),
		"/etc/up":          "1 A /etc/up ../../../../../etc/hostname   [] false",
		"/usr/bin/busybox": fmt.Sprintf("0 A /usr/bin/busybox  %s  [] false", digest.FromString("BUSYBOX BYTES\n")),
	}
	for p, w := range want {
		if rowsSeen[p] != w {
			t.Errorf("JSON change of %s:\n got %s\nwant %s", p, rowsSeen[p], w)
		}
	}
}
