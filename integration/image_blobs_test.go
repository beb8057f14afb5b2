package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"

	"github.com/ctrforensics/ctrforensics/internal/testimage"
)

// blobPath is where the test daemon keeps blob d.
func blobPath(d digest.Digest) string {
	return filepath.Join(h.daemon.Root, "io.containerd.content.v1.content", "blobs", d.Algorithm().String(), d.Encoded())
}

// TestImageReadsBlobsFromTheContentDirectory checks that the image commands
// read layer blobs straight from the local content store directory without
// moving their access times, say so with --verbose, fall back to the content
// API where that directory is not visible, and refuse a tampered blob.
func TestImageReadsBlobsFromTheContentDirectory(t *testing.T) {
	img, err := mergedUsrOnce()
	if err != nil {
		t.Fatal(err)
	}
	ctx := h.ctx(t)
	manifest, err := images.Manifest(ctx, h.client.ContentStore(), img.Target(), platforms.Default())
	if err != nil {
		t.Fatal(err)
	}
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	var before []time.Time
	for _, l := range manifest.Layers {
		p := blobPath(l.Digest)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, fi.ModTime()); err != nil {
			t.Fatal(err)
		}
		before = append(before, atime(t, p))
	}
	r := h.cli(t, "image", "files", "-v", mergedUsrName)
	if r.code != 0 || !strings.Contains(r.stderr, "read straight from the content store directory "+filepath.Join(h.daemon.Root, "io.containerd.content.v1.content")) {
		t.Errorf("image files -v: exit %d, stderr %s", r.code, r.stderr)
	}
	for i, l := range manifest.Layers {
		if got := atime(t, blobPath(l.Digest)); !got.Equal(before[i]) {
			t.Errorf("layer %d blob: atime moved from %s to %s", i, before[i], got)
		}
	}
	// A mount namespace where an empty tmpfs covers the content directory:
	// the blobs are read through the API.
	cmd := exec.Command("unshare", "-m", "sh", "-c", `mount -t tmpfs none "$1" && shift && exec "$@"`, "sh",
		filepath.Join(h.daemon.Root, "io.containerd.content.v1.content"),
		h.bin, "--address", h.daemon.Address, "-n", h.daemon.Namespace, "image", "cat", "-v", mergedUsrName, "/usr/bin/busybox")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stdout.String() != "BUSYBOX BYTES\n" ||
		!strings.Contains(stderr.String(), "layer blobs read through containerd's content API: its content store directory is not readable here") {
		t.Errorf("cat with the content directory hidden: %v, stdout %q, stderr %s", err, stdout.String(), stderr.String())
	}
}

// TestImageRefusesATamperedBlob overwrites a layer blob of a private image
// in the test daemon's content store with other bytes of the same size:
// reading it must fail and name the blob.
func TestImageRefusesATamperedBlob(t *testing.T) {
	img := &testimage.Image{Name: "docker.io/ctrforensics/tampered:1", Layers: []testimage.Layer{{Compression: testimage.None,
		Files: []testimage.File{testimage.Reg("/f", 0o644, "original content")}}}}
	built, err := img.Build()
	if err != nil {
		t.Fatal(err)
	}
	h.importArchive(t, built)
	layer := built.Layers[0].Digest
	// A run before the tampering leaves an index of the layer: the run after
	// it must not trust that index.
	index := t.TempDir()
	h.mustCLI(t, "image", "files", "--index-dir", index, img.Name)
	if _, err := os.Stat(filepath.Join(index, "sha256", layer.Encoded())); err != nil {
		t.Fatalf("no index of the layer was kept: %v", err)
	}
	p := blobPath(layer)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	tampered := []byte(strings.Replace(string(data), "original content", "tampered content", 1))
	if err := os.WriteFile(p, tampered, 0o444); err != nil {
		t.Fatal(err)
	}
	r := h.cli(t, "image", "files", "--index-dir", index, img.Name)
	if r.code == 0 || !strings.Contains(r.stderr, "does not match its digest") || !strings.Contains(r.stderr, layer.Encoded()) {
		t.Errorf("image files of a tampered blob: exit %d, stderr %s", r.code, r.stderr)
	}
}

