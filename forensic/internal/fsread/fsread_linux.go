// Package fsread turns what the kernel says about a filesystem entry into the
// vocabulary of package forensic: statx and extended attributes into a
// forensic.Metadata, and a regular file's content into a sha256 digest read
// within a size limit. It holds the only code of the analyses that reads the
// filesystem under analysis, always through internal/fdio: every access is
// relative to an open directory descriptor and never follows a symbolic link,
// regular files are opened with O_NOATIME, and FIFOs, sockets and devices are
// never opened for reading.
package fsread

import (
	"errors"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/internal/fdio"
)

// Overlay holds the overlayfs attributes an entry of an upper directory
// carries; they are bookkeeping of overlayfs, not metadata of the file.
type Overlay uint8

// The overlayfs attributes.
const (
	OverlayOpaque Overlay = 1 << iota
	OverlayRedirect
	OverlayMetacopy
	OverlayWhiteout
	OverlayOther
)

// Overlay attribute namespaces: trusted (overlays mounted by root) and user
// (userxattr mounts).
const (
	TrustedOverlay = "trusted.overlay."
	UserOverlay    = "user.overlay."
)

// Lstat returns the metadata of name below dirfd (the entry itself, never a
// symlink's target), including extended attributes and a symlink's target. It
// returns an error wrapping os.ErrNotExist when the entry does not exist.
// Attributes under ovlPrefix (TrustedOverlay, UserOverlay or "" for none) are
// read as overlayfs bookkeeping of a raw layer directory and returned apart;
// any other attribute, whatever it looks like, is metadata: a container can
// set user.overlay.* on its files, and must not be able to forge a whiteout.
func Lstat(dirfd int, name, ovlPrefix string) (*forensic.Metadata, Overlay, error) {
	var stx unix.Statx_t
	if err := fdio.Statx(dirfd, name, &stx); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, 0, os.ErrNotExist
		}
		return nil, 0, &os.PathError{Op: "statx", Path: name, Err: err}
	}
	md := metadataFromStatx(&stx)
	if md.Type == forensic.TypeSymlink {
		target, err := fdio.ReadlinkAt(dirfd, name)
		if err != nil {
			return nil, 0, &os.PathError{Op: "readlink", Path: name, Err: err}
		}
		md.LinkTarget = target
	}
	xattrs, ovl, err := xattrsAt(dirfd, name, ovlPrefix)
	if err != nil {
		return nil, 0, err
	}
	md.Xattrs = xattrs
	return md, ovl, nil
}

// OpenRegular opens the regular file name below dirfd for reading, as the
// inode md describes; see fdio.OpenRegular.
func OpenRegular(dirfd int, name string, md *forensic.Metadata) (int, error) {
	return fdio.OpenRegular(dirfd, name, md.Inode)
}

func metadataFromStatx(stx *unix.Statx_t) *forensic.Metadata {
	md := &forensic.Metadata{
		Type:  FileTypeOf(uint32(stx.Mode)),
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
	if md.Type == forensic.TypeChar || md.Type == forensic.TypeBlock {
		md.DevMajor, md.DevMinor = stx.Rdev_major, stx.Rdev_minor
	}
	md.Allocated = int64(stx.Blocks) * 512
	return md
}

func statxTime(ts unix.StatxTimestamp) time.Time {
	return time.Unix(ts.Sec, int64(ts.Nsec)).UTC()
}

// FileTypeOf names the file type in a stat mode's S_IFMT bits.
func FileTypeOf(mode uint32) forensic.FileType {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return forensic.TypeFile
	case unix.S_IFDIR:
		return forensic.TypeDir
	case unix.S_IFLNK:
		return forensic.TypeSymlink
	case unix.S_IFIFO:
		return forensic.TypeFIFO
	case unix.S_IFSOCK:
		return forensic.TypeSocket
	case unix.S_IFCHR:
		return forensic.TypeChar
	case unix.S_IFBLK:
		return forensic.TypeBlock
	}
	return forensic.TypeUnknown
}

// xattrsAt returns the extended attributes of name below dirfd, without
// following a symlink, and separately the overlayfs attributes it carries (only
// their presence matters, and the value of opaque).
func xattrsAt(dirfd int, name, ovlPrefix string) (map[string][]byte, Overlay, error) {
	value := func(attr string) bool {
		flag, isOverlay := overlayAttrOf(attr, ovlPrefix)
		return !isOverlay || flag == OverlayOpaque
	}
	names, values, err := fdio.Xattrs(dirfd, name, value)
	if err != nil {
		return nil, 0, err
	}
	var ovl Overlay
	for _, attr := range names {
		flag, isOverlay := overlayAttrOf(attr, ovlPrefix)
		if !isOverlay {
			continue
		}
		if flag == OverlayOpaque {
			if v, ok := values[attr]; ok && string(v) == "y" {
				ovl |= OverlayOpaque
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

// overlayAttrOf classifies an attribute name in the overlay namespace prefix;
// with an empty prefix nothing is overlay bookkeeping.
func overlayAttrOf(name, prefix string) (Overlay, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if prefix == "" || !ok {
		return 0, false
	}
	switch rest {
	case "opaque":
		return OverlayOpaque, true
	case "redirect":
		return OverlayRedirect, true
	case "metacopy":
		return OverlayMetacopy, true
	case "whiteout":
		return OverlayWhiteout, true
	}
	return OverlayOther, true
}
