package forensic

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/internal/fdio"
)

// This file holds the only code that touches the filesystem under analysis. Every
// access is relative to an open directory descriptor and never follows a symbolic
// link, so a path can neither escape the root nor exceed PATH_MAX, however deep the
// tree. Regular files are opened with O_NOATIME; FIFOs, sockets and devices are
// never opened for reading.

const (
	dirOpenFlags  = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	pathOpenFlags = unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC
	statxMask     = unix.STATX_BASIC_STATS | unix.STATX_BTIME
	statxFlags    = unix.AT_SYMLINK_NOFOLLOW | unix.AT_NO_AUTOMOUNT | unix.AT_STATX_SYNC_AS_STAT
)

// openRoot opens the directory at path as the root of a walk.
func openRoot(path string) (int, error) {
	return openDir(unix.AT_FDCWD, path)
}

// openDir opens the directory name below dirfd without following symlinks and
// without updating its access time where the kernel allows it.
func openDir(dirfd int, name string) (int, error) {
	fd, err := fdio.OpenNoatime(dirfd, name, dirOpenFlags)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return fd, nil
}

// errReplaced says an entry is no longer the regular file that was stat'ed.
var errReplaced = errors.New("entry replaced while it was read")

// openRegular opens the regular file name below dirfd for reading, as the
// inode md describes. It takes an O_PATH descriptor first (which opens
// nothing), checks it is that regular file, and only then reopens that very
// inode through /proc/self/fd: a file swapped for a FIFO or a device between
// the stat and the open is never opened.
func openRegular(dirfd int, name string, md *Metadata) (int, error) {
	pfd, err := unix.Openat(dirfd, name, pathOpenFlags, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return -1, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Ino != md.Inode {
		return -1, errReplaced
	}
	return fdio.OpenNoatime(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(pfd), unix.O_RDONLY|unix.O_CLOEXEC)
}

// lstatAt returns the metadata of name below dirfd (the entry itself, never a
// symlink's target), including extended attributes and a symlink's target. It
// returns an error wrapping os.ErrNotExist when the entry does not exist.
// Attributes under ovlPrefix ("trusted.overlay.", "user.overlay." or "" for
// none) are read as overlayfs bookkeeping of a raw layer directory; any other
// attribute, whatever it looks like, is metadata: a container can set
// user.overlay.* on its files, and must not be able to forge a whiteout.
func lstatAt(dirfd int, name, ovlPrefix string) (*Metadata, error) {
	var stx unix.Statx_t
	if err := statx(dirfd, name, &stx); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, os.ErrNotExist
		}
		return nil, &os.PathError{Op: "statx", Path: name, Err: err}
	}
	md := metadataFromStatx(&stx)
	if md.Type == TypeSymlink {
		target, err := fdio.ReadlinkAt(dirfd, name)
		if err != nil {
			return nil, &os.PathError{Op: "readlink", Path: name, Err: err}
		}
		md.LinkTarget = target
	}
	xattrs, ovl, err := xattrsAt(dirfd, name, ovlPrefix)
	if err != nil {
		return nil, err
	}
	md.Xattrs, md.overlay = xattrs, ovl
	return md, nil
}

func statx(dirfd int, name string, stx *unix.Statx_t) error {
	for {
		err := unix.Statx(dirfd, name, statxFlags, statxMask, stx)
		if err != unix.EINTR {
			return err
		}
	}
}

func metadataFromStatx(stx *unix.Statx_t) *Metadata {
	md := &Metadata{
		Type:  fileTypeOf(uint32(stx.Mode)),
		Mode:  uint32(stx.Mode) & 0o7777,
		UID:   stx.Uid,
		GID:   stx.Gid,
		Size:  int64(stx.Size),
		Nlink: uint64(stx.Nlink),
		Inode: stx.Ino,
		Dev:   unix.Mkdev(stx.Dev_major, stx.Dev_minor),
		Mtime: statxTime(stx.Mtime),
		Atime: statxTime(stx.Atime),
		Ctime: statxTime(stx.Ctime),
	}
	if stx.Mask&unix.STATX_BTIME != 0 {
		bt := statxTime(stx.Btime)
		md.Btime = &bt
	}
	if md.Type == TypeChar || md.Type == TypeBlock {
		md.DevMajor, md.DevMinor = stx.Rdev_major, stx.Rdev_minor
	}
	md.Allocated = int64(stx.Blocks) * 512
	return md
}

func statxTime(ts unix.StatxTimestamp) time.Time {
	return time.Unix(ts.Sec, int64(ts.Nsec)).UTC()
}

func fileTypeOf(mode uint32) FileType {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return TypeFile
	case unix.S_IFDIR:
		return TypeDir
	case unix.S_IFLNK:
		return TypeSymlink
	case unix.S_IFIFO:
		return TypeFIFO
	case unix.S_IFSOCK:
		return TypeSocket
	case unix.S_IFCHR:
		return TypeChar
	case unix.S_IFBLK:
		return TypeBlock
	}
	return TypeUnknown
}