// TestImageRefusesATamperedManifestOrConfig overwrites the manifest, then
// the config, of a private image in the test daemon's content store with
// bytes that still parse (same size): they decide which layer blobs and
// history the image is read against, so the image commands must fail and
// name the blob instead of trusting them.
func TestImageRefusesATamperedManifestOrConfig(t *testing.T) {
	ctx := h.ctx(t)
	for _, what := range []string{"manifest", "config"} {
		img := &testimage.Image{Name: "docker.io/ctrforensics/tampered-" + what + ":1", Layers: []testimage.Layer{{
			Files: []testimage.File{testimage.Reg("/f", 0o644, what)}, CreatedBy: "original step"}}}
		built, err := img.Build()
		if err != nil {
			t.Fatal(err)
		}
		h.importArchive(t, built)
		ci, err := h.client.GetImage(ctx, img.Name)
		if err != nil {
			t.Fatal(err)
		}
		m, err := images.Manifest(ctx, h.client.ContentStore(), ci.Target(), platforms.Default())
		if err != nil {
			t.Fatal(err)
		}
		d, from, to := ci.Target().Digest, `"schemaVersion":2`, `"schemaVersion":3`
		if what == "config" {
			d, from, to = m.Config.Digest, "original step", "tampered step"
		}
		h.mustCLI(t, "image", "history", img.Name)
		p := blobPath(d)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte(from)) {
			t.Fatalf("%s %s does not hold %q: %s", what, d, from, data)
		}
		if err := os.WriteFile(p, bytes.Replace(data, []byte(from), []byte(to), 1), 0o444); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"image", "history", img.Name}, {"image", "cat", img.Name, "/f"}} {
			r := h.cli(t, args...)
			if r.code == 0 || !strings.Contains(r.stderr, "does not match its digest") || !strings.Contains(r.stderr, d.String()) ||
				strings.Contains(r.stdout, "tampered step") {
				t.Errorf("%s after the %s was tampered with: exit %d, stdout %s, stderr %s", strings.Join(args[:2], " "), what, r.code, r.stdout, r.stderr)
			}
		}
	}
}

// TestImageLayerIndex runs the image commands twice with a layer index
// directory: the second run reads the layers it needs from their index (no
// layer is decompressed to make one), says so with
// --verbose, and prints the same bytes; --no-index neither reads nor writes
// one; without --index-dir there is none; and the index directory cannot be
// inside the content store.
func TestImageLayerIndex(t *testing.T) {
	if _, err := mergedUsrOnce(); err != nil {
		t.Fatal(err)
	}
	index := t.TempDir()
	for _, args := range [][]string{
		{"image", "files", "--digest", mergedUsrName}, {"image", "layers", "--format", "json", mergedUsrName},
		{"image", "cat", mergedUsrName, "/bin/sh"}, {"image", "cat", mergedUsrName, "/etc/hard"},
		{"image", "cat", mergedUsrName, "/etc/hostname"}, {"image", "cat", "--layer", "0", mergedUsrName, "/etc/hard"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			want := h.cli(t, append(args, "--no-index", "-v", "--index-dir", index)...)
			if strings.Contains(want.stderr, "index") {
				t.Errorf("--no-index used an index: %s", want.stderr)
			}
			for run := range 2 {
				got := h.cli(t, append(args, "-v", "--index-dir", index)...)
				if got.stdout != want.stdout || got.code != want.code {
					t.Errorf("run %d: exit %d, stdout %q; without an index: exit %d, stdout %q", run, got.code, got.stdout, want.code, want.stdout)
				}
				if run == 1 && (!strings.Contains(got.stderr, "read from its index") || strings.Contains(got.stderr, "index written")) {
					t.Errorf("run %d read a layer again instead of its index: %s", run, got.stderr)
				}
			}
		})
	}
	// Off by default on a live daemon: an index would be written to the
	// examined host's disk, and trusted later.
	cache := tmpfsDir(t)
	r := h.cliWith(t, withCacheHome(cache), "--address", h.daemon.Address, "-n", h.daemon.Namespace, "image", "files", "-v", mergedUsrName)
	if r.code != 0 || !strings.Contains(r.stderr, "no layer index read or kept: the content store is a live daemon's") {
		t.Errorf("image files without --index-dir: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if left := filesUnder(t, cache); len(left) > 0 {
		t.Errorf("image files on a live daemon wrote %s", left)
	}
	inside := filepath.Join(h.daemon.Root, "io.containerd.content.v1.content", "index")
	if r := h.cli(t, "image", "files", "--index-dir", inside, mergedUsrName); r.code != 2 || !strings.Contains(r.stderr, "outside the evidence") {
		t.Errorf("an index directory inside the content store: exit %d, stderr %s", r.code, r.stderr)
	}
	if _, err := os.Stat(inside); err == nil {
		t.Errorf("%s was created", inside)
	}
}

// atime reads a file's access time without reading the file.
func atime(t *testing.T, p string) time.Time {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return time.Unix(st.Atim.Sec, st.Atim.Nsec)
}

