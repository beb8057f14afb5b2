package mountutil

import (
	"errors"
	"fmt"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// ErrNotTheMount says the path a spec names inside a task is not the mount
// the spec describes there (replaced, moved, reached through a symlink, or
// of another file system type): it is not read.
var ErrNotTheMount = errors.New("not the mount the spec names")

// Detached is a read-only clone of a mount that no mount table lists: it is
// attached nowhere, is invisible to every other process, and disappears when
// it is closed or the process ends (even killed), so nothing is left to
// clean up. Reading through it never updates an access time: the clone is
// read-only and noatime, whatever the original mount's options.
type Detached struct {
	f *os.File
}

// Root names the clone's root directory as a path the process can open
// (through /proc/self/fd); it is valid until Close.
func (d *Detached) Root() string {
	return "/proc/self/fd/" + strconv.Itoa(int(d.f.Fd())) + "/."
}

// Close detaches the clone.
func (d *Detached) Close() error { return d.f.Close() }

// CloneReadOnly clones, read-only, the directory at path (a bind mount of
// it, as `mount --bind -o ro` would make, but detached: see Detached). A
// final symlink is refused.
func CloneReadOnly(dir string) (*Detached, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, dir,
		unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_SYMLINK_NOFOLLOW|unix.AT_NO_AUTOMOUNT)
	if err != nil {
		return nil, &os.PathError{Op: "open_tree", Path: dir, Err: err}
	}
	return makeDetached(fd, dir)
}

// makeDetached makes the clone fd read-only and noatime.
func makeDetached(fd int, name string) (*Detached, error) {
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOATIME, Attr_clr: unix.MOUNT_ATTR__ATIME}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "mount_setattr read-only", Path: name, Err: err}
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil || st.Flags&unix.ST_RDONLY == 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("clone of %s is not read-only", name)
	}
	return &Detached{f: os.NewFile(uintptr(fd), name)}, nil
}

// CloneTaskMount clones, read-only, the mount of type fstype at dest in the
// mount namespace of the process pid (a container's task), without entering
// the container or running anything in it: dest is resolved inside the
// process's root and never through a symlink (a hostile container cannot
// redirect it to the host), and must be exactly the root of a mount of
// fstype that the process's mountinfo lists at dest (ErrNotTheMount
// otherwise). Only that mount is cloned, not the mounts below it.
//
// The clone is made by a thread that joins the task's mount namespace (a
// mount can only be cloned from the namespace it is in) and then ends: the
// rest of the process never changes namespace.
func CloneTaskMount(pid int, dest, fstype string) (*Detached, error) {
	proc := "/proc/" + strconv.Itoa(pid)
	// Everything is opened below one descriptor of the process's /proc
	// directory, so all of it describes the same process.
	dir, err := unix.Open(proc, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: proc, Err: err}
	}
	defer unix.Close(dir)
	mounts, err := taskMounts(dir)
	if err != nil {
		return nil, fmt.Errorf("read mount table of process %d: %w", pid, err)
	}
	root, err := unix.Openat(dir, "root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: proc + "/root", Err: err}
	}
	defer unix.Close(root)
	ns, err := unix.Openat(dir, "ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: proc + "/ns/mnt", Err: err}
	}
	defer unix.Close(ns)
	type result struct {
		fd  int
		err error
	}
	done := make(chan result, 1)
	go func() {
		// The thread is never unlocked: it ends with this goroutine, so no
		// other goroutine ever runs in the task's mount namespace.
		runtime.LockOSThread()
		fd, err := cloneInNamespace(ns, root, dest, fstype, mounts)
		done <- result{fd, err}
	}()
	r := <-done
	if r.err != nil {
		return nil, r.err
	}
	return makeDetached(r.fd, dest)
}

// taskMounts reads the mountinfo of the process whose /proc directory is dir.
func taskMounts(dir int) ([]*mountinfo.Info, error) {
	fd, err := unix.Openat(dir, "mountinfo", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "mountinfo")
	defer f.Close()
	return mountinfo.GetMountsFromReader(f, nil)
}

// cloneInNamespace runs on a locked thread that it moves into the mount
// namespace ns; see CloneTaskMount.
func cloneInNamespace(ns, root int, dest, fstype string, mounts []*mountinfo.Info) (int, error) {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return -1, fmt.Errorf("unshare file system attributes: %w", err)
	}
	if err := unix.Setns(ns, unix.CLONE_NEWNS); err != nil {
		return -1, fmt.Errorf("join mount namespace: %w", err)
	}
	rel := strings.TrimPrefix(path.Clean("/"+dest), "/")
	if rel == "" {
		return -1, fmt.Errorf("%s: %w (the root)", dest, ErrNotTheMount)
	}
	fd, err := unix.Openat2(root, rel, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		if err == unix.ELOOP || err == unix.ENOTDIR {
			return -1, fmt.Errorf("%s: %w (%v)", dest, ErrNotTheMount, err)
		}
		return -1, &os.PathError{Op: "open in task root", Path: dest, Err: err}
	}
	defer unix.Close(fd)
	if err := checkMountRoot(fd, "/"+rel, fstype, mounts); err != nil {
		return -1, err
	}
	clone, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return -1, &os.PathError{Op: "open_tree", Path: dest, Err: err}
	}
	return clone, nil
}

// checkMountRoot checks that fd is the root of the mount listed in mounts at
// dest with fstype.
func checkMountRoot(fd int, dest, fstype string, mounts []*mountinfo.Info) error {
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &stx); err != nil {
		return &os.PathError{Op: "statx", Path: dest, Err: err}
	}
	if stx.Mask&unix.STATX_MNT_ID == 0 || stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT == 0 {
		return fmt.Errorf("%s: the kernel does not report mount ids", dest)
	}
	if stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT == 0 {
		return fmt.Errorf("%s: %w (no mount there)", dest, ErrNotTheMount)
	}
	for _, m := range mounts {
		if uint64(m.ID) != stx.Mnt_id {
			continue
		}
		if m.Mountpoint != dest || m.FSType != fstype {
			return fmt.Errorf("%s: %w (the task's mount table has %s at %s)", dest, ErrNotTheMount, m.FSType, m.Mountpoint)
		}
		return nil
	}
	return fmt.Errorf("%s: %w (its mount is not in the task's mount table)", dest, ErrNotTheMount)
}

// IsTmpfs reports whether the directory at path is on a tmpfs (a CRI pod's
// /dev/shm is a host tmpfs bind-mounted into its containers).
func IsTmpfs(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	return st.Type == unix.TMPFS_MAGIC, nil
}

// SameInTask reports whether the path dest inside the root of the process
// pid (resolved there, never through a symlink) is the same inode as the
// host path host: whether a bind mount's host source is still what the
// container sees.
func SameInTask(pid int, dest, host string) (bool, error) {
	proc := "/proc/" + strconv.Itoa(pid) + "/root"
	root, err := unix.Open(proc, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, &os.PathError{Op: "open", Path: proc, Err: err}
	}
	defer unix.Close(root)
	fd, err := unix.Openat2(root, strings.TrimPrefix(path.Clean("/"+dest), "/"), &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return false, &os.PathError{Op: "open in task root", Path: dest, Err: err}
	}
	defer unix.Close(fd)
	var in, out unix.Stat_t
	if err := unix.Fstat(fd, &in); err != nil {
		return false, &os.PathError{Op: "stat in task root", Path: dest, Err: err}
	}
	if err := unix.Lstat(host, &out); err != nil {
		return false, &os.PathError{Op: "lstat", Path: host, Err: err}
	}
	return in.Dev == out.Dev && in.Ino == out.Ino, nil
}