// xattrsAt returns the extended attributes of name below dirfd, without
// following a symlink, and separately the overlayfs attributes it carries (only
// their presence matters, and the value of opaque). It uses
// listxattrat/getxattrat (Linux 6.13) and falls back to an O_PATH descriptor
// reached through /proc/self/fd on older kernels.
func xattrsAt(dirfd int, name, ovlPrefix string) (map[string][]byte, overlayAttrs, error) {
	x, ovl, err := xattrsAtSyscall(dirfd, name, ovlPrefix)
	if err == unix.ENOSYS {
		x, ovl, err = xattrsViaProc(dirfd, name, ovlPrefix)
	}
	if err != nil {
		return nil, 0, &os.PathError{Op: "read xattrs", Path: name, Err: err}
	}
	return x, ovl, nil
}

func xattrsAtSyscall(dirfd int, name, ovlPrefix string) (map[string][]byte, overlayAttrs, error) {
	list := func(buf []byte) (int, error) { return listxattrat(dirfd, name, buf) }
	get := func(attr string, buf []byte) (int, error) { return getxattrat(dirfd, name, attr, buf) }
	return collectXattrs(list, get, ovlPrefix)
}

func xattrsViaProc(dirfd int, name, ovlPrefix string) (map[string][]byte, overlayAttrs, error) {
	fd, err := unix.Openat(dirfd, name, pathOpenFlags, 0)
	if err != nil {
		return nil, 0, err
	}
	defer unix.Close(fd)
	// The magic link leads to the inode the O_PATH descriptor holds, which is the
	// entry itself even when it is a symlink.
	proc := "/proc/self/fd/" + strconv.Itoa(fd)
	list := func(buf []byte) (int, error) { return unix.Listxattr(proc, buf) }
	get := func(attr string, buf []byte) (int, error) { return unix.Getxattr(proc, attr, buf) }
	return collectXattrs(list, get, ovlPrefix)
}

func collectXattrs(list func([]byte) (int, error), get func(string, []byte) (int, error), ovlPrefix string) (map[string][]byte, overlayAttrs, error) {
	names, err := growRead(list)
	if err != nil {
		if err == unix.ENOTSUP {
			return nil, 0, nil
		}
		return nil, 0, err
	}
	var out map[string][]byte
	var ovl overlayAttrs
	for _, attr := range bytes.Split(names, []byte{0}) {
		if len(attr) == 0 {
			continue
		}
		flag, isOverlay := overlayAttrOf(string(attr), ovlPrefix)
		if isOverlay && flag != overlayOpaque {
			ovl |= flag
			continue
		}
		value, err := growRead(func(buf []byte) (int, error) { return get(string(attr), buf) })
		if err == unix.ENODATA {
			continue // removed while we read
		}
		if err != nil {
			return nil, 0, fmt.Errorf("get %s: %w", attr, err)
		}
		if isOverlay {
			if string(value) == "y" {
				ovl |= overlayOpaque
			}
			continue
		}
		if out == nil {
			out = make(map[string][]byte)
		}
		out[string(attr)] = value
	}
	return out, ovl, nil
}

// growRead calls read with a page-sized buffer, and asks for the size and
// retries only when the value does not fit: most entries have no or small
// attributes, so this is one system call instead of two.
func growRead(read func([]byte) (int, error)) ([]byte, error) {
	buf := make([]byte, 4096)
	for {
		n, err := read(buf)
		if err != unix.ERANGE {
			if err != nil || n == 0 {
				return nil, err
			}
			return buf[:n], nil
		}
		size, err := read(nil)
		if err != nil {
			return nil, err
		}
		buf = make([]byte, max(size, 2*len(buf)))
	}
}

// xattrArgs is struct xattr_args of linux/xattr.h.
type xattrArgs struct {
	value uint64
	size  uint32
	flags uint32
}

func getxattrat(dirfd int, name, attr string, dest []byte) (int, error) {
	namep, err := unix.BytePtrFromString(name)
	if err != nil {
		return 0, err
	}
	attrp, err := unix.BytePtrFromString(attr)
	if err != nil {
		return 0, err
	}
	args := xattrArgs{size: uint32(len(dest))}
	if len(dest) > 0 {
		args.value = uint64(uintptr(unsafe.Pointer(&dest[0])))
	}
	r, _, errno := unix.Syscall6(unix.SYS_GETXATTRAT, uintptr(dirfd), uintptr(unsafe.Pointer(namep)),
		unix.AT_SYMLINK_NOFOLLOW, uintptr(unsafe.Pointer(attrp)), uintptr(unsafe.Pointer(&args)), unsafe.Sizeof(args))
	runtime.KeepAlive(dest)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

func listxattrat(dirfd int, name string, dest []byte) (int, error) {
	namep, err := unix.BytePtrFromString(name)
	if err != nil {
		return 0, err
	}
	var buf unsafe.Pointer
	if len(dest) > 0 {
		buf = unsafe.Pointer(&dest[0])
	}
	r, _, errno := unix.Syscall6(unix.SYS_LISTXATTRAT, uintptr(dirfd), uintptr(unsafe.Pointer(namep)),
		unix.AT_SYMLINK_NOFOLLOW, uintptr(buf), uintptr(len(dest)), 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// closeFD closes a descriptor opened by this package; -1 is ignored.
func closeFD(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}
