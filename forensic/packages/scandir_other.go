//go:build !linux

package packages

import (
	"context"
	"errors"
)

// errUnsupported says directory scans need Linux's descriptor-relative calls.
var errUnsupported = errors.New("reading a directory tree by descriptor is supported on Linux only")

// ScanDir is supported on Linux only.
func ScanDir(ctx context.Context, root string, opts Options) (*Inventory, error) {
	return nil, errUnsupported
}

// VerifyDir is supported on Linux only.
func VerifyDir(ctx context.Context, recordRoot, root string, targets []Target, opts Options) ([]Result, error) {
	return nil, errUnsupported
}
