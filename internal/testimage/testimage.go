// Package testimage builds small, fully deterministic OCI images in memory
// and serialises them as OCI image layout tar archives, ready to be fed to
// containerd's client.Import.
//
// Images are described declaratively (an Image is a list of Layers, a Layer
// is an ordered list of Files). Building the same description twice yields
// byte-identical blobs and therefore identical digests, which lets tests
// compare digests reported by containerd with the ones computed here.
package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	_ "crypto/sha256" // registers sha256 for go-digest
	"encoding/json"
	"fmt"
	"io"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultTime returns the timestamp (2024-01-02T03:04:05Z) used for file
// modification times, image creation time and history entries whenever the
// caller leaves them zero.
func DefaultTime() time.Time {
	return time.Date(2024, time.January, 2, 3, 4, 5, 0, time.UTC)
}

// AnnotationImageName is the index.json annotation containerd uses to name
// an imported image.
const AnnotationImageName = "io.containerd.image.name"

// Whiteout prefixes defined by the OCI image layer specification.
const (
	// WhiteoutPrefix marks a file or directory deleted by a layer.
	WhiteoutPrefix = ".wh."
	// WhiteoutOpaque marks a directory whose lower-layer contents are hidden.
	WhiteoutOpaque = ".wh..wh..opq"
)

// File is one entry of a layer.
type File struct {
	// Path is the absolute path inside the image, e.g. "/bin/sh". It may
	// contain any bytes except NUL; long or non-ASCII names are written as
	// PAX records.
	Path string
	// Type is a tar type flag: tar.TypeReg, TypeDir, TypeSymlink, TypeLink,
	// TypeFifo, TypeChar or TypeBlock. The zero value means tar.TypeReg.
	Type byte
	// Mode holds the permission bits including setuid (04000), setgid
	// (02000) and sticky (01000). It is used verbatim: zero means 0000.
	Mode int64
	// UID and GID are the numeric owner of the entry.
	UID, GID int
	// Content is the data of a regular file. It is ignored for other types.
	Content []byte
	// Linkname is the target of a symlink (used verbatim) or of a hard link
	// (an absolute image path such as "/bin/busybox").
	Linkname string
	// ModTime is the modification time; DefaultTime() is used when zero.
	// Sub-second precision is preserved through PAX records.
	ModTime time.Time
	// Xattrs are extended attributes, written as PAX SCHILY.xattr.* records.
	Xattrs map[string]string
	// Devmajor and Devminor are the device numbers of TypeChar and
	// TypeBlock entries.
	Devmajor, Devminor int64
}

// Dir returns a directory entry owned by root.
func Dir(p string, mode int64) File {
	return File{Path: p, Type: tar.TypeDir, Mode: mode}
}

// Reg returns a regular file entry owned by root.
func Reg(p string, mode int64, content string) File {
	return File{Path: p, Type: tar.TypeReg, Mode: mode, Content: []byte(content)}
}

// Symlink returns a symbolic link entry at p pointing to target.
func Symlink(p, target string) File {
	return File{Path: p, Type: tar.TypeSymlink, Mode: 0o777, Linkname: target}
}

// Whiteout returns the OCI whiteout entry (".wh.<name>") that deletes p
// from the lower layers.
func Whiteout(p string) File {
	dir, base := path.Split(path.Clean("/" + p))
	return File{Path: path.Join(dir, WhiteoutPrefix+base), Type: tar.TypeReg}
}

// Opaque returns the OCI opaque whiteout entry (".wh..wh..opq") that hides
// every lower-layer entry below dir.
func Opaque(dir string) File {
	return File{Path: path.Join("/", dir, WhiteoutOpaque), Type: tar.TypeReg}
}

// Compression selects how a layer blob is compressed.
type Compression int

const (
	// Gzip compresses the layer with gzip (the default).
	Gzip Compression = iota
	// Zstd compresses the layer with zstd.
	Zstd
	// None stores the layer as a plain tar.
	None
)

// String returns the name of the compression.
func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	case None:
		return "none"
	default:
		return fmt.Sprintf("Compression(%d)", int(c))
	}
}

