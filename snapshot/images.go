package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"

	"github.com/ctrforensics/ctrforensics/forensic/imagefs"
	"github.com/ctrforensics/ctrforensics/mountutil"
	"github.com/ctrforensics/ctrforensics/snapshot/contentdir"
)

// HasImage tells whether the client's namespace holds an image named ref. A
// namespace that does not exist is a *NamespaceNotFoundError.
func (c *Client) HasImage(ctx context.Context, ref string) (bool, error) {
	_, err := c.c.ImageService().Get(c.nsctx(ctx, ""), ref)
	switch {
	case err == nil:
		return true, nil
	case errdefs.IsNotFound(err):
		return false, c.CheckNamespace(ctx)
	}
	return false, fmt.Errorf("load image %s: %w", ref, err)
}

// ImageSummary is one line of `image ls`.
type ImageSummary struct {
	Name string
	// Manifest is the digest of the image's target: a manifest, or an index for
	// a multi-platform image.
	Manifest  digest.Digest
	Config    digest.Digest
	Platforms []string
	// Size is the content the host platform's image needs: manifest, config and layers.
	Size    int64
	Created time.Time
	// Unpacked maps a snapshotter to whether the image's layers are unpacked in it.
	Unpacked map[string]bool
}

// Snapshotters ctrforensics checks for unpacked images.
var knownSnapshotters = []string{"overlayfs", "native"}

// Images lists the namespace's images, sorted by name.
func (c *Client) Images(ctx context.Context) ([]ImageSummary, error) {
	ctx = c.nsctx(ctx, "")
	imgs, err := c.c.ImageService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	sort.Slice(imgs, func(i, j int) bool { return imgs[i].Name < imgs[j].Name })
	out := make([]ImageSummary, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, c.summarize(ctx, img))
	}
	if len(out) == 0 {
		return nil, c.CheckNamespace(ctx)
	}
	return out, nil
}

// summarize describes an image; what cannot be read (blobs discarded, or
// not matching their digests) stays empty.
func (c *Client) summarize(ctx context.Context, img images.Image) ImageSummary {
	s := ImageSummary{Name: img.Name, Manifest: img.Target.Digest, Created: img.CreatedAt.UTC(), Unpacked: map[string]bool{}}
	cs := verified{c.c.ContentStore()}
	if ps, err := images.Platforms(ctx, cs, img.Target); err == nil {
		for _, p := range ps {
			s.Platforms = append(s.Platforms, platforms.Format(p))
		}
	}
	if cfg, err := img.Config(ctx, cs, platforms.Default()); err == nil {
		s.Config = cfg.Digest
		var spec ocispec.Image
		if b, err := content.ReadBlob(ctx, cs, cfg); err == nil && json.Unmarshal(b, &spec) == nil && spec.Created != nil {
			s.Created = spec.Created.UTC()
		}
	}
	if size, err := img.Size(ctx, cs, platforms.Default()); err == nil {
		s.Size = size
	}
	ci := client.NewImage(c.c, img)
	for _, sn := range knownSnapshotters {
		ok, err := ci.IsUnpacked(ctx, sn)
		s.Unpacked[sn] = err == nil && ok
	}
	return s
}

// DiffID returns the DiffID the image config gives layer i, or "".
func (r *ResolvedImage) DiffID(i int) digest.Digest { return diffID(r.Config, i) }

// ResolvedImage is one platform's image: its manifest, config and layers.
type ResolvedImage struct {
	Name         string
	Target       ocispec.Descriptor
	ManifestDesc ocispec.Descriptor
	Manifest     ocispec.Manifest
	ConfigDesc   ocispec.Descriptor
	Config       ocispec.Image
	Platform     string
	// Layers read the layer blobs from the content store, or the unpacked
	// snapshot layers when the blobs are gone (see Notes).
	Layers []imagefs.Layer
	Notes  []string
	// BlobSource says where the layer blobs are read from: the content
	// store's directory on this host, or containerd's content API and why.
	BlobSource string
	// Local is the content store directory some layer blobs are read from,
	// nil when none is.
	Local *contentdir.Store
}

// PlatformError says a platform is not valid (Err), or that an index has no
// manifest for it (Offered lists the platforms it has).
type PlatformError struct {
	Platform string
	Offered  []string
	Err      error
}

