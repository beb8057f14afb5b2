package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// readTar returns the regular-file contents and headers of a tar stream.
func readTar(t *testing.T, r io.Reader) (map[string][]byte, []*tar.Header) {
	t.Helper()
	files := map[string][]byte{}
	var hdrs []*tar.Header
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, hdrs
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		hdrs = append(hdrs, hdr)
		if hdr.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("read %s: %v", hdr.Name, err)
			}
			files[hdr.Name] = data
		}
	}
}

// layout is a parsed OCI layout archive.
type layout struct {
	files map[string][]byte
	index ocispec.Index
}

func (l *layout) blob(t *testing.T, d digest.Digest) []byte {
	t.Helper()
	data, ok := l.files["blobs/sha256/"+d.Encoded()]
	if !ok {
		t.Fatalf("blob %s missing from archive", d)
	}
	if got := digest.FromBytes(data); got != d {
		t.Fatalf("blob %s has digest %s", d, got)
	}
	return data
}

func (l *layout) unmarshal(t *testing.T, desc ocispec.Descriptor, v any) {
	t.Helper()
	data := l.blob(t, desc.Digest)
	if int64(len(data)) != desc.Size {
		t.Fatalf("blob %s: size %d, descriptor says %d", desc.Digest, len(data), desc.Size)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("unmarshal %s: %v", desc.Digest, err)
	}
}

func parseLayout(t *testing.T, archive []byte) *layout {
	t.Helper()
	files, _ := readTar(t, bytes.NewReader(archive))
	l := &layout{files: files}
	var ol ocispec.ImageLayout
	if err := json.Unmarshal(files["oci-layout"], &ol); err != nil || ol.Version != ocispec.ImageLayoutVersion {
		t.Fatalf("bad oci-layout %q: %v", files["oci-layout"], err)
	}
	if err := json.Unmarshal(files["index.json"], &l.index); err != nil {
		t.Fatalf("bad index.json: %v", err)
	}
	if len(l.index.Manifests) != 1 {
		t.Fatalf("index.json has %d manifests, want 1", len(l.index.Manifests))
	}
	return l
}

// uncompress returns the uncompressed layer tar.
func uncompress(t *testing.T, mediaType string, blob []byte) []byte {
	t.Helper()
	var r io.Reader
	switch mediaType {
	case ocispec.MediaTypeImageLayerGzip:
		zr, err := gzip.NewReader(bytes.NewReader(blob))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = zr
	case ocispec.MediaTypeImageLayerZstd:
		zr, err := zstd.NewReader(bytes.NewReader(blob))
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		defer zr.Close()
		r = zr
	case ocispec.MediaTypeImageLayer:
		r = bytes.NewReader(blob)
	default:
		t.Fatalf("unexpected layer media type %q", mediaType)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decompress %s: %v", mediaType, err)
	}
	return data
}

