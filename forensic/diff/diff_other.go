//go:build !linux

package diff

import (
	"context"
	"errors"
)

// OverlayDiff walks an overlayfs upper directory, which needs Linux.
func OverlayDiff(ctx context.Context, upper, lower string, opts Options) (*Diff, error) {
	return nil, errors.ErrUnsupported
}

// TreeDiff walks two trees by descriptor, which needs Linux.
func TreeDiff(ctx context.Context, target, base string, opts Options) (*Diff, error) {
	return nil, errors.ErrUnsupported
}

// List walks a tree by descriptor, which needs Linux.
func List(ctx context.Context, root, at string, opts Options) (*Diff, error) {
	return nil, errors.ErrUnsupported
}

// ListEntries walks a tree by descriptor, which needs Linux.
func ListEntries(ctx context.Context, dir string, names []string, opts Options) (*Diff, error) {
	return nil, errors.ErrUnsupported
}
