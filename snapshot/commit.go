package snapshot

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/attest"
	"github.com/ctrforensics/ctrforensics/forensic/bundle"
	"github.com/ctrforensics/ctrforensics/forensic/changetar"
	"github.com/ctrforensics/ctrforensics/forensic/diff"
	"github.com/ctrforensics/ctrforensics/forensic/ocilayout"
	"github.com/ctrforensics/ctrforensics/internal/atomicfile"
	"github.com/ctrforensics/ctrforensics/internal/version"
)

// Annotations of a committed image's manifest, beside the OCI base image
// annotations (org.opencontainers.image.base.name and .digest).
const (
	AnnotationSourceContainer = "io.ctrforensics.commit.container"
	AnnotationSourceNamespace = "io.ctrforensics.commit.namespace"
	AnnotationTool            = "io.ctrforensics.commit.tool"
	AnnotationCase            = "io.ctrforensics.commit.case"
	// AnnotationRebuiltLayers lists the image layers whose blobs containerd
	// had discarded and that were rebuilt from the unpacked snapshots (new
	// digests), by index from the bottom, comma-separated.
	AnnotationRebuiltLayers = "io.ctrforensics.commit.rebuilt-layers"
)

// purposeCommit is the purpose of a commit's lease.
const purposeCommit = "commit"

// CommitPredicateType is the in-toto predicate of a commit attestation.
const CommitPredicateType = "https://github.com/ctrforensics/ctrforensics/commit/v1"

// CommitOptions tune Commit.
type CommitOptions struct {
	// Output is a directory (new or empty) or a FILE.tar.
	Output string
	// Name is the image name recorded in the layout's index
	// (io.containerd.image.name, and its tag as the OCI ref name).
	Name string
	// Import also creates the image Name in containerd.
	Import bool
	// Case and Examiner go into the history entry and the attestation.
	Case, Examiner string
	// Created is the committed image's creation time; zero takes the newest
	// modification time of the committed changes (the image's own creation
	// time when there are none), so that two commits of an unchanged
	// container agree.
	Created time.Time
	// Pause pauses a running task while its changes are read.
	Pause bool
	// SignKey signs an attestation of the new manifest, written next to the
	// layout (AttestationPath).
	SignKey ed25519.PrivateKey
	Diff    DiffOptions
}

// CommitResult describes a committed image.
type CommitResult struct {
	// Path is the layout written.
	Path     string
	Manifest ocispec.Descriptor
	Config   ocispec.Descriptor
	// Layer is the new layer, DiffID its uncompressed digest.
	Layer  ocispec.Descriptor
	DiffID digest.Digest
	// SourceImage and SourceManifest name the image the container runs.
	SourceImage    string
	SourceManifest digest.Digest
	Created        time.Time
	// Changes counts the changes in the layer; RuntimeLeftOut those left out
	// as the runtime's (mount points of the spec).
	Changes, RuntimeLeftOut int
	Method                  diff.Method
	// Rebuilt are the indexes of the image layers rebuilt from snapshots.
	Rebuilt []int
	Paused  bool
	// Attestation is the DSSE envelope's path, when signed.
	Attestation string
	// Imported is the image created in containerd, when asked.
	Imported string
	Effects  []SideEffect
	Notes    []string
}

// AttestationPath is where Commit writes the attestation of the layout at
// output.
func AttestationPath(output string) string { return output + ".dsse.json" }

// ImageExistsError says an image to create is already there.
type ImageExistsError struct{ Name string }

func (e *ImageExistsError) Error() string {
	return fmt.Sprintf("image %s already exists in containerd (never replaced)", e.Name)
}