func (e *PlatformError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("invalid platform %q: %v", e.Platform, e.Err)
	}
	return fmt.Sprintf("the image has no manifest for %s; it has: %s", e.Platform, strings.Join(e.Offered, ", "))
}

func (e *PlatformError) Unwrap() error { return e.Err }

// ResolveImage reads the image ref for platform ("" for the host's) from the
// content store. When layer blobs were discarded after unpacking, the layers
// are read from the image's snapshots in snapshotter instead, through read-only
// mounts held until the session closes (ResolveImage then needs a session).
func (s *Session) ResolveImage(ctx context.Context, ref, platform, snapshotter string) (*ResolvedImage, error) {
	ctx = s.Context(ctx)
	img, err := s.c.c.ImageService().Get(ctx, ref)
	if errdefs.IsNotFound(err) {
		return nil, s.c.notFound(ctx, "image", ref)
	}
	if err != nil {
		return nil, fmt.Errorf("load image %s: %w", ref, err)
	}
	match := platforms.Default()
	if platform != "" {
		p, err := platforms.Parse(platform)
		if err != nil {
			return nil, &PlatformError{Platform: platform, Err: err}
		}
		match = platforms.Only(p)
	}
	cs := s.c.c.ContentStore()
	r := &ResolvedImage{Name: img.Name, Target: img.Target}
	if r.ManifestDesc, err = manifestFor(ctx, cs, img.Target, match, platform); err != nil {
		return nil, err
	}
	if err := readJSONBlob(ctx, cs, r.ManifestDesc, &r.Manifest); err != nil {
		return nil, err
	}
	r.ConfigDesc = r.Manifest.Config
	if err := readJSONBlob(ctx, cs, r.ConfigDesc, &r.Config); err != nil {
		return nil, err
	}
	r.Platform = platforms.Format(r.Config.Platform)
	if err := s.layers(ctx, r, snapshotter); err != nil {
		return nil, err
	}
	return r, nil
}

// manifestFor picks the manifest of target for the platform.
func manifestFor(ctx context.Context, cs content.Store, target ocispec.Descriptor, match platforms.MatchComparer, want string) (ocispec.Descriptor, error) {
	switch target.MediaType {
	case ocispec.MediaTypeImageManifest, images.MediaTypeDockerSchema2Manifest:
		return target, nil
	case ocispec.MediaTypeImageIndex, images.MediaTypeDockerSchema2ManifestList:
	default:
		return ocispec.Descriptor{}, fmt.Errorf("image target has media type %s: not a manifest or an index", target.MediaType)
	}
	var idx ocispec.Index
	if err := readJSONBlob(ctx, cs, target, &idx); err != nil {
		return ocispec.Descriptor{}, err
	}
	var candidates []ocispec.Descriptor
	var offered []string
	for _, m := range idx.Manifests {
		if m.Platform == nil {
			continue
		}
		offered = append(offered, platforms.Format(*m.Platform))
		if match.Match(*m.Platform) {
			candidates = append(candidates, m)
		}
	}
	if len(candidates) == 0 {
		if want == "" {
			want = platforms.DefaultString()
		}
		return ocispec.Descriptor{}, &PlatformError{Platform: want, Offered: offered}
	}
	sort.SliceStable(candidates, func(i, j int) bool { return match.Less(*candidates[i].Platform, *candidates[j].Platform) })
	return candidates[0], nil
}

func readJSONBlob(ctx context.Context, cs content.Provider, desc ocispec.Descriptor, v any) error {
	b, err := readBlob(ctx, cs, desc)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s %s: %w", desc.MediaType, desc.Digest, err)
	}
	return nil
}

// readBlob reads a small blob (an index, a manifest, a config) whole and
// checks it against desc's digest and size: containerd's content API serves
// the bytes on disk as they are, and these bytes decide which layer blobs,
// hence which digests, the image is checked against.
func readBlob(ctx context.Context, cs content.Provider, desc ocispec.Descriptor) ([]byte, error) {
	b, err := content.ReadBlob(ctx, cs, desc)
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", desc.MediaType, desc.Digest, err)
	}
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("%s %q: %w", desc.MediaType, desc.Digest, err)
	}
	if got := desc.Digest.Algorithm().FromBytes(b); got != desc.Digest || (desc.Size > 0 && int64(len(b)) != desc.Size) {
		return nil, &BlobMismatchError{Digest: desc.Digest, MediaType: desc.MediaType, Got: got, Size: int64(len(b)), WantSize: desc.Size}
	}
	return b, nil
}