// MediaType returns the OCI layer media type for the compression.
func (c Compression) MediaType() string {
	switch c {
	case Zstd:
		return ocispec.MediaTypeImageLayerZstd
	case None:
		return ocispec.MediaTypeImageLayer
	default:
		return ocispec.MediaTypeImageLayerGzip
	}
}

// Layer is an ordered list of files. Entries are written exactly in the
// given order; parent directories are not added implicitly.
type Layer struct {
	// Files are the layer entries, in tar order.
	Files []File
	// Compression of the layer blob; the zero value is Gzip.
	Compression Compression
	// CreatedBy is the history created_by text for this layer.
	CreatedBy string
	// Comment is the history comment for this layer.
	Comment string
}

// Image describes a single-platform image.
type Image struct {
	// Name is the full reference, e.g. "docker.io/library/web:1". It is
	// stored in index.json as io.containerd.image.name and (tag only, as
	// containerd's exporter does) as org.opencontainers.image.ref.name.
	Name string
	// Layers are the image layers, lowest first.
	Layers []Layer
	// Config is the runtime configuration (Env, Entrypoint, Cmd, ...).
	Config ocispec.ImageConfig
	// History overrides the image history. When nil, one entry per layer
	// is generated from Layer.CreatedBy and Layer.Comment. When set, the
	// caller must keep the non-empty_layer entries in step with Layers.
	History []ocispec.History
	// Created is the image creation time; DefaultTime() when zero.
	Created time.Time
	// Platform is the image platform; linux/runtime.GOARCH when OS or
	// Architecture is empty.
	Platform ocispec.Platform
}

// Built is the serialised form of an image: its descriptors and blobs.
type Built struct {
	// Name is the image reference written to index.json.
	Name string
	// Target is the descriptor index.json points to: the image manifest
	// for a single image, or the image index for a multi-platform image.
	Target ocispec.Descriptor
	// Manifest is the image manifest descriptor (with platform). For a
	// multi-platform image it is the first platform's manifest.
	Manifest ocispec.Descriptor
	// Config is the image config descriptor.
	Config ocispec.Descriptor
	// Layers are the (possibly compressed) layer descriptors.
	Layers []ocispec.Descriptor
	// DiffIDs are the digests of the uncompressed layer tars.
	DiffIDs []digest.Digest
	// Platforms holds one Built per platform of a multi-platform image;
	// it is nil for a single image.
	Platforms []*Built

	blobs map[digest.Digest][]byte
}

// Blob returns the content of the blob with digest d, if it is part of the
// image.
func (b *Built) Blob(d digest.Digest) ([]byte, bool) {
	data, ok := b.blobs[d]
	return data, ok
}

// Build serialises the image: it creates the layer blobs, the config and
// the manifest, and computes all digests.
func (img *Image) Build() (*Built, error) {
	b := &Built{Name: img.Name, blobs: map[digest.Digest][]byte{}}

	created := img.Created
	if created.IsZero() {
		created = DefaultTime()
	}
	platform := img.Platform
	if platform.OS == "" {
		platform.OS = "linux"
	}
	if platform.Architecture == "" {
		platform.Architecture = runtime.GOARCH
	}

	history := img.History
	for i, l := range img.Layers {
		raw, err := layerTar(l.Files)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		blob, err := compress(raw, l.Compression)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		b.DiffIDs = append(b.DiffIDs, digest.FromBytes(raw))
		b.Layers = append(b.Layers, b.add(l.Compression.MediaType(), blob))
		if img.History == nil {
			history = append(history, ocispec.History{
				Created:   &created,
				CreatedBy: l.CreatedBy,
				Comment:   l.Comment,
			})
		}
	}

	cfg := ocispec.Image{
		Created:  &created,
		Platform: platform,
		Config:   img.Config,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: b.DiffIDs},
		History:  history,
	}
	if cfg.RootFS.DiffIDs == nil {
		cfg.RootFS.DiffIDs = []digest.Digest{}
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("marshal image config: %w", err)
	}
	b.Config = b.add(ocispec.MediaTypeImageConfig, cfgJSON)

	layers := b.Layers
	if layers == nil {
		layers = []ocispec.Descriptor{}
	}
	manifest := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    b.Config,
		Layers:    layers,
	}
	mJSON, err := json.Marshal(manifest)
	if err != nil {
		return nil, fmt.Errorf("marshal image manifest: %w", err)
	}
	b.Manifest = b.add(ocispec.MediaTypeImageManifest, mJSON)
	b.Manifest.Platform = &platform
	b.Target = b.Manifest
	return b, nil
}