// Commit writes the container's image plus one new layer holding the
// container's changes as an OCI image layout at opts.Output, without writing
// anything into containerd unless opts.Import. The image's blobs are copied
// byte for byte; blobs discarded after unpacking are rebuilt from the image's
// snapshots (new digests, listed in the result). The new layer is built from
// the diff (on overlayfs, O(changes)); paths the runtime created are left out.
// Nothing appears at opts.Output until the layout is complete; a killed run
// leaves a partial layout named on a lease, which cleanup removes. A client
// of a disk root commits too, but neither imports nor pauses (a
// *DiskRootError).
func (c *Client) Commit(ctx context.Context, ctr *Container, opts CommitOptions) (*CommitResult, error) {
	if ctr.Info.Image == "" {
		return nil, fmt.Errorf("container %s names no image to commit onto", ctr.Info.ID)
	}
	if _, err := reference.ParseNormalizedNamed(opts.Name); err != nil {
		return nil, fmt.Errorf("image name %q: %w", opts.Name, err)
	}
	if err := c.refuseOffline(opts); err != nil {
		return nil, err
	}
	if opts.Import {
		if err := c.refuseExistingImage(ctx, ctr.Namespace, opts.Name); err != nil {
			return nil, err
		}
	}
	if err := c.refuseOutputInside(ctx, ctr, "output", opts.Output); err != nil {
		return nil, err
	}
	w, err := ocilayout.Create(opts.Output)
	if err != nil {
		return nil, err
	}
	s, err := c.Begin(ctx, ctr.Namespace, SessionOptions{Purpose: purposeCommit, Labels: map[string]string{LabelPartial: w.Partial()}})
	if err != nil {
		w.Abandon()
		return nil, err
	}
	s.Record("partial output", w.Partial()+" (named on this lease until the layout is in place)")
	res, err := c.commit(ctx, s, ctr, opts, w)
	if err != nil {
		w.Abandon() // nothing once the layout is in place
		return res, errors.Join(err, s.Close(ctx))
	}
	if err := s.Close(ctx); err != nil {
		return nil, fmt.Errorf("layout written to %s, but %w", res.Path, err)
	}
	res.Effects = s.Effects()
	if opts.Import {
		if err := c.importLayout(ctx, ctr.Namespace, res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// refuseOffline refuses, for a disk root, what only a live host can do.
func (c *Client) refuseOffline(opts CommitOptions) error {
	switch {
	case c.disk == nil:
		return nil
	case opts.Import:
		return &DiskRootError{Op: OpCreateImage}
	case opts.Pause:
		return &DiskRootError{Op: OpPause}
	}
	return nil
}

func (c *Client) refuseExistingImage(ctx context.Context, ns, name string) error {
	_, err := c.c.ImageService().Get(c.nsctx(ctx, ns), name)
	switch {
	case err == nil:
		return &ImageExistsError{Name: name}
	case errdefs.IsNotFound(err):
		return nil
	}
	return fmt.Errorf("look up image %s: %w", name, err)
}

// commit builds the layout in w and puts it in place.
func (c *Client) commit(ctx context.Context, s *Session, ctr *Container, opts CommitOptions, w *ocilayout.Writer) (*CommitResult, error) {
	task, err := c.task(ctx, ctr)
	if err != nil {
		return nil, err
	}
	paused := false
	if opts.Pause {
		if paused, err = s.Pause(ctx, task, ctr); err != nil { // resumed by s.Close
			return nil, err
		}
	}
	r, err := s.Rootfs(ctx, ctr)
	if err != nil {
		return nil, err
	}
	d, err := s.DiffRootfs(ctx, r, ctr, opts.Diff)
	if err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	res, err := c.buildCommit(ctx, s, ctr, opts, w, r, d)
	if err != nil {
		return nil, err
	}
	res.Paused = paused
	index := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{namedManifest(res.Manifest, opts.Name)}}
	if res.Path, err = w.Commit(index); err != nil {
		return nil, err
	}
	if opts.SignKey != nil {
		// After the layout is in place: a killed run leaves no signature of
		// a layout that never appeared.
		if err := signCommit(ctr, opts, res); err != nil {
			return res, fmt.Errorf("layout written to %s, but not signed: %w", res.Path, err)
		}
	}
	return res, nil
}

// namedManifest is the index entry of a committed manifest named name.
func namedManifest(m ocispec.Descriptor, name string) ocispec.Descriptor {
	m.Annotations = map[string]string{"io.containerd.image.name": name, ocispec.AnnotationRefName: refName(name)}
	return m
}

// blobSink stores the blobs of a committed image (ocilayout.Writer does).
type blobSink interface {
	PutBlob(mediaType string, r io.Reader) (ocispec.Descriptor, error)
	PutLayer(fn func(io.Writer) error) (ocispec.Descriptor, digest.Digest, error)
}

// buildCommit writes the blobs of the committed image into sink: the image's
// layers, the layer of the changes d found in r, the config and the manifest.
func (c *Client) buildCommit(ctx context.Context, s *Session, ctr *Container, opts CommitOptions, sink blobSink, r *Rootfs, d *diff.Diff) (*CommitResult, error) {
	res := &CommitResult{SourceImage: ctr.Info.Image}
	img, err := s.ResolveImage(ctx, ctr.Info.Image, "", ctr.Info.Snapshotter)
	if err != nil {
		return nil, err
	}
	res.SourceManifest = img.ManifestDesc.Digest
	layers, diffIDs, err := c.copyLayers(ctx, s, img, sink, res)
	if err != nil {
		return nil, err
	}
	if err := writeChangesLayer(ctx, s, r, d, opts, sink, res); err != nil {
		return nil, err
	}
	if err := c.writeManifest(ctx, s, ctr, img, opts, sink, res, append(layers, res.Layer), append(diffIDs, res.DiffID)); err != nil {
		return nil, err
	}
	return res, nil
}

// copyLayers copies the image's layer blobs into w, byte for byte, or
// rebuilds those containerd no longer holds from the image's snapshots.
func (c *Client) copyLayers(ctx context.Context, s *Session, img *ResolvedImage, w blobSink, res *CommitResult) ([]ocispec.Descriptor, []digest.Digest, error) {
	ctx = s.Context(ctx)
	cs := c.c.ContentStore()
	res.Notes = append(res.Notes, img.Notes...)
	var layers []ocispec.Descriptor
	var diffIDs []digest.Digest
	for i, l := range img.Manifest.Layers {
		desc, id, err := copyBlob(ctx, cs, l, w)
		if errdefs.IsNotFound(err) {
			desc, id, err = rebuildLayer(ctx, img, i, w)
			if err == nil {
				res.Rebuilt = append(res.Rebuilt, i)
				res.Notes = append(res.Notes, fmt.Sprintf("layer %d: blob %s was discarded after unpacking; rebuilt from the unpacked snapshot as %s (new digest; its files are the layer's, its bytes are not the original blob's)", i, l.Digest, desc.Digest))
			}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("layer %d (%s): %w", i, l.Digest, err)
		}
		if id == "" {
			id = img.DiffID(i)
		}
		layers, diffIDs = append(layers, desc), append(diffIDs, id)
	}
	return layers, diffIDs, nil
}

// copyBlob copies a blob from the content store; it must keep its digest.
func copyBlob(ctx context.Context, cs content.Store, desc ocispec.Descriptor, w blobSink) (ocispec.Descriptor, digest.Digest, error) {
	ra, err := cs.ReaderAt(ctx, desc)
	if err != nil {
		return desc, "", err
	}
	defer ra.Close()
	got, err := w.PutBlob(desc.MediaType, io.NewSectionReader(ra, 0, ra.Size()))
	if err != nil {
		return desc, "", err
	}
	if got.Digest != desc.Digest || got.Size != desc.Size {
		return desc, "", fmt.Errorf("content store gave %s (%d bytes), the manifest says %s (%d bytes)", got.Digest, got.Size, desc.Digest, desc.Size)
	}
	return desc, "", nil
}

// rebuildLayer writes layer i from the image's unpacked snapshot.
func rebuildLayer(ctx context.Context, img *ResolvedImage, i int, w blobSink) (ocispec.Descriptor, digest.Digest, error) {
	if len(img.Layers) != len(img.Manifest.Layers) || img.Layers[i].Digest != "" {
		return ocispec.Descriptor{}, "", errors.New("the blob is not in containerd's content store and the snapshotter keeps no per-layer directory to rebuild it from")
	}
	return w.PutLayer(func(dst io.Writer) error {
		rc, err := img.Layers[i].Open(ctx)
		if err != nil {
			return err
		}
		defer rc.Close()
		_, err = io.Copy(dst, rc)
		return err
	})
}

// writeChangesLayer writes the changes d found in r, but the runtime's
// paths, as one layer.
func writeChangesLayer(ctx context.Context, s *Session, r *Rootfs, d *diff.Diff, opts CommitOptions, w blobSink, res *CommitResult) error {
	res.Method, res.Notes = d.Method, append(res.Notes, d.Notes...)
	changes := make([]forensic.Change, 0, len(d.Changes))
	for _, ch := range d.Changes {
		if ch.Runtime {
			res.RuntimeLeftOut++
			continue
		}
		changes = append(changes, ch)
	}
	if res.RuntimeLeftOut > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d changes the container runtime made (mount points of the spec, see diff --all) are left out of the layer", res.RuntimeLeftOut))
	}
	res.Changes = len(changes)
	res.Created = newestChange(changes)
	mounts, err := r.ReadOnlyMounts()
	if err != nil {
		return err
	}
	return s.WithMount(ctx, "container "+r.Key, mounts, func(root string) error {
		var err error
		res.Layer, res.DiffID, err = w.PutLayer(func(dst io.Writer) error {
			st, err := changetar.WriteChangesTar(ctx, dst, root, changes, changetar.Options{MaxBytes: opts.Diff.MaxHashBytes})
			if err == nil {
				res.Notes = append(res.Notes, st.Notes...)
			}
			return err
		})
		return err
	})
}

// newestChange is the newest modification time of the changes that are in
// the layer (zero when there are none).
func newestChange(changes []forensic.Change) time.Time {
	var t time.Time
	for _, ch := range changes {
		if ch.Kind != forensic.Deleted && ch.Meta != nil && ch.Meta.Mtime.After(t) {
			t = ch.Meta.Mtime
		}
	}
	return t.UTC()
}

// writeManifest writes the extended config and the new manifest.
func (c *Client) writeManifest(ctx context.Context, s *Session, ctr *Container, img *ResolvedImage, opts CommitOptions, w blobSink, res *CommitResult, layers []ocispec.Descriptor, diffIDs []digest.Digest) error {
	switch {
	case !opts.Created.IsZero():
		res.Created = opts.Created.UTC()
	case res.Created.IsZero() && img.Config.Created != nil:
		res.Created = img.Config.Created.UTC()
	case res.Created.IsZero():
		res.Created = time.Unix(0, 0).UTC()
	}
	raw, err := content.ReadBlob(s.Context(ctx), c.c.ContentStore(), img.ConfigDesc)
	if err != nil {
		return fmt.Errorf("read image config: %w", err)
	}
	created := res.Created
	entry := ocispec.History{Created: &created, CreatedBy: "ctrforensics commit " + ctr.Info.ID + " (namespace " + ctr.Namespace + ")",
		Author: opts.Examiner, Comment: "changes of container " + ctr.Info.ID}
	if opts.Case != "" {
		entry.Comment = "case " + opts.Case + ": " + entry.Comment
	}
	cfg, err := ocilayout.Extend(raw, diffIDs, entry, res.Created)
	if err != nil {
		return err
	}
	if res.Config, err = w.PutBlob(ocispec.MediaTypeImageConfig, bytes.NewReader(cfg)); err != nil {
		return err
	}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: res.Config, Layers: layers, Annotations: commitAnnotations(ctr, img, opts, res)}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	res.Manifest, err = w.PutBlob(ocispec.MediaTypeImageManifest, bytes.NewReader(b))
	return err
}

