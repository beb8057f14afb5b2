package snapshot

import (
	"context"
	"fmt"

	"github.com/ctrforensics/ctrforensics/forensic/packages"
)

// Packages scans the container's filesystem as it is (its read-only view) and
// its image's (the layers below it, read-only) for installed packages, and
// marks each package of the container as coming from the image or from the
// container. Nothing of the container is run or written.
func (s *Session) Packages(ctx context.Context, ctr *Container, opts packages.Options) (*packages.Inventory, error) {
	r, err := s.Rootfs(ctx, ctr)
	if err != nil {
		return nil, err
	}
	mounts, err := r.ReadOnlyMounts()
	if err != nil {
		return nil, err
	}
	var inv, img *packages.Inventory
	err = s.WithMount(ctx, "rootfs of "+r.Key, mounts, func(root string) error {
		inv, err = packages.ScanDir(ctx, root, opts)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("packages of %s: %w", ctr.Info.ID, err)
	}
	err = s.WithImageRoot(ctx, r, func(root string) error {
		img, err = packages.ScanDir(ctx, root, opts)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("packages of the image of %s: %w", ctr.Info.ID, err)
	}
	packages.MarkOrigin(inv, img)
	return inv, nil
}