func sampleImage() *Image {
	mtime := time.Date(2023, 5, 6, 7, 8, 9, 0, time.UTC)
	return &Image{
		Name: "docker.io/library/web:1",
		Layers: []Layer{
			{
				CreatedBy: "ADD base /",
				Files: []File{
					Dir("/etc", 0o755),
					Reg("/etc/hostname", 0o644, "base\n"),
					Dir("/data", 0o755),
					Reg("/data/old", 0o644, "old"),
					Dir("/data/sub", 0o755),
					Reg("/data/sub/x", 0o644, "x"),
					{Path: "/usr/bin/passwd", Mode: 0o4755, Content: []byte("ELF")},
				},
			},
			{
				Compression: Zstd,
				CreatedBy:   "RUN rm /data/old",
				Comment:     "zstd",
				Files: []File{
					Whiteout("/data/old"),
					Opaque("/data/sub"),
					{Path: "/data/sub/y", Type: tar.TypeReg, Mode: 0o600, UID: 33, GID: 33, ModTime: mtime,
						Content: []byte("y"), Xattrs: map[string]string{"user.origin": "test", "security.capability": "\x01\x02"}},
					{Path: "/data/link", Type: tar.TypeLink, Linkname: "/data/sub/y"},
					{Path: "/data/fifo", Type: tar.TypeFifo, Mode: 0o644},
					{Path: "/data/null", Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
					{Path: "/data/we\xffird name\n", Mode: 0o644, Content: []byte("odd")},
				},
			},
			{Compression: None, CreatedBy: "COPY x /", Files: []File{Symlink("/etc/alias", "hostname")}},
		},
		Config: ocispec.ImageConfig{Cmd: []string{"/bin/sh"}, Env: []string{"A=1"}},
	}
}

func TestBuildConsistency(t *testing.T) {
	img := sampleImage()
	var buf bytes.Buffer
	if err := img.WriteOCIArchive(&buf); err != nil {
		t.Fatal(err)
	}
	b, err := img.Build()
	if err != nil {
		t.Fatal(err)
	}
	l := parseLayout(t, buf.Bytes())

	// index.json -> manifest.
	target := l.index.Manifests[0]
	if target.Digest != b.Manifest.Digest || target.MediaType != ocispec.MediaTypeImageManifest {
		t.Fatalf("index.json target %+v, built manifest %+v", target, b.Manifest)
	}
	if got := target.Annotations[AnnotationImageName]; got != img.Name {
		t.Errorf("image name annotation = %q", got)
	}
	if got := target.Annotations[ocispec.AnnotationRefName]; got != "1" {
		t.Errorf("ref name annotation = %q", got)
	}
	if target.Platform == nil || target.Platform.OS != "linux" || target.Platform.Architecture == "" {
		t.Errorf("manifest platform = %+v", target.Platform)
	}

	var m ocispec.Manifest
	l.unmarshal(t, target, &m)
	if m.Config.Digest != b.Config.Digest || m.Config.MediaType != ocispec.MediaTypeImageConfig {
		t.Fatalf("manifest config %+v, built %+v", m.Config, b.Config)
	}
	wantTypes := []string{ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd, ocispec.MediaTypeImageLayer}
	if len(m.Layers) != len(wantTypes) {
		t.Fatalf("manifest has %d layers", len(m.Layers))
	}

	var cfg ocispec.Image
	l.unmarshal(t, m.Config, &cfg)
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) || cfg.RootFS.Type != "layers" {
		t.Fatalf("rootfs = %+v", cfg.RootFS)
	}
	if len(cfg.History) != 3 || cfg.History[1].CreatedBy != "RUN rm /data/old" || cfg.History[1].Comment != "zstd" {
		t.Errorf("history = %+v", cfg.History)
	}
	if cfg.Created == nil || !cfg.Created.Equal(DefaultTime()) {
		t.Errorf("created = %v", cfg.Created)
	}
	if strings.Join(cfg.Config.Cmd, " ") != "/bin/sh" {
		t.Errorf("config cmd = %v", cfg.Config.Cmd)
	}

	layers := map[int]map[string]*tar.Header{}
	for i, desc := range m.Layers {
		if desc.MediaType != wantTypes[i] {
			t.Errorf("layer %d media type %q, want %q", i, desc.MediaType, wantTypes[i])
		}
		if desc.Digest != b.Layers[i].Digest || desc.Size != b.Layers[i].Size {
			t.Errorf("layer %d descriptor %+v, built %+v", i, desc, b.Layers[i])
		}
		raw := uncompress(t, desc.MediaType, l.blob(t, desc.Digest))
		if got := digest.FromBytes(raw); got != cfg.RootFS.DiffIDs[i] || got != b.DiffIDs[i] {
			t.Errorf("layer %d diff id %s, config %s, built %s", i, got, cfg.RootFS.DiffIDs[i], b.DiffIDs[i])
		}
		_, hdrs := readTar(t, bytes.NewReader(raw))
		layers[i] = map[string]*tar.Header{}
		for _, h := range hdrs {
			layers[i][h.Name] = h
		}
	}

	// Layer 0: setuid bit, directories, default time.
	if h := layers[0]["usr/bin/passwd"]; h == nil || h.Mode != 0o4755 || !h.ModTime.Equal(DefaultTime()) {
		t.Errorf("passwd header = %+v", h)
	}
	if h := layers[0]["data/sub/"]; h == nil || h.Typeflag != tar.TypeDir {
		t.Errorf("data/sub/ header = %+v", h)
	}
	// Layer 1: whiteouts, xattrs, special files, odd names.
	for _, name := range []string{"data/.wh.old", "data/sub/.wh..wh..opq"} {
		if h := layers[1][name]; h == nil || h.Typeflag != tar.TypeReg || h.Size != 0 {
			t.Errorf("whiteout %s header = %+v", name, h)
		}
	}
	y := layers[1]["data/sub/y"]
	if y == nil || y.PAXRecords["SCHILY.xattr.user.origin"] != "test" ||
		y.PAXRecords["SCHILY.xattr.security.capability"] != "\x01\x02" || y.Uid != 33 || !y.ModTime.Equal(time.Date(2023, 5, 6, 7, 8, 9, 0, time.UTC)) {
		t.Errorf("data/sub/y header = %+v", y)
	}
	if h := layers[1]["data/link"]; h == nil || h.Typeflag != tar.TypeLink || h.Linkname != "data/sub/y" {
		t.Errorf("hard link header = %+v", h)
	}
	if h := layers[1]["data/null"]; h == nil || h.Typeflag != tar.TypeChar || h.Devmajor != 1 || h.Devminor != 3 {
		t.Errorf("char device header = %+v", h)
	}
	if h := layers[1]["data/fifo"]; h == nil || h.Typeflag != tar.TypeFifo {
		t.Errorf("fifo header = %+v", h)
	}
	if h := layers[1]["data/we\xffird name\n"]; h == nil || h.Size != 3 {
		t.Errorf("odd name header = %+v", h)
	}
	if h := layers[2]["etc/alias"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "hostname" {
		t.Errorf("symlink header = %+v", h)
	}

	// Determinism: a second build produces the same archive.
	var again bytes.Buffer
	if err := sampleImage().WriteOCIArchive(&again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("archive is not deterministic")
	}
}

func TestWhiteoutNames(t *testing.T) {
	for in, want := range map[string]string{
		"/a/b":    "/a/.wh.b",
		"a/b/":    "/a/.wh.b",
		"/top":    "/.wh.top",
		"/a/.x y": "/a/.wh..x y",
	} {
		if got := Whiteout(in).Path; got != want {
			t.Errorf("Whiteout(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Opaque("/a/b/").Path; got != "/a/b/.wh..wh..opq" {
		t.Errorf("Opaque = %q", got)
	}
}

func TestRefName(t *testing.T) {
	for in, want := range map[string]string{
		"docker.io/library/web:1":         "1",
		"localhost:5000/web":              "localhost:5000/web",
		"localhost:5000/web:v2":           "v2",
		"docker.io/library/web@sha256:ab": "docker.io/library/web@sha256:ab",
	} {
		if got := refName(in); got != want {
			t.Errorf("refName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMultiPlatform(t *testing.T) {
	mk := func(arch, content string) *Image {
		return &Image{
			Layers:   []Layer{{Files: []File{Reg("/arch", 0o644, content)}}},
			Platform: ocispec.Platform{OS: "linux", Architecture: arch},
		}
	}
	mp := &MultiPlatform{Name: "docker.io/library/multi:latest", Images: []*Image{mk("amd64", "x86"), mk("arm64", "arm")}}
	var buf bytes.Buffer
	if err := mp.WriteOCIArchive(&buf); err != nil {
		t.Fatal(err)
	}
	b, err := mp.Build()
	if err != nil {
		t.Fatal(err)
	}
	l := parseLayout(t, buf.Bytes())
	target := l.index.Manifests[0]
	if target.MediaType != ocispec.MediaTypeImageIndex || target.Digest != b.Target.Digest {
		t.Fatalf("index.json target = %+v", target)
	}
	if target.Annotations[AnnotationImageName] != mp.Name {
		t.Errorf("annotations = %v", target.Annotations)
	}
	var idx ocispec.Index
	l.unmarshal(t, target, &idx)
	if len(idx.Manifests) != 2 {
		t.Fatalf("index has %d manifests", len(idx.Manifests))
	}
	for i, arch := range []string{"amd64", "arm64"} {
		d := idx.Manifests[i]
		if d.Platform == nil || d.Platform.Architecture != arch || d.Digest != b.Platforms[i].Manifest.Digest {
			t.Errorf("manifest %d = %+v", i, d)
		}
		var m ocispec.Manifest
		l.unmarshal(t, d, &m)
		var cfg ocispec.Image
		l.unmarshal(t, m.Config, &cfg)
		if cfg.Architecture != arch {
			t.Errorf("config %d architecture = %q", i, cfg.Architecture)
		}
	}
}

func TestWebImage(t *testing.T) {
	if _, err := FindBusybox(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	img, err := WebImage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := img.Build()
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Layers) != 2 {
		t.Fatalf("web image has %d layers", len(b.Layers))
	}

	base, _ := b.Blob(b.Layers[0].Digest)
	files, hdrs := readTar(t, bytes.NewReader(uncompress(t, b.Layers[0].MediaType, base)))
	byName := map[string]*tar.Header{}
	for _, h := range hdrs {
		byName[h.Name] = h
	}
	if h := byName["bin/busybox"]; h == nil || h.Mode != 0o755 || len(files["bin/busybox"]) == 0 {
		t.Errorf("bin/busybox header = %+v", h)
	}
	for _, applet := range []string{"sh", "httpd", "sleep", "cat"} {
		if h := byName["bin/"+applet]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
			t.Errorf("applet %s header = %+v", applet, h)
		}
	}
	if _, ok := byName["bin/busybox"]; !ok || byName["tmp/"].Mode != 0o1777 {
		t.Errorf("tmp/ header = %+v", byName["tmp/"])
	}
	if !strings.Contains(string(files["etc/passwd"]), "www-data:x:33:33:") {
		t.Errorf("etc/passwd = %q", files["etc/passwd"])
	}

	web, _ := b.Blob(b.Layers[1].Digest)
	_, hdrs = readTar(t, bytes.NewReader(uncompress(t, b.Layers[1].MediaType, web)))
	byName = map[string]*tar.Header{}
	for _, h := range hdrs {
		if h.ModTime.Nanosecond() != 0 {
			t.Errorf("%s has sub-second mtime", h.Name)
		}
		if strings.HasPrefix(h.Name, "run") {
			t.Errorf("web layer contains %s", h.Name)
		}
		byName[h.Name] = h
	}
	for _, n := range []string{"var/www/html/index.html", "var/www/html/about.html", "var/www/html/app.php",
		"etc/app/config.ini", "usr/share/doc/web/README", "opt/data/"} {
		if byName[n] == nil {
			t.Errorf("web layer lacks %s", n)
		}
	}
	if !byName["var/www/html/index.html"].ModTime.Equal(byName["var/www/html/about.html"].ModTime) {
		t.Error("index.html and about.html mtimes differ")
	}
	var static, data int
	for n, h := range byName {
		if strings.HasPrefix(n, "var/www/html/static/") && h.Typeflag == tar.TypeReg {
			static++
		}
		if strings.HasPrefix(n, "opt/data/") && h.Typeflag == tar.TypeReg {
			data++
		}
	}
	if static != 3 || data < 2 {
		t.Errorf("static files = %d, data files = %d", static, data)
	}
	if got := strings.Join(img.Config.Cmd, " "); got != "/bin/httpd -f -p 8080 -h /var/www/html" {
		t.Errorf("cmd = %q", got)
	}
}