func commitAnnotations(ctr *Container, img *ResolvedImage, opts CommitOptions, res *CommitResult) map[string]string {
	a := map[string]string{
		ocispec.AnnotationBaseImageName:   img.Name,
		ocispec.AnnotationBaseImageDigest: img.ManifestDesc.Digest.String(),
		ocispec.AnnotationCreated:         forensic.FormatTime(res.Created),
		AnnotationSourceContainer:         ctr.Info.ID,
		AnnotationSourceNamespace:         ctr.Namespace,
		AnnotationTool:                    "ctrforensics " + version.String(),
	}
	if opts.Case != "" {
		a[AnnotationCase] = opts.Case
	}
	if len(res.Rebuilt) > 0 {
		a[AnnotationRebuiltLayers] = joinInts(res.Rebuilt)
	}
	return a
}

// signCommit writes a DSSE envelope over an in-toto statement whose subject
// is the new manifest.
func signCommit(ctr *Container, opts CommitOptions, res *CommitResult) error {
	pred, err := json.Marshal(map[string]any{
		"source_container": ctr.Info.ID, "namespace": ctr.Namespace, "source_image": res.SourceImage,
		"source_manifest": res.SourceManifest, "examiner": opts.Examiner, "case": opts.Case,
		"committed_at": forensic.FormatTime(time.Now()), "created": forensic.FormatTime(res.Created),
		"layer": res.Layer.Digest, "diff_id": res.DiffID, "rebuilt_layers": res.Rebuilt, "tool": version.String(),
	})
	if err != nil {
		return err
	}
	st := &attest.Statement{Type: attest.StatementType, PredicateType: CommitPredicateType, Predicate: pred,
		Subject: []attest.Subject{{Name: opts.Name, Digest: map[string]string{"sha256": res.Manifest.Digest.Encoded()}}}}
	env, err := attest.SignStatement(st, opts.SignKey)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return err
	}
	p := AttestationPath(res.Path)
	if err := atomicfile.WriteNew(p, func(f *os.File) error { _, err := f.Write(append(b, '\n')); return err }); err != nil {
		return fmt.Errorf("write attestation: %w", err)
	}
	res.Attestation = p
	return nil
}

