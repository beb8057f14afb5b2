package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PutFunc stores one file of an export, of size bytes, at a path relative
// to its root.
type PutFunc func(rel string, size int64, r io.Reader) error

// Export is what ExportLayout could not write, with the reasons.
type Export struct {
	Notes []string
	// Missing are the digests of referenced blobs containerd does not hold
	// (other platforms' manifests never pulled, layers discarded after
	// unpacking); an OCI layout may lack blobs, and verify accepts these.
	Missing []string
}

// ExportLayout writes the image ref as an OCI image layout (oci-layout,
// index.json, blobs/sha256/...) with put. Blobs are copied byte for byte from
// containerd's content store, so every digest is containerd's. Index and
// manifest and config blobs are always written; layer blobs of the host's
// platform only with layers. Blobs missing from the content store are skipped
// and named in the result.
func (c *Client) ExportLayout(ctx context.Context, ref string, layers bool, put PutFunc) (*Export, error) {
	ctx = c.nsctx(ctx, "")
	img, err := c.c.ImageService().Get(ctx, ref)
	if errdefs.IsNotFound(err) {
		return nil, c.notFound(ctx, "image", ref)
	}
	if err != nil {
		return nil, fmt.Errorf("load image %s: %w", ref, err)
	}
	e := &exporter{ctx: ctx, cs: c.c.ContentStore(), put: put, layers: layers, platform: platforms.Default(), done: map[digest.Digest]bool{}}
	if _, err := e.cs.Info(ctx, img.Target.Digest); err != nil {
		return &e.out, fmt.Errorf("image %s: its %s is not in containerd's content store: %w", ref, img.Target.MediaType, err)
	}
	if err := e.blob(img.Target, true); err != nil {
		return &e.out, err
	}
	target := img.Target
	target.Annotations = map[string]string{images.AnnotationImageName: img.Name, ocispec.AnnotationRefName: refName(img.Name)}
	index := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{target}}
	if err := e.putJSON("index.json", index); err != nil {
		return &e.out, err
	}
	return &e.out, e.putJSON(ocispec.ImageLayoutFile, ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
}

type exporter struct {
	ctx      context.Context
	cs       content.Store
	put      PutFunc
	layers   bool
	platform platforms.MatchComparer
	done     map[digest.Digest]bool
	out      Export
}

// missing records a blob containerd does not hold.
func (e *exporter) missing(desc ocispec.Descriptor, why string) {
	e.out.Notes = append(e.out.Notes, fmt.Sprintf("blob %s (%s) is not in containerd's content store (%s): not exported", desc.Digest, desc.MediaType, why))
	e.out.Missing = append(e.out.Missing, desc.Digest.String())
}

// blob writes desc and what it references; wantLayers says whether layers
// below it belong to the host's platform.
func (e *exporter) blob(desc ocispec.Descriptor, wantLayers bool) error {
	if e.done[desc.Digest] {
		return nil
	}
	e.done[desc.Digest] = true
	if _, err := e.cs.Info(e.ctx, desc.Digest); errdefs.IsNotFound(err) {
		why := "discarded after unpacking?"
		if desc.Platform != nil && !e.platform.Match(*desc.Platform) {
			why = "another platform, never pulled"
		}
		e.missing(desc, why)
		return nil
	}
	switch desc.MediaType {
	case ocispec.MediaTypeImageIndex, images.MediaTypeDockerSchema2ManifestList:
		var idx ocispec.Index
		if err := e.readJSON(desc, &idx); err != nil {
			return err
		}
		for _, m := range idx.Manifests {
			if err := e.blob(m, wantLayers && (m.Platform == nil || e.platform.Match(*m.Platform))); err != nil {
				return err
			}
		}
		return nil
	case ocispec.MediaTypeImageManifest, images.MediaTypeDockerSchema2Manifest:
		var m ocispec.Manifest
		if err := e.readJSON(desc, &m); err != nil {
			return err
		}
		if err := e.blob(m.Config, false); err != nil {
			return err
		}
		for _, l := range m.Layers {
			if e.layers && wantLayers {
				if err := e.blob(l, false); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return e.copy(desc)
}

// readJSON writes a small blob and decodes it.
func (e *exporter) readJSON(desc ocispec.Descriptor, v any) error {
	b, err := content.ReadBlob(e.ctx, e.cs, desc)
	if err != nil {
		return fmt.Errorf("read %s: %w", desc.Digest, err)
	}
	if err := e.put(blobPath(desc.Digest), int64(len(b)), bytes.NewReader(b)); err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// copy streams a blob; a blob containerd no longer holds is noted.
func (e *exporter) copy(desc ocispec.Descriptor) error {
	ra, err := e.cs.ReaderAt(e.ctx, desc)
	if errdefs.IsNotFound(err) {
		e.missing(desc, "discarded after unpacking?")
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", desc.Digest, err)
	}
	defer ra.Close()
	return e.put(blobPath(desc.Digest), ra.Size(), io.NewSectionReader(ra, 0, ra.Size()))
}

func (e *exporter) putJSON(rel string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return e.put(rel, int64(len(b)), bytes.NewReader(b))
}

func blobPath(d digest.Digest) string {
	return path.Join(ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
}

// refName is the tag part of a reference, what OCI layouts put in
// org.opencontainers.image.ref.name.
func refName(name string) string {
	if strings.Contains(name, "@") {
		return name
	}
	for i := len(name) - 1; i >= 0; i-- {
		switch name[i] {
		case ':':
			return name[i+1:]
		case '/', '@':
			return name
		}
	}
	return name
}