// WriteOCIArchive builds the image and writes it to w as an OCI image
// layout tar (oci-layout, index.json, blobs/sha256/...).
func (img *Image) WriteOCIArchive(w io.Writer) error {
	b, err := img.Build()
	if err != nil {
		return fmt.Errorf("build image %q: %w", img.Name, err)
	}
	if _, err := b.WriteTo(w); err != nil {
		return fmt.Errorf("write image %q: %w", img.Name, err)
	}
	return nil
}

// MultiPlatform describes an image whose index lists one manifest per
// platform (e.g. linux/amd64 and linux/arm64).
type MultiPlatform struct {
	// Name is the full image reference; the Name of each Image is ignored.
	Name string
	// Images are the per-platform images; each should set Platform.
	Images []*Image
}

// Build serialises every platform image and an image index referencing
// them. In the result, Target is the image index and Manifest, Config,
// Layers and DiffIDs describe the first platform.
func (m *MultiPlatform) Build() (*Built, error) {
	if len(m.Images) == 0 {
		return nil, fmt.Errorf("multi-platform image %q: no images", m.Name)
	}
	b := &Built{Name: m.Name, blobs: map[digest.Digest][]byte{}}
	idx := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
	}
	for i, img := range m.Images {
		p, err := img.Build()
		if err != nil {
			return nil, fmt.Errorf("platform image %d: %w", i, err)
		}
		p.Name = m.Name
		for d, data := range p.blobs {
			b.blobs[d] = data
		}
		idx.Manifests = append(idx.Manifests, p.Manifest)
		b.Platforms = append(b.Platforms, p)
	}
	data, err := json.Marshal(idx)
	if err != nil {
		return nil, fmt.Errorf("marshal image index: %w", err)
	}
	b.Target = b.add(ocispec.MediaTypeImageIndex, data)
	first := b.Platforms[0]
	b.Manifest, b.Config, b.Layers, b.DiffIDs = first.Manifest, first.Config, first.Layers, first.DiffIDs
	return b, nil
}

// WriteOCIArchive builds the multi-platform image and writes it to w as an
// OCI image layout tar.
func (m *MultiPlatform) WriteOCIArchive(w io.Writer) error {
	b, err := m.Build()
	if err != nil {
		return fmt.Errorf("build image %q: %w", m.Name, err)
	}
	if _, err := b.WriteTo(w); err != nil {
		return fmt.Errorf("write image %q: %w", m.Name, err)
	}
	return nil
}

