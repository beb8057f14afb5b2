package mountutil

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Mount mounts mounts at target and checks that the result is read-only; a
// mount that turned out writable is undone and reported as an error.
func Mount(mounts []mount.Mount, target string) error {
	for _, m := range mounts {
		if Writable(m) {
			return fmt.Errorf("refusing to mount %s at %s: the mount would be writable", m.Type, target)
		}
	}
	for _, m := range mounts {
		if err := mountOne(m, target); err != nil {
			return fmt.Errorf("mount %s: %w", target, err)
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); err != nil || st.Flags&unix.ST_RDONLY == 0 {
		if uerr := Unmount(target); uerr != nil {
			return fmt.Errorf("mount at %s is not read-only and could not be undone: %w", target, uerr)
		}
		return fmt.Errorf("mount at %s is not read-only (statfs: %v)", target, err)
	}
	return nil
}

// mountOne mounts m at target. An overlay whose options do not fit in one page
// is built with the new mount API, one lower layer at a time (Linux 6.8 and
// later); otherwise containerd's mount code shortens the lowerdir list.
func mountOne(m mount.Mount, target string) error {
	if m.Type == "overlay" && len(strings.Join(m.Options, ",")) >= os.Getpagesize()-512 {
		err := mountOverlayFsconfig(m, target)
		if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
			return err
		}
	}
	return m.Mount(target)
}

// mountOverlayFsconfig mounts a read-only overlay with fsopen/fsconfig, passing
// each lower layer with "lowerdir+", so that the list has no length limit.
func mountOverlayFsconfig(m mount.Mount, target string) error {
	o, err := ParseOverlay(m)
	if err != nil {
		return err
	}
	if o.Upper != "" {
		return errors.New("fsconfig mount is for read-only overlays only")
	}
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fsfd)
	set := func(key, value string) error {
		if err := unix.FsconfigSetString(fsfd, key, value); err != nil {
			return fmt.Errorf("fsconfig %s=%s: %w", key, value, err)
		}
		return nil
	}
	for _, l := range o.Lowers {
		if err := set("lowerdir+", l); err != nil {
			return err
		}
	}
	if err := set("index", "off"); err != nil {
		return err
	}
	for _, opt := range o.options() {
		key, value, hasValue := strings.Cut(opt, "=")
		if !hasValue {
			if err := unix.FsconfigSetFlag(fsfd, key); err != nil {
				return fmt.Errorf("fsconfig %s: %w", key, err)
			}
		} else if err := set(key, value); err != nil {
			return err
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("fsconfig create: %w", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return fmt.Errorf("fsmount: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move mount to %s: %w", target, err)
	}
	return nil
}

// Unmount removes every mount stacked at target. A busy mount is retried for a
// few seconds and then detached, so that it disappears once its last user goes.
func Unmount(target string) error {
	var err error
	for i := 0; i < 20; i++ {
		err = mount.UnmountAll(target, 0)
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if errors.Is(err, unix.EBUSY) {
		err = mount.UnmountAll(target, unix.MNT_DETACH)
	}
	if err != nil {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	return nil
}

// IsMountpoint reports whether dir is the target of a mount.
func IsMountpoint(dir string) (bool, error) {
	return mountinfo.Mounted(dir)
}

// WithTempMount mounts mounts read-only on a new temporary directory, calls fn
// with it and always unmounts and removes the directory afterwards, also when fn
// fails or ctx is cancelled (the caller cancels ctx on SIGINT and SIGTERM).
// With no mounts, fn is not called and an error is returned.
func WithTempMount(ctx context.Context, mounts []mount.Mount, fn func(root string) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir, undo, err := TempMount("", mounts)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, undo()) }()
	return fn(dir)
}

// TempMount mounts mounts read-only on a new directory in parent ("" for the
// default temporary directory) and returns it with the function that unmounts
// and removes it.
func TempMount(parent string, mounts []mount.Mount) (dir string, undo func() error, err error) {
	if len(mounts) == 0 {
		return "", nil, errors.New("nothing to mount")
	}
	dir, err = os.MkdirTemp(parent, TempMountPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", nil, fmt.Errorf("create temporary mount point: %w", err)
	}
	if err := Mount(mounts, dir); err != nil {
		os.Remove(dir)
		return "", nil, err
	}
	return dir, func() error {
		if err := Unmount(dir); err != nil {
			return err
		}
		// Remove, never RemoveAll: were the unmount incomplete, the directory
		// would still show the evidence and must not be emptied.
		if err := os.Remove(dir); err != nil {
			return fmt.Errorf("remove temporary mount point: %w", err)
		}
		return nil
	}, nil
}

// MountsUnder returns the mount points at or below dir, deepest first.
func MountsUnder(dir string) ([]string, error) {
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	out := make([]string, 0, len(infos))
	for i := len(infos) - 1; i >= 0; i-- {
		out = append(out, infos[i].Mountpoint)
	}
	return out, nil
}

// UnmountUnder unmounts every mount at or below dir, deepest first, and
// returns the mount points it unmounted. A mount whose path is too long to be
// named (a cover deep in a hostile tree, mounted by descriptor) is detached
// together with the nearest mount above it.
func UnmountUnder(dir string) ([]string, error) {
	points, err := MountsUnder(dir)
	if err != nil {
		return nil, err
	}
	var done, unnamed []string
	for _, m := range points {
		var below []string
		below, unnamed = splitBelow(unnamed, m)
		if len(below) > 0 {
			if err := detach(m); err != nil {
				return done, err
			}
			done = append(append(done, below...), m)
			continue
		}
		if err := Unmount(m); errors.Is(err, unix.ENAMETOOLONG) {
			unnamed = append(unnamed, m)
			continue
		} else if err != nil {
			return done, err
		}
		done = append(done, m)
	}
	if len(unnamed) > 0 {
		return done, fmt.Errorf("unmount %d mounts below %s: path too long, and no mount above them to detach", len(unnamed), dir)
	}
	return done, nil
}

// splitBelow returns the paths below dir and the others.
func splitBelow(paths []string, dir string) (below, others []string) {
	for _, p := range paths {
		if strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/") {
			below = append(below, p)
		} else {
			others = append(others, p)
		}
	}
	return below, others
}

// detach lazily unmounts target and every mount below it.
func detach(target string) error {
	if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach %s: %w", target, err)
	}
	return nil
}
