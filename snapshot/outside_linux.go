package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/core/mount"
	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/mountutil"
)

// OutputInsideError says an output path (or a mount point) lies inside the
// container's own file system, where writing would change the evidence.
type OutputInsideError struct {
	// What is "output" or "mount point".
	What, Path, Root string
}

func (e *OutputInsideError) Error() string {
	return fmt.Sprintf("%s %s is inside the container's file system (%s): creating it would change the evidence; pick one outside it",
		e.What, e.Path, e.Root)
}

// refuseOutputInside fails with an OutputInsideError when output (what:
// "output" or "mount point") lies inside
// the container's root as its task sees it (/proc/PID/root, and so the
// task's rootfs mount) or inside a directory of its snapshot (the upper
// directory, a lower layer, a native snapshot). The check follows the
// directory's parents as the kernel resolved them (by "..", never by a
// path), so symlinks and /proc/PID/root do not hide where the output is.
func (c *Client) refuseOutputInside(ctx context.Context, ctr *Container, what, output string) error {
	dir, err := existingAncestor(output)
	if err != nil {
		return err
	}
	var roots []string
	if ctr.Pid > 0 {
		roots = append(roots, fmt.Sprintf("/proc/%d/root", ctr.Pid))
	}
	if _, mounts, err := c.ActiveSnapshot(ctx, ctr); err == nil {
		roots = append(roots, snapshotDirs(mounts)...)
	}
	ids := map[[2]uint64]string{}
	for _, r := range roots {
		var st unix.Stat_t
		if unix.Stat(r, &st) == nil {
			ids[[2]uint64{st.Dev, st.Ino}] = r
		}
	}
	if root, err := ancestorIn(dir, ids); err != nil || root != "" {
		if err != nil {
			return fmt.Errorf("check output %s: %w", output, err)
		}
		return &OutputInsideError{What: what, Path: output, Root: root}
	}
	return nil
}

// existingAncestor returns the nearest parent of path that exists: where the
// output and its partial sibling are created.
func existingAncestor(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil || d == filepath.Dir(d) {
			return d, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("check output %s: %w", path, err)
		}
	}
}

// snapshotDirs returns the host directories a snapshot's mounts are made of.
func snapshotDirs(mounts []mount.Mount) []string {
	var dirs []string
	for _, m := range mounts {
		if m.Type == "overlay" {
			if o, err := mountutil.ParseOverlay(m); err == nil {
				dirs = append(append(dirs, o.Upper), o.Lowers...)
			}
			continue
		}
		if filepath.IsAbs(m.Source) {
			dirs = append(dirs, m.Source)
		}
	}
	return dirs
}

// ancestorIn walks from the directory dir up through ".."
// and returns the name of the first directory whose identity is in ids, or
// "" when it reaches the root without meeting one.
func ancestorIn(dir string, ids map[[2]uint64]string) (string, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	for {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return "", err
		}
		if root, ok := ids[[2]uint64{st.Dev, st.Ino}]; ok {
			unix.Close(fd)
			return root, nil
		}
		parent, err := unix.Openat(fd, "..", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			return "", err
		}
		var pst unix.Stat_t
		if err := unix.Fstat(parent, &pst); err != nil {
			unix.Close(parent)
			return "", err
		}
		if pst.Dev == st.Dev && pst.Ino == st.Ino {
			unix.Close(parent)
			return "", nil
		}
		fd = parent
	}
}
