//go:build !linux

package mountutil

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/errdefs"
)

// errNotLinux is returned by every mount operation off Linux: overlayfs and
// the mount calls these functions build on exist only there. The examiner's
// commands (verify, custody, key) never reach them.
var errNotLinux = fmt.Errorf("mounting snapshots on %s: %w", runtime.GOOS, errdefs.ErrNotImplemented)

// Mount is not supported off Linux.
func Mount(mounts []mount.Mount, target string) error { return errNotLinux }

// Unmount is not supported off Linux.
func Unmount(target string) error { return errNotLinux }

// IsMountpoint is not supported off Linux.
func IsMountpoint(dir string) (bool, error) { return false, errNotLinux }

// WithTempMount is not supported off Linux.
func WithTempMount(ctx context.Context, mounts []mount.Mount, fn func(root string) error) error {
	return errNotLinux
}

// TempMount is not supported off Linux.
func TempMount(parent string, mounts []mount.Mount) (string, func() error, error) {
	return "", nil, errNotLinux
}

// MountsUnder is not supported off Linux.
func MountsUnder(dir string) ([]string, error) { return nil, errNotLinux }

// UnmountUnder is not supported off Linux.
func UnmountUnder(dir string) ([]string, error) { return nil, errNotLinux }

// HideSpecial is not supported off Linux.
func HideSpecial(root, empty string) (int, error) { return 0, errNotLinux }

// ErrNotTheMount says a path is not the mount a spec names.
var ErrNotTheMount = errors.New("not the mount the spec names")

// Detached is a read-only clone of a mount, which needs Linux.
type Detached struct{}

// Root is empty off Linux.
func (d *Detached) Root() string { return "" }

// Close does nothing off Linux.
func (d *Detached) Close() error { return nil }

// CloneReadOnly is not supported off Linux.
func CloneReadOnly(dir string) (*Detached, error) { return nil, errNotLinux }

// CloneTaskMount is not supported off Linux.
func CloneTaskMount(pid int, dest, fstype string) (*Detached, error) { return nil, errNotLinux }

// IsTmpfs is not supported off Linux.
func IsTmpfs(path string) (bool, error) { return false, errNotLinux }

// SameInTask is not supported off Linux.
func SameInTask(pid int, dest, host string) (bool, error) { return false, errNotLinux }
