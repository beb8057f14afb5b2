package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/containerd/containerd/v2/core/mount"

	"github.com/ctrforensics/ctrforensics/mountutil"
)

// Rootfs is a container's root filesystem as its snapshotter stores it.
type Rootfs struct {
	Snapshotter string
	// Key is the active snapshot; Parent the committed image snapshot below it.
	Key, Parent string
	// mounts are the snapshotter's writable mounts: never mounted as they are.
	mounts []mount.Mount
	// overlay is the layer stack when the snapshot is an overlay; overlayErr
	// says why the fast path cannot read it (overlay may still be set).
	overlay    *mountutil.Overlay
	overlayErr error
	// image is the image root the session holds mounted for this rootfs
	// (HoldImage); "" until then.
	image string
}

// Rootfs resolves the container's active snapshot and adds it to the lease.
func (s *Session) Rootfs(ctx context.Context, ctr *Container) (*Rootfs, error) {
	info, mounts, err := s.c.ActiveSnapshot(ctx, ctr)
	if err != nil {
		return nil, err
	}
	if err := s.Protect(ctx, ctr.Info.Snapshotter, ctr.Info.SnapshotKey); err != nil {
		return nil, err
	}
	r := &Rootfs{Snapshotter: ctr.Info.Snapshotter, Key: info.Name, Parent: info.Parent, mounts: mounts}
	r.overlay, r.overlayErr = overlayOf(mounts)
	return r, nil
}

// overlayOf interprets a snapshot's mounts as an overlay layer stack.
func overlayOf(mounts []mount.Mount) (*mountutil.Overlay, error) {
	if len(mounts) != 1 {
		return nil, fmt.Errorf("snapshot has %d mounts", len(mounts))
	}
	if mounts[0].Type != "overlay" {
		return nil, fmt.Errorf("snapshot is a %s mount, not overlay", mounts[0].Type)
	}
	o, err := mountutil.ParseOverlay(mounts[0])
	if err != nil {
		return nil, err
	}
	if o.Upper == "" {
		return nil, errors.New("overlay has no upper directory")
	}
	return o, o.FastPathError()
}

// UpperDir returns the overlay upper directory: exactly the container's own
// changes. The error says why there is none usable (another snapshotter, or
// overlay options whose effect is not known).
func (r *Rootfs) UpperDir() (string, error) {
	if r.overlayErr != nil {
		return "", r.overlayErr
	}
	return r.overlay.Upper, nil
}

// ReadOnlyMounts returns mounts of the container's whole filesystem, read-only.
func (r *Rootfs) ReadOnlyMounts() ([]mount.Mount, error) {
	return mountutil.ReadOnly(r.mounts)
}

// UpperOnlyMounts returns a read-only bind mount of the upper directory alone,
// as it is on disk (whiteouts included).
func (r *Rootfs) UpperOnlyMounts() ([]mount.Mount, error) {
	if r.overlay == nil {
		return nil, fmt.Errorf("the upper layer alone can be shown only for an overlay snapshot: %w", r.overlayErr)
	}
	return mountutil.ReadOnlyMounts([]string{r.overlay.Upper}), nil
}

// ImageMounts returns read-only mounts of the image below the container: the
// overlay's lower layers, or a view of the parent snapshot for other
// snapshotters. No mounts means an empty image.
func (s *Session) ImageMounts(ctx context.Context, r *Rootfs) ([]mount.Mount, error) {
	if r.overlay != nil {
		return r.overlay.LowerMounts(), nil
	}
	if r.Parent == "" {
		return nil, nil
	}
	return s.View(ctx, r.Snapshotter, r.Parent)
}

// WithImageRoot calls fn with a directory showing the image below the
// container, read-only; an empty image is an empty temporary directory. It
// is the image root the session holds (HoldImage) when there is one, and
// otherwise a mount for the duration of fn.
func (s *Session) WithImageRoot(ctx context.Context, r *Rootfs, fn func(root string) error) error {
	if r.image != "" {
		return fn(r.image)
	}
	mounts, err := s.ImageMounts(ctx, r)
	if err != nil {
		return err
	}
	if len(mounts) == 0 {
		return withEmptyDir(fn)
	}
	return s.WithMount(ctx, "image of "+r.Key, mounts, fn)
}

// HoldImage mounts the image below the container read-only until the
// session closes, so that every WithImageRoot of r that follows reads that
// one mount: a diff and the checks made after it (package records) then
// mount the image, or create a view of it, once. Calling it again does
// nothing.
func (s *Session) HoldImage(ctx context.Context, r *Rootfs) error {
	if r.image != "" {
		return nil
	}
	mounts, err := s.ImageMounts(ctx, r)
	if err != nil {
		return err
	}
	if len(mounts) == 0 {
		dir, err := os.MkdirTemp(s.mountDir, "empty-image-")
		if err != nil {
			return fmt.Errorf("create empty image root: %w", err)
		}
		s.releases = append(s.releases, func() error { return os.Remove(dir) })
		r.image = dir
		return nil
	}
	dir, release, err := s.holdMount(ctx, "image of "+r.Key, mounts)
	if err != nil {
		return err
	}
	s.releases = append(s.releases, release)
	r.image = dir
	return nil
}

// WithUpperDir calls fn with a read-only bind mount of the upper directory.
// Reading it in place would not do: reading a symlink updates its access time
// on a writable mount, whatever the flags, and only a read-only mount spares it.
func (s *Session) WithUpperDir(ctx context.Context, r *Rootfs, fn func(upper string) error) error {
	mounts, err := r.UpperOnlyMounts()
	if err != nil {
		return err
	}
	return s.WithMount(ctx, "upper of "+r.Key, mounts, fn)
}