// verified serves the small blobs an image listing reads (indexes,
// manifests, configs) whole, each checked against its digest (readBlob), as
// the offline content store does.
type verified struct{ p content.Provider }

// ReaderAt reads the blob desc names, checked.
func (v verified) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	b, err := readBlob(ctx, v.p, desc)
	if err != nil {
		return nil, err
	}
	return blobReader{bytes.NewReader(b)}, nil
}

// blobReader is a blob held in memory.
type blobReader struct{ *bytes.Reader }

func (blobReader) Close() error { return nil }

// BlobMismatchError says a blob read from the content store does not match
// the digest or size that names it.
type BlobMismatchError struct {
	Digest         digest.Digest
	MediaType      string
	Got            digest.Digest
	Size, WantSize int64
}

func (e *BlobMismatchError) Error() string {
	size := fmt.Sprintf("%d bytes", e.Size)
	if e.WantSize > 0 && e.WantSize != e.Size {
		size += fmt.Sprintf(", the descriptor says %d", e.WantSize)
	}
	return fmt.Sprintf("%s %s does not match its digest (content is %s, %s): the content store is damaged or was tampered with",
		e.MediaType, e.Digest, e.Got, size)
}

// layers sets r.Layers from the content store, or from snapshots when any
// blob is missing. Blobs are read straight from the content store's directory
// when this host has it and this process may read it, and through
// containerd's content API otherwise (r.BlobSource says which, and why).
func (s *Session) layers(ctx context.Context, r *ResolvedImage, snapshotter string) error {
	cs := s.c.c.ContentStore()
	local, why := s.c.localContent(ctx)
	missing, direct := 0, 0
	for i, l := range r.Manifest.Layers {
		if _, err := cs.Info(ctx, l.Digest); errdefs.IsNotFound(err) {
			missing++
		} else if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		layer := blobLayer(cs, l, diffID(r.Config, i))
		if local != nil {
			if _, err := local.Info(ctx, l.Digest); err == nil {
				layer = dirLayer(local, l, diffID(r.Config, i))
				direct++
			}
		}
		r.Layers = append(r.Layers, layer)
	}
	if direct > 0 {
		r.Local = local
	}
	switch {
	case local == nil:
		r.BlobSource = "layer blobs read through containerd's content API: " + why
	case direct == len(r.Layers):
		r.BlobSource = "layer blobs read straight from the content store directory " + local.Path() + " (digests checked while reading)"
	default:
		r.BlobSource = fmt.Sprintf("%d of %d layer blobs read straight from the content store directory %s, the others through containerd's content API (not in that directory)",
			direct, len(r.Layers), local.Path())
	}
	if missing == 0 {
		return nil
	}
	r.Notes = append(r.Notes, fmt.Sprintf("%d of %d layer blobs are not in containerd's content store (discarded after unpacking?): reading the unpacked layers from snapshotter %s instead (a directory a layer did not list but needed shows the time it was unpacked)", missing, len(r.Manifest.Layers), snapshotter))
	return s.snapshotLayers(ctx, r, snapshotter)
}

func diffID(cfg ocispec.Image, i int) digest.Digest {
	if i < len(cfg.RootFS.DiffIDs) {
		return cfg.RootFS.DiffIDs[i]
	}
	return ""
}

func blobLayer(cs content.Store, desc ocispec.Descriptor, diffID digest.Digest) imagefs.Layer {
	return imagefs.Layer{Digest: desc.Digest, DiffID: diffID, MediaType: desc.MediaType,
		Open: func(ctx context.Context) (io.ReadCloser, error) {
			ra, err := cs.ReaderAt(ctx, desc)
			if err != nil {
				return nil, fmt.Errorf("open layer %s: %w", desc.Digest, err)
			}
			return readCloser{io.NewSectionReader(ra, 0, ra.Size()), ra}, nil
		}}
}

// dirLayer reads a layer blob from the content store's directory, which
// checks its digest as it is read.
func dirLayer(local *contentdir.Store, desc ocispec.Descriptor, diffID digest.Digest) imagefs.Layer {
	return imagefs.Layer{Digest: desc.Digest, DiffID: diffID, MediaType: desc.MediaType, DigestChecked: true,
		Open: func(ctx context.Context) (io.ReadCloser, error) {
			b, err := local.Open(desc)
			if err != nil {
				return nil, fmt.Errorf("open layer %s: %w", desc.Digest, err)
			}
			return readCloser{b.Reader(), b}, nil
		}}
}

