package imagefs

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/internal/fdio"
)

// DirLayer returns a Layer that streams the directory dir as an OCI layer
// tar: an overlayfs layer directory as containerd's overlay snapshotter keeps
// it, where a whiteout is a 0/0 character device and an opaque directory
// carries trusted.overlay.opaque=y or user.overlay.opaque=y, converted to OCI
// whiteouts on the fly. The walk goes through descriptors (openat with
// O_NOFOLLOW and O_NOATIME, fstatat with AT_SYMLINK_NOFOLLOW), so no symlink
// is ever followed; sockets are left out, as tar cannot hold them. Use it when
// the blobs were discarded after unpacking and only snapshots remain. Its
// Digest and DiffID are unknown (empty).
func DirLayer(dir string) Layer {
	return Layer{MediaType: ocispec.MediaTypeImageLayer, Open: func(ctx context.Context) (io.ReadCloser, error) {
		fd, err := fdio.OpenNoatime(unix.AT_FDCWD, dir, fdio.DirFlags)
		if err != nil {
			return nil, fmt.Errorf("open layer directory %s: %w", dir, err)
		}
		pr, pw := io.Pipe()
		go func() {
			defer unix.Close(fd)
			pw.CloseWithError(writeDirTar(ctx, fd, pw))
		}()
		return pr, nil
	}}
}

// writeDirTar writes the tree below the directory fd as a layer tar.
func writeDirTar(ctx context.Context, fd int, w io.Writer) error {
	d := &dirWriter{ctx: ctx, tw: tar.NewWriter(w), links: map[[2]uint64]string{}, buf: make([]byte, 32<<10)}
	opaque, err := d.dirXattrs(fd, nil)
	if err != nil {
		return err
	}
	if opaque {
		if err := d.whiteout("", whOpaque, time.Time{}); err != nil {
			return err
		}
	}
	if err := d.walk(fd, ""); err != nil {
		return err
	}
	return d.tw.Close()
}

type dirWriter struct {
	ctx   context.Context
	tw    *tar.Writer
	links map[[2]uint64]string // first path of each inode with several links
	buf   []byte
}

// walk writes the entries of the directory dirfd, named rel ("" or ending in "/").
func (d *dirWriter) walk(dirfd int, rel string) error {
	names, err := fdio.ReadNames(dirfd)
	if err != nil {
		return fmt.Errorf("read directory /%s: %w", rel, err)
	}
	for _, name := range names {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		if err := d.entry(dirfd, rel, name); err != nil {
			return err
		}
	}
	return nil
}

// entry writes dirfd's entry name and, for a directory, its tree.
func (d *dirWriter) entry(dirfd int, rel, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil // removed meanwhile
		}
		return fmt.Errorf("stat /%s%s: %w", rel, name, err)
	}
	h := statHeader(&st, rel+name)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		if st.Rdev == 0 {
			return d.whiteout(rel, whPrefix+name, h.ModTime)
		}
		h.Typeflag = tar.TypeChar
	case unix.S_IFBLK:
		h.Typeflag = tar.TypeBlock
	case unix.S_IFIFO:
		h.Typeflag = tar.TypeFifo
	case unix.S_IFSOCK:
		return nil
	case unix.S_IFDIR:
		return d.dir(dirfd, name, &st, h)
	}
	return d.nonDir(dirfd, name, &st, h)
}

// statHeader returns the header of a stat result named name.
func statHeader(st *unix.Stat_t, name string) *tar.Header {
	return &tar.Header{
		Name: name, Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec), Format: tar.FormatPAX,
		Devmajor: int64(unix.Major(st.Rdev)), Devminor: int64(unix.Minor(st.Rdev)),
	}
}

// whiteout writes an OCI whiteout entry named rel+base.
func (d *dirWriter) whiteout(rel, base string, mtime time.Time) error {
	return d.write(&tar.Header{Name: rel + base, Typeflag: tar.TypeReg, ModTime: mtime, Format: tar.FormatPAX}, -1)
}