// TestImageLayerIndexDefault checks where the image commands keep layer
// indexes when no directory is given: in the user's cache directory for a
// dead host's disk root mounted read-only, when the cache is on another
// filesystem (the second run reads them and prints the same bytes); nowhere,
// saying why, for a root a running containerd holds, a root on a writable
// mount, or a cache on the root's own filesystem; and an --index-dir on the
// root's filesystem is refused.
func TestImageLayerIndexDefault(t *testing.T) {
	if _, err := mergedUsrOnce(); err != nil {
		t.Fatal(err)
	}
	writable := deadRootCopy(t)
	dead := roBind(t, writable, filepath.Join(t.TempDir(), "dead"))
	args := []string{"image", "cat", "-v", mergedUsrName, "/bin/sh"}
	want := mustOffline(t, dead, append(args, "--no-index")...)
	cache := tmpfsDir(t)
	for run, says := range []string{"index written to " + cache + "/ctrforensics/layer-index/sha256/", "read from its index " + cache} {
		r := h.cliWith(t, withCacheHome(cache), append([]string{"--root", dead, "-n", h.daemon.Namespace}, args...)...)
		if r.code != 0 || r.stdout != want || !strings.Contains(r.stderr, says) {
			t.Errorf("run %d on a dead root: exit %d, stdout %q (want %q), stderr without %q:\n%s", run, r.code, r.stdout, want, says, r.stderr)
		}
	}
	if left := filesUnder(t, cache); len(left) == 0 {
		t.Errorf("no index kept in %s", cache)
	}
	for _, tc := range []struct {
		name, root, cache, why string
	}{
		{"held by the daemon", h.daemon.Root, tmpfsDir(t), "a running containerd holds the disk root's database"},
		{"held by the daemon, mounted read-only", readOnlyRoot(t, filepath.Join(t.TempDir(), "ro")), tmpfsDir(t), "a running containerd holds the disk root's database"},
		{"on a writable mount", writable, tmpfsDir(t), "the disk root is on a writable mount"},
		{"cache on the root's filesystem", dead, filepath.Join(filepath.Dir(writable), "cache"), "the cache directory is on the disk root's own filesystem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.cliWith(t, withCacheHome(tc.cache), append([]string{"--root", tc.root, "-n", h.daemon.Namespace}, args...)...)
			if r.code != 0 || r.stdout != want || !strings.Contains(r.stderr, "no layer index read or kept: "+tc.why) {
				t.Errorf("exit %d, stdout %q (want %q), stderr without %q:\n%s", r.code, r.stdout, want, tc.why, r.stderr)
			}
			if left := filesUnder(t, tc.cache); len(left) > 0 {
				t.Errorf("wrote %s", left)
			}
		})
	}
	onEvidence := filepath.Join(filepath.Dir(writable), "index")
	r := offline(t, dead, append(args, "--index-dir", onEvidence)...)
	if r.code != 2 || !strings.Contains(r.stderr, "is on the filesystem of the disk root") || strings.Count(r.stderr, "\n") > 2 {
		t.Errorf("--index-dir on the root's filesystem: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// deadRootCopy returns a containerd root no daemon holds, as a dead host's
// disk: a copy of the test daemon's meta.db beside hard links to its blobs.
func deadRootCopy(t *testing.T) string {
	t.Helper()
	dead := filepath.Join(t.TempDir(), "root")
	meta := filepath.Join(dead, "io.containerd.metadata.v1.bolt")
	if err := os.MkdirAll(meta, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{
		{"cp", filepath.Join(h.daemon.Root, "io.containerd.metadata.v1.bolt", "meta.db"), meta},
		{"cp", "-al", filepath.Join(h.daemon.Root, "io.containerd.content.v1.content"), dead},
	} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(cmd, " "), err, out)
		}
	}
	return dead
}

// roBind bind-mounts src read-only at a private directory at, as a dead
// host's disk is mounted, and returns at.
func roBind(t *testing.T, src, at string) string {
	t.Helper()
	if err := os.MkdirAll(at, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount(src, at, "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("bind %s: %v", src, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(at, 0); err != nil {
			t.Errorf("unmount %s: %v", at, err)
		}
	})
	for _, flags := range []uintptr{syscall.MS_PRIVATE, syscall.MS_BIND | syscall.MS_REMOUNT | syscall.MS_RDONLY} {
		if err := syscall.Mount("", at, "", flags, ""); err != nil {
			t.Fatal(err)
		}
	}
	return at
}

// tmpfsDir returns a directory on a tmpfs of its own, unmounted at the end.
func tmpfsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64m,mode=0700"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// withCacheHome runs a command with dir as the user's cache directory.
func withCacheHome(dir string) func(*exec.Cmd) {
	return func(cmd *exec.Cmd) { cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+dir) }
}

// filesUnder lists the regular files below dir.
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			files = append(files, p)
		}
		if os.IsNotExist(err) {
			return nil
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
