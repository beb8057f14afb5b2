package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ctrforensics/ctrforensics/forensic/attest"
	"github.com/ctrforensics/ctrforensics/forensic/bundle"
	"github.com/ctrforensics/ctrforensics/internal/testdaemon"
	"github.com/ctrforensics/ctrforensics/internal/testimage"
)

// articleAttack is the article's attack plus a deletion, so the layer holds a
// whiteout.
const articleAttack = `echo '<h1>hacked by x</h1>' > /var/www/html/index.html
printf '%s\n' "<?php eval(\$_GET['cmd']); ?>" > /var/www/html/shell.php
rm /etc/app/config.ini`

// layout is an OCI image layout read back from a directory or a tar.
type layout struct {
	blobs    map[string][]byte // by path inside the layout
	index    ocispec.Index
	manifest ocispec.Manifest
	config   ocispec.Image
	rawCfg   []byte
}

func readLayout(t *testing.T, p string) *layout {
	t.Helper()
	l := &layout{blobs: map[string][]byte{}}
	if strings.HasSuffix(p, ".tar") {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for name, e := range tarEntries(t, b) {
			if e.hdr.Typeflag == tar.TypeReg {
				l.blobs[name] = []byte(e.content)
			}
		}
	} else {
		err := filepath.WalkDir(p, func(f string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(p, f)
			b, err := os.ReadFile(f)
			l.blobs[rel] = b
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	decode := func(name string, v any) []byte {
		b, ok := l.blobs[name]
		if !ok {
			t.Fatalf("layout %s lacks %s", p, name)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return b
	}
	decode("index.json", &l.index)
	if len(l.index.Manifests) != 1 {
		t.Fatalf("index.json lists %d manifests, want 1", len(l.index.Manifests))
	}
	decode(blobName(l.index.Manifests[0].Digest), &l.manifest)
	l.rawCfg = decode(blobName(l.manifest.Config.Digest), &l.config)
	for name, b := range l.blobs {
		if strings.HasPrefix(name, "blobs/sha256/") && digest.FromBytes(b).Encoded() != filepath.Base(name) {
			t.Errorf("blob %s does not hash to its name", name)
		}
	}
	return l
}

func blobName(d digest.Digest) string { return "blobs/sha256/" + d.Encoded() }

// newLayer returns the uncompressed last layer.
func (l *layout) newLayer(t *testing.T) []byte {
	t.Helper()
	desc := l.manifest.Layers[len(l.manifest.Layers)-1]
	zr, err := gzip.NewReader(bytes.NewReader(l.blobs[blobName(desc.Digest)]))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if got := digest.FromBytes(raw); got != l.config.RootFS.DiffIDs[len(l.config.RootFS.DiffIDs)-1] {
		t.Errorf("new layer's DiffID is %s, the config says %s", got, l.config.RootFS.DiffIDs)
	}
	return raw
}

// ctrCLI runs containerd's own ctr against the test daemon.
func ctrCLI(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("ctr", append([]string{"--address", h.daemon.Address, "-n", h.daemon.Namespace}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// runImported unpacks the image name and runs a container of it, removed at
// the end of the test together with the image.
func runImported(t *testing.T, id, name string) client.Task {
	t.Helper()
	ctx := h.ctx(t)
	img, err := h.client.GetImage(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := img.Unpack(ctx, "overlayfs"); err != nil {
		t.Fatal(err)
	}
	ctr, task, err := testdaemon.RunContainer(ctx, h.client, id, img, "overlayfs", "/bin/sh", "-c", "sleep 100000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := testdaemon.RemoveContainer(h.ctx(t), ctr); err != nil {
			t.Errorf("remove %s: %v", id, err)
		}
		if err := h.client.ImageService().Delete(h.ctx(t), name); err != nil && !errdefs.IsNotFound(err) {
			t.Errorf("remove image %s: %v", name, err)
		}
	})
	return task
}

func execOut(t *testing.T, task client.Task, script string) string {
	t.Helper()
	out, stderr, err := testdaemon.Exec(h.ctx(t), task, script)
	if err != nil {
		t.Fatalf("%s: %v (%s)", script, err, stderr)
	}
	return out
}

// TestCommitAttackedContainer is the article's `docker commit`: the hacked
// container is preserved as an image without pausing it or touching
// containerd, loads with ctr and skopeo, and a container of it shows the
// attacker's files.
func TestCommitAttackedContainer(t *testing.T) {
	c := h.runContainer(t, "commit-attacked", "overlayfs")
	h.attack(t, c, articleAttack)
	upper := h.upperDir(t, c)
	before, host := captureTree(t, upper), captureHost(t)
	out := filepath.Join(t.TempDir(), "web.tar")
	r := h.cli(t, "commit", "-o", out, "--case", "IR-7", c.id)
	if r.code != 0 {
		t.Fatalf("commit: exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"committed container " + c.id + " into " + out, "paused:    false", "imported:  no"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("commit output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stderr, "task paused") || strings.Contains(r.stderr, "image created") {
		t.Errorf("commit paused or imported without being asked:\n%s", r.stderr)
	}
	compareTrees(t, "upper", before, captureTree(t, upper))
	compareHost(t, "after commit", host, captureHost(t))
	if st, err := c.task.Status(h.ctx(t)); err != nil || st.Status != client.Running {
		t.Errorf("task is %v after commit (%v)", st.Status, err)
	}

	l := readLayout(t, out)
	checkCommitLayout(t, l, c)
	checkLayerIsChanges(t, l, c)
	if out, err := exec.Command("skopeo", "inspect", "oci-archive:"+out).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), l.index.Manifests[0].Digest.String()) {
		t.Errorf("skopeo inspect oci-archive: %v\n%s", err, out)
	}

	ctrCLI(t, "images", "import", out)
	task := runImported(t, "commit-attacked-rerun", "localhost/ctrforensics/commit:"+c.id)
	if got := execOut(t, task, "cat /var/www/html/shell.php"); got != "<?php eval($_GET['cmd']); ?>\n" {
		t.Errorf("shell.php in the committed image: %q", got)
	}
	if got := execOut(t, task, "cat /var/www/html/index.html; test ! -e /etc/app/config.ini && echo deleted"); got != "<h1>hacked by x</h1>\ndeleted\n" {
		t.Errorf("committed image: %q", got)
	}
}

// checkCommitLayout checks the layout keeps the image's blobs and extends its
// config and history.
func checkCommitLayout(t *testing.T, l *layout, c *container) {
	t.Helper()
	ctx := h.ctx(t)
	img, err := c.ctr.Image(ctx)
	if err != nil {
		t.Fatal(err)
	}
	src, err := img.Spec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var srcManifest ocispec.Manifest
	b, err := readBlob(t, img, img.Target().Digest)
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(b, &srcManifest)
	n := len(srcManifest.Layers)
	if len(l.manifest.Layers) != n+1 || len(l.config.RootFS.DiffIDs) != n+1 {
		t.Fatalf("committed image has %d layers, %d diff IDs; want %d", len(l.manifest.Layers), len(l.config.RootFS.DiffIDs), n+1)
	}
	for i, d := range srcManifest.Layers {
		if l.manifest.Layers[i].Digest != d.Digest || l.config.RootFS.DiffIDs[i] != src.RootFS.DiffIDs[i] {
			t.Errorf("layer %d: %s, want the image's %s", i, l.manifest.Layers[i].Digest, d.Digest)
		}
		orig, _ := readBlob(t, img, d.Digest)
		if !bytes.Equal(orig, l.blobs[blobName(d.Digest)]) {
			t.Errorf("layer %d is not the image's blob byte for byte", i)
		}
	}
	last := l.config.History[len(l.config.History)-1]
	if last.CreatedBy != "ctrforensics commit "+c.id+" (namespace "+h.daemon.Namespace+")" || !strings.Contains(last.Comment, "case IR-7") {
		t.Errorf("history entry: %+v", last)
	}
	if len(l.config.History) != len(src.History)+1 || l.config.Config.Cmd[0] != src.Config.Cmd[0] {
		t.Errorf("config lost the image's history or command: %s", l.rawCfg)
	}
	a := l.manifest.Annotations
	if a["io.ctrforensics.commit.container"] != c.id || a[ocispec.AnnotationBaseImageDigest] != img.Target().Digest.String() ||
		a[ocispec.AnnotationBaseImageName] != img.Name() || a["io.ctrforensics.commit.case"] != "IR-7" ||
		!strings.HasPrefix(a["io.ctrforensics.commit.tool"], "ctrforensics ") || a[ocispec.AnnotationCreated] == "" {
		t.Errorf("annotations: %v", a)
	}
}

func readBlob(t *testing.T, img client.Image, d digest.Digest) ([]byte, error) {
	t.Helper()
	ctx := h.ctx(t)
	info, err := img.ContentStore().Info(ctx, d)
	if err != nil {
		return nil, err
	}
	ra, err := img.ContentStore().ReaderAt(ctx, ocispec.Descriptor{Digest: d, Size: info.Size})
	if err != nil {
		return nil, err
	}
	defer ra.Close()
	return io.ReadAll(io.NewSectionReader(ra, 0, ra.Size()))
}

// checkLayerIsChanges compares the new layer with the changes.tar collect
// writes of the same container, less the runtime's paths.
func checkLayerIsChanges(t *testing.T, l *layout, c *container) {
	t.Helper()
	bag := filepath.Join(t.TempDir(), "bag")
	h.mustCLI(t, "collect", "-o", bag, c.id)
	changesTar, err := os.ReadFile(filepath.Join(bag, bundle.ChangesTar))
	if err != nil {
		t.Fatal(err)
	}
	jsonl, err := os.ReadFile(filepath.Join(bag, bundle.ChangesJSONL))
	if err != nil {
		t.Fatal(err)
	}
	runtime := map[string]bool{}
	for _, ch := range decodeChanges(t, string(jsonl)) {
		if ch.Runtime {
			runtime[strings.TrimPrefix(ch.Path, "/")] = true
		}
	}
	if len(runtime) == 0 {
		t.Fatal("the container has no runtime paths: the test would not show they are left out")
	}
	want := tarEntries(t, changesTar)
	for name := range want {
		if runtime[name] {
			delete(want, name)
		}
	}
	got := tarEntries(t, l.newLayer(t))
	if a, b := entryLines(got), entryLines(want); a != b {
		t.Errorf("new layer:\n%s\nchanges.tar less runtime paths:\n%s", a, b)
	}
	for _, must := range []string{"var/www/html/shell.php", "var/www/html/index.html", "etc/app/.wh.config.ini"} {
		if _, ok := got[must]; !ok {
			t.Errorf("new layer lacks %s", must)
		}
	}
}

// entryLines describes tar entries, one line each, sorted.
func entryLines(m map[string]tarEntry) string {
	var lines []string
	for name, e := range m {
		h := e.hdr
		lines = append(lines, strings.Join([]string{name, string(h.Typeflag), h.Linkname, h.ModTime.UTC().String(),
			digest.FromString(e.content).String(), strings.Join(sortedPAX(h.PAXRecords), ",")}, " "))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func sortedPAX(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// TestCommitReproducible commits an unchanged container twice, as a tar and
// as a directory: the same manifest, config and layer digests, and the same
// archive bytes.
func TestCommitReproducible(t *testing.T) {
	c := h.runContainer(t, "commit-repro", "overlayfs")
	h.attack(t, c, articleAttack)
	dir := t.TempDir()
	var tars [][]byte
	var manifests []string
	for _, name := range []string{"a.tar", "b.tar", "c"} {
		out := filepath.Join(dir, name)
		got := h.mustCLI(t, "commit", "-o", out, "--format", "json", c.id)
		l := readLayout(t, out)
		manifests = append(manifests, l.index.Manifests[0].Digest.String()+" "+l.manifest.Layers[len(l.manifest.Layers)-1].Digest.String())
		var res struct {
			Manifest    string                    `json:"manifest_digest"`
			SideEffects []struct{ Action string } `json:"side_effects"`
		}
		if err := json.Unmarshal([]byte(got), &res); err != nil || res.Manifest != l.index.Manifests[0].Digest.String() || len(res.SideEffects) == 0 {
			t.Errorf("commit --format json: %v: %s", err, got)
		}
		if strings.HasSuffix(name, ".tar") {
			b, _ := os.ReadFile(out)
			tars = append(tars, b)
		}
	}
	if manifests[0] != manifests[1] || manifests[0] != manifests[2] {
		t.Errorf("manifest and layer digests differ between commits: %v", manifests)
	}
	if !bytes.Equal(tars[0], tars[1]) {
		t.Error("two tar layouts of the same container differ")
	}
}

// TestCommitPause pauses only when asked, records it and resumes.
func TestCommitPause(t *testing.T) {
	c := h.runContainer(t, "commit-pause", "overlayfs")
	h.attack(t, c, articleAttack)
	r := h.cli(t, "commit", "--pause", "-o", filepath.Join(t.TempDir(), "p.tar"), c.id)
	if r.code != 0 || !strings.Contains(r.stdout, "paused:    true") || !strings.Contains(r.stderr, "task paused") ||
		!strings.Contains(r.stderr, "task resumed") {
		t.Errorf("commit --pause: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if st, err := c.task.Status(h.ctx(t)); err != nil || st.Status != client.Running {
		t.Errorf("task is %v after commit --pause (%v)", st.Status, err)
	}
}

// TestCommitImport creates exactly one image in containerd, records it,
// releases the import's lease and never replaces an image.
func TestCommitImport(t *testing.T) {
	c := h.runContainer(t, "commit-import", "overlayfs")
	h.attack(t, c, articleAttack)
	host := captureHost(t)
	const name = "docker.io/ctrforensics/committed:ir-7"
	out := filepath.Join(t.TempDir(), "layout")
	r := h.cli(t, "commit", "--import", name, "-o", out, c.id)
	if r.code != 0 {
		t.Fatalf("commit --import: exit %d: %s", r.code, r.stderr)
	}
	t.Cleanup(func() { h.client.ImageService().Delete(h.ctx(t), name) })
	l := readLayout(t, out)
	after := captureHost(t)
	var added []string
	for _, i := range after.images {
		if !contains(host.images, i) {
			added = append(added, i)
		}
	}
	if want := name + " " + l.index.Manifests[0].Digest.String(); len(added) != 1 || added[0] != want || len(after.images) != len(host.images)+1 {
		t.Errorf("images added: %v, want exactly %s", added, want)
	}
	if strings.Join(after.leases, ",") != strings.Join(host.leases, ",") {
		t.Errorf("leases before %v, after %v", host.leases, after.leases)
	}
	if !strings.Contains(r.stdout, "imported:  "+name) || !strings.Contains(r.stderr, "image created") {
		t.Errorf("the import is not reported:\n%s\n%s", r.stdout, r.stderr)
	}
	again := h.cli(t, "commit", "--import", name, "-o", filepath.Join(t.TempDir(), "again"), c.id)
	if again.code != 2 || !strings.Contains(again.stderr, "already exists") || strings.Count(again.stderr, "\n") != 1 {
		t.Errorf("a second --import of the same name: exit %d: %s", again.code, again.stderr)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestCommitDiscardedBlobs commits a container whose image's layer blobs
// were discarded after unpacking: the layers are rebuilt from the snapshots,
// said so, and the committed image runs with the image's and the attacker's
// files.
func TestCommitDiscardedBlobs(t *testing.T) {
	ctx := h.ctx(t)
	web, err := testimage.WebImage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	web.Name = "docker.io/ctrforensics/discarded:1"
	// Layers of their own, so that discarding them leaves the shared image alone.
	web.Layers[0].Files = append(web.Layers[0].Files, testimage.Reg("/etc/discarded-base", 0o644, "base\n"))
	web.Layers[1].Files = append(web.Layers[1].Files, testimage.Reg("/etc/discarded-web", 0o644, "web\n"))
	img, err := testdaemon.ImportImage(ctx, h.client, web, "overlayfs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.client.ImageService().Delete(h.ctx(t), web.Name) })
	var m ocispec.Manifest
	b, err := readBlob(t, img, img.Target().Digest)
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(b, &m)
	for _, l := range m.Layers {
		if err := img.ContentStore().Delete(ctx, l.Digest); err != nil {
			t.Fatal(err)
		}
	}
	ctr, task, err := testdaemon.RunContainer(ctx, h.client, "commit-discarded", img, "overlayfs", "/bin/sh", "-c", "sleep 100000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testdaemon.RemoveContainer(h.ctx(t), ctr) })
	h.attack(t, &container{id: "commit-discarded", ctr: ctr, task: task}, articleAttack)

	out := filepath.Join(t.TempDir(), "d.tar")
	r := h.cli(t, "commit", "-o", out, "commit-discarded")
	if r.code != 0 || !strings.Contains(r.stdout, "rebuilt:   layers 0 1") || !strings.Contains(r.stderr, "discarded after unpacking") {
		t.Fatalf("commit of an image with discarded blobs: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	l := readLayout(t, out)
	for i, d := range m.Layers {
		if l.manifest.Layers[i].Digest == d.Digest {
			t.Errorf("layer %d kept the discarded digest %s", i, d.Digest)
		}
	}
	if l.manifest.Annotations["io.ctrforensics.commit.rebuilt-layers"] != "0,1" {
		t.Errorf("annotations: %v", l.manifest.Annotations)
	}
	ctrCLI(t, "images", "import", out)
	rerun := runImported(t, "commit-discarded-rerun", "localhost/ctrforensics/commit:commit-discarded")
	if got := execOut(t, rerun, "cat /etc/discarded-base /etc/discarded-web /var/www/html/shell.php"); got != "base\nweb\n<?php eval($_GET['cmd']); ?>\n" {
		t.Errorf("committed image of rebuilt layers: %q", got)
	}
}

// TestCommitSigned writes an attestation next to the layout whose subject is
// the new manifest and whose signature verifies with the examiner's key.
func TestCommitSigned(t *testing.T) {
	c := h.runContainer(t, "commit-signed", "overlayfs")
	h.attack(t, c, articleAttack)
	priv, pub := keyPair(t, "examiner")
	out := filepath.Join(t.TempDir(), "s.tar")
	h.mustCLI(t, "commit", "--sign-key", priv, "--examiner", "alice", "--case", "IR-9", "-o", out, c.id)
	l := readLayout(t, out)
	b, err := os.ReadFile(out + ".dsse.json")
	if err != nil {
		t.Fatal(err)
	}
	var env attest.Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	key, err := attest.LoadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	st, err := env.Open(key)
	if err != nil {
		t.Fatalf("attestation: %v", err)
	}
	var pred map[string]any
	json.Unmarshal(st.Predicate, &pred)
	if len(st.Subject) != 1 || "sha256:"+st.Subject[0].Digest["sha256"] != l.index.Manifests[0].Digest.String() ||
		pred["source_container"] != c.id || pred["examiner"] != "alice" || pred["case"] != "IR-9" {
		t.Errorf("statement: %+v %v", st.Subject, pred)
	}
	_, otherPub := keyPair(t, "other")
	other, _ := attest.LoadPublicKey(otherPub)
	if _, err := env.Open(other); err == nil {
		t.Error("the attestation verifies with a key that did not sign it")
	}
}

// TestCommitInterrupted interrupts `commit --pause` at many moments and kills
// it once the task is paused: the task runs again, nothing is left in the
// output directory or in containerd (after cleanup for the kill).
func TestCommitInterrupted(t *testing.T) {
	c := h.runContainer(t, "commit-interrupt", "overlayfs")
	h.attack(t, c, articleAttack)
	env := []string{"TMPDIR=" + t.TempDir()}
	host := captureHost(t)
	out := t.TempDir()
	for ms := 0; ms <= 60; ms += 3 {
		what := fmt.Sprintf("SIGINT after %dms", ms)
		p := startHandled(t, env, "commit", "--pause", "-o", filepath.Join(out, "c.tar"), c.id)
		code := p.signalAfter(time.Duration(ms)*time.Millisecond, syscall.SIGINT)
		checkInterrupted(t, what, p, code, c, host)
		if code == 130 {
			if left, _ := os.ReadDir(out); len(left) != 0 {
				t.Errorf("%s: left %v", what, left)
			}
		}
		os.Remove(filepath.Join(out, "c.tar"))
	}
	p := startHandled(t, env, "commit", "--pause", "-o", filepath.Join(out, "k.tar"), c.id)
	waitPaused(t, c)
	p.signalAfter(0, syscall.SIGKILL)
	r := h.cliWith(t, func(cmd *exec.Cmd) { cmd.Env = append(os.Environ(), env...) },
		"--address", h.daemon.Address, "-n", h.daemon.Namespace, "cleanup")
	if r.code != 0 || !strings.Contains(r.stdout, "task resumed") ||
		!strings.Contains(r.stdout, "removed: partial output "+filepath.Join(out, "k.tar")+".partial-") || strings.Contains(r.stdout, "partial bag") {
		t.Errorf("cleanup after a killed commit --pause: exit %d; want the task resumed and the partial output (not bag) removed\n%s%s", r.code, r.stdout, r.stderr)
	}
	if st := taskStatus(t, c); st != client.Running {
		t.Errorf("task is %s after cleanup", st)
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Errorf("cleanup left %v in the output directory", left)
	}
	compareHost(t, "killed commit and cleanup", host, captureHost(t))
}

// TestCommitUsageErrors: one line naming the problem and the fix, exit 2,
// nothing written.
func TestCommitUsageErrors(t *testing.T) {
	c := h.runContainer(t, "commit-usage", "overlayfs")
	dir := t.TempDir()
	existing := filepath.Join(dir, "exists.tar")
	os.WriteFile(existing, nil, 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"commit", c.id}, "missing --output"},
		{[]string{"commit", "-o", filepath.Join(dir, "x.tar"), "--created", "yesterday", c.id}, "RFC 3339"},
		{[]string{"commit", "-o", filepath.Join(dir, "x.tar"), "--import", "Not A Name", c.id}, "image name"},
		{[]string{"commit", "-o", filepath.Join(dir, "x.tar"), "--name", "a/b:1", "--import", "a/c:1", c.id}, "give the name once"},
		{[]string{"commit", "-o", existing, c.id}, "pick a new name for -o"},
		{[]string{"commit", "-o", filepath.Join(dir, "x.tar"), "no-such-container"}, "ls -A"},
	} {
		r := h.cli(t, tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q, want one line with %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 {
		t.Errorf("usage errors left %v", left)
	}
}

// TestCollectCommit adds the committed image to the bag's OCI layout as a
// second manifest: the bag verifies, skopeo reads and copies it by its ref
// name, and it is the very manifest `commit` writes of the same container.
func TestCollectCommit(t *testing.T) {
	c := h.runContainer(t, "collect-commit", "overlayfs")
	h.attack(t, c, articleAttack)
	dir := t.TempDir()
	bag := filepath.Join(dir, "bag")
	h.mustCLI(t, "collect", "--commit", "--case", "IR-8", "-o", bag, c.id)
	h.mustCLI(t, "verify", bag)
	out := filepath.Join(dir, "c.tar")
	h.mustCLI(t, "commit", "--case", "IR-8", "-o", out, c.id)
	want := readLayout(t, out).index.Manifests[0].Digest

	var idx ocispec.Index
	b, err := os.ReadFile(filepath.Join(bag, "data/image/index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 2 || idx.Manifests[1].Annotations[ocispec.AnnotationRefName] != "committed" || idx.Manifests[1].Digest != want {
		t.Fatalf("bag index: %s; want a second manifest %s named committed", b, want)
	}
	var acq bundle.Acquisition
	b, _ = os.ReadFile(filepath.Join(bag, bundle.AcquisitionFile))
	json.Unmarshal(b, &acq)
	if acq.CommittedManifest != want.String() || !acq.ImageLayersIncluded {
		t.Errorf("acquisition: committed %q, layers %v", acq.CommittedManifest, acq.ImageLayersIncluded)
	}
	inspect, err := exec.Command("skopeo", "inspect", "oci:"+filepath.Join(bag, "data/image")+":committed").CombinedOutput()
	if err != nil || !strings.Contains(string(inspect), want.String()) {
		t.Errorf("skopeo inspect oci:BAG/data/image:committed: %v\n%s", err, inspect)
	}
	copied := filepath.Join(dir, "copied.tar")
	if out, err := exec.Command("skopeo", "copy", "--preserve-digests", "oci:"+filepath.Join(bag, "data/image")+":committed", "oci-archive:"+copied).CombinedOutput(); err != nil {
		t.Errorf("skopeo copy: %v\n%s", err, out)
	}
}
