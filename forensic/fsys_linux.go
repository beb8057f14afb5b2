package forensic

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/internal/fdio"
)

// This file holds the only code that touches the filesystem under analysis. Every
// access is relative to an open directory descriptor and never follows a symbolic
// link, so a path can neither escape the root nor exceed PATH_MAX, however deep the
// tree. Regular files are opened with O_NOATIME; FIFOs, sockets and devices are
// never opened for reading.

// openRoot opens the directory at path as the root of a walk.
func openRoot(path string) (int, error) {
	return fdio.OpenDir(unix.AT_FDCWD, path)
}

// openDir opens the directory name below dirfd without following symlinks and
// without updating its access time where the kernel allows it.
func openDir(dirfd int, name string) (int, error) {
	return fdio.OpenDir(dirfd, name)
}

// openRegular opens the regular file name below dirfd for reading, as the
// inode md describes; see fdio.OpenRegular.
func openRegular(dirfd int, name string, md *Metadata) (int, error) {
	return fdio.OpenRegular(dirfd, name, md.Inode)
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
	if err := fdio.Statx(dirfd, name, &stx); err != nil {
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
// their presence matters, and the value of opaque).
func xattrsAt(dirfd int, name, ovlPrefix string) (map[string][]byte, overlayAttrs, error) {
	value := func(attr string) bool {
		flag, isOverlay := overlayAttrOf(attr, ovlPrefix)
		return !isOverlay || flag == overlayOpaque
	}
	names, values, err := fdio.Xattrs(dirfd, name, value)
	if err != nil {
		return nil, 0, err
	}
	var ovl overlayAttrs
	for _, attr := range names {
		flag, isOverlay := overlayAttrOf(attr, ovlPrefix)
		if !isOverlay {
			continue
		}
		if flag == overlayOpaque {
			if v, ok := values[attr]; ok && string(v) == "y" {
				ovl |= overlayOpaque
			}
			delete(values, attr)
			continue
		}
		ovl |= flag
	}
	if len(values) == 0 {
		values = nil
	}
	return values, ovl, nil
}

// closeFD closes a descriptor opened by this package; -1 is ignored.
func closeFD(fd int) {
	fdio.Close(fd)
}
