package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/ctrforensics/ctrforensics/forensic/diff"
)

// DiffOptions tune Diff.
type DiffOptions struct {
	// Method forces a method; empty picks the overlay fast path when it applies
	// and the double walk otherwise.
	Method diff.Method
	// Packages annotates each change of the snapshot with the package that
	// owns it (see AnnotatePackages), the image mounted once for both.
	Packages bool
	diff.Options
}

// Diff computes what changed in the container's filesystem versus its image
// (and the packages of the changes with opts.Packages).
// On an overlay snapshot it walks only the upper directory; it falls back to
// comparing the complete read-only trees when the overlay uses features the
// fast path cannot interpret (the reason is in the result's notes).
func (s *Session) Diff(ctx context.Context, ctr *Container, opts DiffOptions) (*diff.Diff, error) {
	r, err := s.Rootfs(ctx, ctr)
	if err != nil {
		return nil, err
	}
	if !opts.Packages {
		return s.DiffRootfs(ctx, r, ctr, opts)
	}
	if err := s.HoldImage(ctx, r); err != nil {
		return nil, err
	}
	d, err := s.DiffRootfs(ctx, r, ctr, opts)
	if err != nil {
		return nil, err
	}
	if err := s.AnnotatePackages(ctx, r, ctr, d.Changes); err != nil {
		return nil, fmt.Errorf("packages of the changes: %w", err)
	}
	return d, nil
}

// DiffRootfs is Diff on a root filesystem the session already resolved.
func (s *Session) DiffRootfs(ctx context.Context, r *Rootfs, ctr *Container, opts DiffOptions) (*diff.Diff, error) {
	switch opts.Method {
	case "", diff.MethodOverlay, diff.MethodWalk:
	default:
		return nil, fmt.Errorf("unknown diff method %q (overlay or walk)", opts.Method)
	}
	if r.overlay != nil {
		opts.UserXattr = r.overlay.UserXattr
	}
	var fallback string
	if opts.Method != diff.MethodWalk {
		d, err := s.overlayDiff(ctx, r, opts.Options)
		var fb *diff.FallbackError
		switch {
		case err == nil:
			return finishDiff(d, ctr, ""), nil
		case opts.Method == diff.MethodOverlay:
			return nil, err
		case errors.As(err, &fb), errors.Is(err, errNoOverlay):
			fallback = err.Error()
		default:
			return nil, err
		}
	}
	// The native snapshotter copies snapshots and gives every copied directory
	// the time of the copy, so the container's and the image's differ anyway.
	opts.IgnoreDirMtime = opts.IgnoreDirMtime || r.Snapshotter == "native"
	d, err := s.walkDiff(ctx, r, opts.Options)
	if err != nil {
		return nil, err
	}
	return finishDiff(d, ctr, fallback), nil
}

var errNoOverlay = errors.New("no overlay upper directory")

func (s *Session) overlayDiff(ctx context.Context, r *Rootfs, opts diff.Options) (*diff.Diff, error) {
	if _, err := r.UpperDir(); err != nil {
		return nil, fmt.Errorf("%w: %v", errNoOverlay, err)
	}
	var d *diff.Diff
	err := s.WithUpperDir(ctx, r, func(upper string) error {
		return s.WithImageRoot(ctx, r, func(lower string) error {
			var err error
			d, err = diff.OverlayDiff(ctx, upper, lower, opts)
			return err
		})
	})
	return d, err
}

func (s *Session) walkDiff(ctx context.Context, r *Rootfs, opts diff.Options) (*diff.Diff, error) {
	target, err := r.ReadOnlyMounts()
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", r.Key, err)
	}
	var d *diff.Diff
	err = s.WithMount(ctx, "container "+r.Key, target, func(root string) error {
		return s.WithImageRoot(ctx, r, func(base string) error {
			var err error
			d, err = diff.TreeDiff(ctx, root, base, opts)
			return err
		})
	})
	return d, err
}

func finishDiff(d *diff.Diff, ctr *Container, fallback string) *diff.Diff {
	if fallback != "" {
		d.Notes = append([]string{"compared the whole trees: " + fallback}, d.Notes...)
	}
	diff.MarkRuntime(d.Changes, ctr.Mountpoints())
	return d
}

// withEmptyDir calls fn with a new empty directory, removed afterwards.
func withEmptyDir(fn func(root string) error) error {
	dir, err := os.MkdirTemp("", "ctrforensics-empty-")
	if err != nil {
		return fmt.Errorf("create empty image root: %w", err)
	}
	defer os.Remove(dir)
	return fn(dir)
}