// localContent opens the daemon's content store directory when this host
// has it and this process may read it; otherwise it says why not.
func (c *Client) localContent(ctx context.Context) (*contentdir.Store, string) {
	root, err := c.contentRoot(ctx)
	if err != nil {
		return nil, err.Error()
	}
	st, err := contentdir.Open(root)
	if err != nil {
		return nil, fmt.Sprintf("its content store directory is not readable here (%v)", err)
	}
	return st, ""
}

// contentRoot says where the local content store is: a disk root's own, or
// the one the daemon names (containerd 1.6 and 2.x export it as the content
// plugin's "root").
func (c *Client) contentRoot(ctx context.Context) (string, error) {
	if c.disk != nil {
		return filepath.Join(c.disk.path, contentdir.Dir), nil
	}
	if conn, ok := c.c.Conn().(*grpc.ClientConn); !ok || conn == nil {
		return "", errors.New("no daemon connection to ask where the content store is")
	}
	resp, err := c.c.IntrospectionService().Plugins(ctx, "type=="+contentPlugin+",id==content")
	if err != nil {
		return "", fmt.Errorf("the daemon did not say where its content store is (%v)", err)
	}
	for _, p := range resp.Plugins {
		if root := p.Exports["root"]; root != "" && p.InitErr == nil {
			return root, nil
		}
	}
	return "", errors.New("the daemon has no local content store plugin, or does not say where it is")
}

// contentPlugin is the plugin type of containerd's content store.
const contentPlugin = "io.containerd.content.v1"

type readCloser struct {
	io.Reader
	io.Closer
}

// snapshotLayers reads the layers from the image's committed snapshots: a
// view of the top one gives, on overlayfs, one directory per layer, each
// mounted read-only for the rest of the session.
func (s *Session) snapshotLayers(ctx context.Context, r *ResolvedImage, snapshotter string) error {
	chain := identity.ChainID(r.Config.RootFS.DiffIDs).String()
	mounts, err := s.View(ctx, snapshotter, chain)
	if err != nil {
		return fmt.Errorf("the image is not unpacked in %s either (%w): its layers cannot be read", snapshotter, err)
	}
	var dirs []string // bottom first
	switch mounts[0].Type {
	case "overlay":
		o, err := mountutil.ParseOverlay(mounts[0])
		if err != nil {
			return err
		}
		for i := len(o.Lowers) - 1; i >= 0; i-- {
			dirs = append(dirs, o.Lowers[i])
		}
	default:
		dirs = []string{mounts[0].Source}
		r.Notes = append(r.Notes, "snapshotter "+snapshotter+" keeps no per-layer directories: the whole filesystem is shown as one layer")
	}
	r.Layers = r.Layers[:0]
	for i, d := range dirs {
		root, release, err := s.holdMount(ctx, fmt.Sprintf("layer %d of %s", i, r.Name), mountutil.ReadOnlyMounts([]string{d}))
		if err != nil {
			return err
		}
		s.releases = append(s.releases, release)
		// A layer rebuilt from its directory is not byte for byte the tar it was
		// unpacked from: it has no DiffID to check against.
		r.Layers = append(r.Layers, imagefs.DirLayer(root))
	}
	return nil
}

// SaveImage writes the image as an OCI image layout archive that also holds a
// docker-compatible manifest.json, for the platform ("" for the host's), the
// way `ctr images export` and `docker image save` do.
func (c *Client) SaveImage(ctx context.Context, ref, platform string, w io.Writer) error {
	ctx = c.nsctx(ctx, "")
	match := platforms.Default()
	if platform != "" {
		p, err := platforms.Parse(platform)
		if err != nil {
			return &PlatformError{Platform: platform, Err: err}
		}
		match = platforms.Only(p)
	}
	if _, err := c.c.ImageService().Get(ctx, ref); errdefs.IsNotFound(err) {
		return c.notFound(ctx, "image", ref)
	}
	is := c.c.ImageService()
	if err := archive.Export(ctx, c.c.ContentStore(), w, archive.WithImage(is, ref), archive.WithPlatform(match)); err != nil {
		return fmt.Errorf("save %s: %w", ref, err)
	}
	return nil
}