// dir writes the directory dirfd/name, its opaque marker and its tree.
func (d *dirWriter) dir(dirfd int, name string, st *unix.Stat_t, h *tar.Header) error {
	fd, err := fdio.OpenNoatime(dirfd, name, fdio.DirFlags)
	if err != nil {
		return fmt.Errorf("open /%s: %w", h.Name, err)
	}
	defer unix.Close(fd)
	if err := sameFile(fd, st); err != nil {
		return fmt.Errorf("open /%s: %w", h.Name, err)
	}
	h.Typeflag, h.Devmajor, h.Devminor = tar.TypeDir, 0, 0
	opaque, err := d.dirXattrs(fd, h)
	if err != nil {
		return fmt.Errorf("/%s: %w", h.Name, err)
	}
	rel := h.Name + "/"
	h.Name = rel
	if err := d.write(h, -1); err != nil {
		return err
	}
	if opaque {
		if err := d.whiteout(rel, whOpaque, h.ModTime); err != nil {
			return err
		}
	}
	return d.walk(fd, rel)
}

// nonDir writes a file, symlink, device or FIFO; h has its type set but for
// files and symlinks.
func (d *dirWriter) nonDir(dirfd int, name string, st *unix.Stat_t, h *tar.Header) error {
	if h.Typeflag != tar.TypeChar && h.Typeflag != tar.TypeBlock {
		h.Devmajor, h.Devminor = 0, 0
	}
	if st.Nlink > 1 {
		key := [2]uint64{st.Dev, st.Ino}
		if first, ok := d.links[key]; ok {
			h.Typeflag, h.Linkname = tar.TypeLink, first
			return d.write(h, -1)
		}
		d.links[key] = h.Name
	}
	_, x, err := fdio.Xattrs(dirfd, name, nil)
	if err != nil {
		return fmt.Errorf("/%s: %w", h.Name, err)
	}
	setXattrs(h, x)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		h.Typeflag = tar.TypeSymlink
		if h.Linkname, err = fdio.ReadlinkAt(dirfd, name); err != nil {
			return fmt.Errorf("readlink /%s: %w", h.Name, err)
		}
	case unix.S_IFREG:
		return d.file(dirfd, name, st, h)
	}
	return d.write(h, -1)
}

// file writes a regular file with its content.
func (d *dirWriter) file(dirfd int, name string, st *unix.Stat_t, h *tar.Header) error {
	fd, err := fdio.OpenNoatime(dirfd, name, fdio.FileFlags)
	if err != nil {
		return fmt.Errorf("open /%s: %w", h.Name, err)
	}
	defer unix.Close(fd)
	if err := sameFile(fd, st); err != nil {
		return fmt.Errorf("open /%s: %w", h.Name, err)
	}
	h.Typeflag, h.Size = tar.TypeReg, st.Size
	return d.write(h, fd)
}

// write writes h and, from fd unless it is -1, exactly h.Size bytes: a file
// that shrank meanwhile is padded with zeros, one that grew is cut.
func (d *dirWriter) write(h *tar.Header, fd int) error {
	if err := d.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("write /%s: %w", h.Name, err)
	}
	if fd < 0 || h.Size == 0 {
		return nil
	}
	n, err := io.CopyBuffer(d.tw, io.LimitReader(fdio.File(fd), h.Size), d.buf)
	if err != nil {
		return fmt.Errorf("copy /%s: %w", h.Name, err)
	}
	for ; n < h.Size; n++ {
		if _, err := d.tw.Write([]byte{0}); err != nil {
			return fmt.Errorf("copy /%s: %w", h.Name, err)
		}
	}
	return nil
}

// dirXattrs sets h's xattrs from the directory fd, when h is not nil, and
// says whether the directory is opaque.
func (d *dirWriter) dirXattrs(fd int, h *tar.Header) (bool, error) {
	x, err := fdio.FdXattrs(fd)
	if err != nil {
		return false, err
	}
	opaque := string(x["trusted.overlay.opaque"]) == "y" || string(x["user.overlay.opaque"]) == "y"
	if h != nil {
		setXattrs(h, x)
	}
	return opaque, nil
}

// setXattrs records x in h as PAX records, but overlayfs's own.
func setXattrs(h *tar.Header, x map[string][]byte) {
	for k, v := range x {
		if strings.HasPrefix(k, "trusted.overlay.") || strings.HasPrefix(k, "user.overlay.") {
			continue
		}
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords[xattrPrefix+k] = string(v)
	}
}

// sameFile checks that fd is the file st described, not one swapped in.
func sameFile(fd int, st *unix.Stat_t) error {
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil {
		return err
	}
	if now.Dev != st.Dev || now.Ino != st.Ino {
		return errors.New("replaced while being read")
	}
	return nil
}