// importLayout creates the committed image in containerd from the layout.
// containerd's importer holds its own lease while it writes the blobs and
// releases it once the image references them.
func (c *Client) importLayout(ctx context.Context, ns string, res *CommitResult) error {
	pr, pw := io.Pipe()
	go func() {
		if !ocilayout.IsTar(res.Path) {
			pw.CloseWithError(ocilayout.WriteTar(res.Path, pw))
			return
		}
		f, err := os.Open(res.Path)
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		defer f.Close()
		_, err = io.Copy(pw, f)
		pw.CloseWithError(err)
	}()
	imgs, err := c.c.Import(c.nsctx(context.WithoutCancel(ctx), ns), pr)
	pr.CloseWithError(errors.New("import ended"))
	if err != nil {
		return fmt.Errorf("layout written to %s, but importing it into containerd failed: %w", res.Path, err)
	}
	for _, img := range imgs {
		res.Imported = img.Name
		res.Effects = append(res.Effects, SideEffect{Time: time.Now().UTC(), Action: "image created",
			Detail: fmt.Sprintf("%s in namespace %s -> %s (the import's lease released)", img.Name, ns, img.Target.Digest)})
	}
	return nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// CommittedRefName is the OCI ref name of the committed manifest in a
// bundle's image layout.
const CommittedRefName = "committed"

// bagSink stores a committed image's blobs into a bundle's image layout,
// each once: blobs are staged (hashed) in a scratch layout, then copied.
type bagSink struct {
	w       *bundle.Writer
	written map[string]bool
	scratch *ocilayout.Writer
	dir     string
}

func newBagSink(w *bundle.Writer, written map[string]bool) (*bagSink, error) {
	dir, err := os.MkdirTemp("", "ctrforensics-commit-")
	if err != nil {
		return nil, fmt.Errorf("create scratch directory: %w", err)
	}
	scratch, err := ocilayout.Create(filepath.Join(dir, "layout"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &bagSink{w: w, written: written, scratch: scratch, dir: dir}, nil
}

func (b *bagSink) close() {
	b.scratch.Abandon()
	os.RemoveAll(b.dir)
}

func (b *bagSink) PutBlob(mediaType string, r io.Reader) (ocispec.Descriptor, error) {
	desc, err := b.scratch.PutBlob(mediaType, r)
	if err != nil {
		return desc, err
	}
	return desc, b.copy(desc.Digest)
}

func (b *bagSink) PutLayer(fn func(io.Writer) error) (ocispec.Descriptor, digest.Digest, error) {
	desc, diffID, err := b.scratch.PutLayer(fn)
	if err != nil {
		return desc, diffID, err
	}
	return desc, diffID, b.copy(desc.Digest)
}

// copy puts a staged blob into the bundle unless it is there already.
func (b *bagSink) copy(d digest.Digest) error {
	rel := ocilayout.BlobPath(d)
	if b.written[rel] {
		return nil
	}
	f, err := b.scratch.Open(d)
	if err != nil {
		return err
	}
	defer f.Close()
	defer os.Remove(f.Name()) // the scratch copy is no longer needed
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	b.written[rel] = true
	return b.w.PutSized(bundle.ImagePath(rel), fi.Size(), func(dst io.Writer) error {
		_, err := io.Copy(dst, f)
		return err
	})
}

// writeCommitted adds the committed image (the image plus the changes d
// found in r, as Commit builds it) to a bundle's image layout, whose blobs
// already written are named in written, and writes its index.json: the
// image's entry from index and the committed manifest, ref name
// CommittedRefName.
func (c *Client) writeCommitted(ctx context.Context, s *Session, ctr *Container, w *bundle.Writer, opts CollectOptions, acq *bundle.Acquisition, r *Rootfs, d *diff.Diff, written map[string]bool, index []byte) error {
	sink, err := newBagSink(w, written)
	if err != nil {
		return err
	}
	defer sink.close()
	res, err := c.buildCommit(ctx, s, ctr, CommitOptions{Case: opts.Case, Examiner: opts.Examiner, Diff: opts.Diff}, sink, r, d)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(index, &idx); err != nil {
		return fmt.Errorf("decode image index: %w", err)
	}
	m := res.Manifest
	m.Annotations = map[string]string{ocispec.AnnotationRefName: CommittedRefName}
	idx.Manifests = append(idx.Manifests, m)
	for _, n := range res.Notes {
		if !slices.Contains(acq.Notes, n) {
			acq.Notes = append(acq.Notes, "commit: "+n)
		}
	}
	acq.CommittedManifest = m.Digest.String()
	return w.PutJSON(bundle.ImagePath(ocispec.ImageIndexFile), idx)
}
