package changetar

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/internal/fdio"
)

// WriteChangesTar writes changes as an OCI layer: every added or changed entry
// of root (the container's filesystem, mounted read-only) with its content and
// all its metadata (PAX headers with nanosecond times, owners, modes, every
// extended attribute, device numbers, link targets), hard links as links, and
// every deletion as a whiteout (.wh.NAME; the entries lost with a deleted or
// replaced directory need none). Applied over the image, it gives the
// container's filesystem. It is Plan(Layer) written at once: see Archive for
// content that changed since the diff. A change whose name an OCI layer
// cannot carry (see UnsafeName) is left out, with a note; a hard link to such
// a name is archived as a copy.
func WriteChangesTar(ctx context.Context, w io.Writer, root string, changes []forensic.Change, opts Options) (*TarStats, error) {
	return planAndWrite(ctx, w, root, changes, Layer, opts)
}

// WriteUnsafeTar writes, as a plain tar in the format of WriteChangesTar, the
// changes WriteChangesTar leaves out because of their names (see UnsafeName),
// each under its own name: extracted as ordinary files (tar -x) over the
// image with the changes tar applied, it completes the container's
// filesystem. It is not an OCI layer and must never be applied as one. A
// deletion of such a name cannot be written and is noted.
func WriteUnsafeTar(ctx context.Context, w io.Writer, root string, changes []forensic.Change, opts Options) (*TarStats, error) {
	return planAndWrite(ctx, w, root, changes, Unsafe, opts)
}

// WritePlainTar writes every change but deletions, whatever its name, as a
// plain tar in the format of WriteChangesTar: the content of a tree that is
// not compared with an image (a tmpfs, a volume), to be extracted with tar
// -x, never applied as a layer. root is that tree, read-only, and the
// changes' paths are relative to it. A deletion cannot be written and is
// noted.
func WritePlainTar(ctx context.Context, w io.Writer, root string, changes []forensic.Change, opts Options) (*TarStats, error) {
	return planAndWrite(ctx, w, root, changes, Plain, opts)
}

func planAndWrite(ctx context.Context, w io.Writer, root string, changes []forensic.Change, kind Kind, opts Options) (*TarStats, error) {
	a, err := Plan(ctx, root, changes, kind, opts)
	if err != nil {
		return nil, err
	}
	return a.WriteTo(ctx, w)
}

// tarHeader describes md as a PAX header keeping every attribute a PAX record
// can hold; it returns the names of the extended attributes it had to drop.
func tarHeader(name string, md *forensic.Metadata) (*tar.Header, []string) {
	hdr := &tar.Header{
		Name: name, Mode: int64(md.Mode), Uid: int(md.UID), Gid: int(md.GID),
		ModTime: md.Mtime, AccessTime: md.Atime, ChangeTime: md.Ctime,
		Format: tar.FormatPAX, PAXRecords: map[string]string{},
	}
	switch md.Type {
	case forensic.TypeDir:
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
	case forensic.TypeSymlink:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, md.LinkTarget
	case forensic.TypeFIFO:
		hdr.Typeflag = tar.TypeFifo
	case forensic.TypeChar, forensic.TypeBlock:
		hdr.Typeflag = tar.TypeChar
		if md.Type == forensic.TypeBlock {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(md.DevMajor), int64(md.DevMinor)
	default:
		hdr.Typeflag, hdr.Size = tar.TypeReg, md.Size
	}
	var dropped []string
	for k, v := range md.Xattrs {
		if strings.ContainsAny(k, "=\x00") {
			dropped = append(dropped, k)
			continue
		}
		hdr.PAXRecords["SCHILY.xattr."+k] = string(v)
	}
	return hdr, dropped
}

// dirCache keeps the chain of directory handles leading to the last entry, so
// that consecutive paths of a sorted change set share them and no path is
// ever resolved as a whole (no symlink followed, no PATH_MAX limit). The
// handles keep a bounded number of descriptors open, however deep the chain,
// and moving from one path to the next costs the components that differ.
type dirCache struct {
	dirs  *fdio.Dirs
	cur   string      // the directory chain ends at, relative to the root ("" for the root)
	chain []*fdio.Dir // chain[0] is the root, then one handle per component of cur
}

func newDirCache(root string) (*dirCache, error) {
	dirs := fdio.NewDirs(fdio.DefaultDirBudget)
	d, err := dirs.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("open container root: %w", err)
	}
	return &dirCache{dirs: dirs, chain: []*fdio.Dir{d}}, nil
}

// parent returns the directory holding rel and rel's base name.
func (d *dirCache) parent(rel string) (*fdio.Dir, string, error) {
	dir, base := "", rel
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		dir, base = rel[:i], rel[i+1:]
	}
	for !within(dir, d.cur) {
		d.chain[len(d.chain)-1].Close()
		d.chain = d.chain[:len(d.chain)-1]
		d.cur = d.cur[:max(strings.LastIndexByte(d.cur, '/'), 0)]
	}
	for len(d.cur) < len(dir) {
		start := len(d.cur)
		if start > 0 {
			start++ // the slash after cur
		}
		end := len(dir)
		if i := strings.IndexByte(dir[start:], '/'); i >= 0 {
			end = start + i
		}
		sub, err := d.chain[len(d.chain)-1].Open(dir[start:end], 0)
		if err != nil {
			return nil, "", err
		}
		d.chain, d.cur = append(d.chain, sub), dir[:end]
	}
	return d.chain[len(d.chain)-1], base, nil
}

// within reports whether dir is cur or below it.
func within(dir, cur string) bool {
	return cur == "" || dir == cur || len(dir) > len(cur) && dir[len(cur)] == '/' && dir[:len(cur)] == cur
}

func (d *dirCache) close() {
	for i := len(d.chain) - 1; i >= 0; i-- {
		d.chain[i].Close()
	}
}