// WriteTo writes the image as an OCI image layout tar to w. Blobs are
// written in digest order so the archive itself is deterministic.
func (b *Built) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	tw := tar.NewWriter(cw)

	target := b.Target
	target.Annotations = map[string]string{}
	for k, v := range b.Target.Annotations {
		target.Annotations[k] = v
	}
	if b.Name != "" {
		target.Annotations[AnnotationImageName] = b.Name
		target.Annotations[ocispec.AnnotationRefName] = refName(b.Name)
	}
	index := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{target},
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return cw.n, fmt.Errorf("marshal index.json: %w", err)
	}
	layoutJSON, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return cw.n, fmt.Errorf("marshal oci-layout: %w", err)
	}

	digests := make([]digest.Digest, 0, len(b.blobs))
	for d := range b.blobs {
		digests = append(digests, d)
	}
	sort.Slice(digests, func(i, j int) bool { return digests[i] < digests[j] })

	type entry struct {
		name string
		data []byte
		dir  bool
	}
	entries := []entry{
		{name: ocispec.ImageLayoutFile, data: layoutJSON},
		{name: ocispec.ImageIndexFile, data: indexJSON},
		{name: ocispec.ImageBlobsDir + "/", dir: true},
		{name: ocispec.ImageBlobsDir + "/sha256/", dir: true},
	}
	for _, d := range digests {
		name := path.Join(ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
		entries = append(entries, entry{name: name, data: b.blobs[d]})
	}
	for _, e := range entries {
		hdr := &tar.Header{
			Name:    e.name,
			Mode:    0o644,
			ModTime: DefaultTime(),
			Format:  tar.FormatPAX,
		}
		if e.dir {
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		} else {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return cw.n, fmt.Errorf("write %s header: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return cw.n, fmt.Errorf("write %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return cw.n, fmt.Errorf("close layout tar: %w", err)
	}
	return cw.n, nil
}

// add stores a blob and returns its descriptor.
func (b *Built) add(mediaType string, data []byte) ocispec.Descriptor {
	d := digest.FromBytes(data)
	b.blobs[d] = data
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

// refName returns the tag of a reference (the part after the last ':' of
// the last path component), or the whole reference if it has no tag, as
// containerd's OCI exporter does for org.opencontainers.image.ref.name.
func refName(name string) string {
	if i := strings.Index(name, "@"); i >= 0 {
		return name
	}
	last := name[strings.LastIndex(name, "/")+1:]
	if i := strings.LastIndex(last, ":"); i >= 0 {
		return last[i+1:]
	}
	return name
}

// layerTar renders the uncompressed tar stream of a layer.
func layerTar(files []File) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr, err := header(f)
		if err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("write tar header for %q: %w", f.Path, err)
		}
		if hdr.Typeflag == tar.TypeReg && len(f.Content) > 0 {
			if _, err := tw.Write(f.Content); err != nil {
				return nil, fmt.Errorf("write content of %q: %w", f.Path, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close layer tar: %w", err)
	}
	return buf.Bytes(), nil
}

// header converts a File into a PAX tar header.
func header(f File) (*tar.Header, error) {
	name := strings.TrimLeft(f.Path, "/")
	if name == "" || strings.ContainsRune(f.Path, 0) {
		return nil, fmt.Errorf("invalid path %q", f.Path)
	}
	typ := f.Type
	if typ == 0 { // the zero value, also the legacy tar.TypeRegA
		typ = tar.TypeReg
	}
	mtime := f.ModTime
	if mtime.IsZero() {
		mtime = DefaultTime()
	}
	hdr := &tar.Header{
		Typeflag: typ,
		Name:     name,
		Mode:     f.Mode,
		Uid:      f.UID,
		Gid:      f.GID,
		ModTime:  mtime,
		Format:   tar.FormatPAX,
	}
	switch typ {
	case tar.TypeReg:
		hdr.Size = int64(len(f.Content))
	case tar.TypeDir:
		hdr.Name = strings.TrimRight(name, "/") + "/"
	case tar.TypeSymlink:
		hdr.Linkname = f.Linkname
	case tar.TypeLink:
		hdr.Linkname = strings.TrimLeft(f.Linkname, "/")
	case tar.TypeChar, tar.TypeBlock:
		hdr.Devmajor, hdr.Devminor = f.Devmajor, f.Devminor
	case tar.TypeFifo:
	default:
		return nil, fmt.Errorf("%q: unsupported tar type %q", f.Path, typ)
	}
	if len(f.Xattrs) > 0 {
		hdr.PAXRecords = map[string]string{}
		for k, v := range f.Xattrs {
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
	}
	return hdr, nil
}

// compress compresses a layer tar.
func compress(raw []byte, c Compression) ([]byte, error) {
	var buf bytes.Buffer
	switch c {
	case None:
		return raw, nil
	case Gzip:
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(raw); err != nil {
			return nil, fmt.Errorf("gzip layer: %w", err)
		}
		if err := zw.Close(); err != nil {
			return nil, fmt.Errorf("gzip layer: %w", err)
		}
	case Zstd:
		zw, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("zstd layer: %w", err)
		}
		if _, err := zw.Write(raw); err != nil {
			zw.Close()
			return nil, fmt.Errorf("zstd layer: %w", err)
		}
		if err := zw.Close(); err != nil {
			return nil, fmt.Errorf("zstd layer: %w", err)
		}
	default:
		return nil, fmt.Errorf("unknown compression %v", c)
	}
	return buf.Bytes(), nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

// Write implements io.Writer.
func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
