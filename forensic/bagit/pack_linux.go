package bagit

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/sys/unix"
)

// packEntry is a file or directory to pack, with the metadata tar keeps.
type packEntry struct {
	rel   string
	dir   bool
	group int
	mode  int64
	uid   int
	gid   int
	mtime time.Time
}

// Pack writes the finished bag in dir to w as one PAX tar stream, gzip
// compressed when gz is set. Entries are named below a top-level directory
// named after dir's base name, as "tar -C parent -c name" would; bagit.txt,
// bag-info.txt, the manifests, the tag manifests and the other tag files come
// first, then data/, each group sorted by path. Only regular files and
// directories are packed; a symlink or special file is an error.
func Pack(dir string, w io.Writer, gz bool) error {
	base := filepath.Base(filepath.Clean(dir))
	if base == "/" || base == "." || base == ".." {
		return fmt.Errorf("pack %s: the bag directory needs a name", dir)
	}
	rootfd, err := openRoot(dir)
	if err != nil {
		return fmt.Errorf("pack bag: %w", err)
	}
	defer unix.Close(rootfd)
	var st unix.Stat_t
	if err := unix.Fstat(rootfd, &st); err != nil {
		return fmt.Errorf("pack bag %s: %w", dir, err)
	}
	entries, err := packList(rootfd)
	if err != nil {
		return fmt.Errorf("pack bag %s: %w", dir, err)
	}
	if err := packTo(w, gz, base, rootfd, append([]packEntry{newPackEntry("", &st)}, entries...)); err != nil {
		return fmt.Errorf("pack bag %s: %w", dir, err)
	}
	return nil
}

// packTo writes the entries as a tar stream, compressed if gz is set.
func packTo(w io.Writer, gz bool, base string, rootfd int, entries []packEntry) error {
	if !gz {
		return writeTar(w, base, rootfd, entries)
	}
	zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	if err := writeTar(zw, base, rootfd, entries); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	return nil
}

// packList walks the bag and returns its entries in packing order.
func packList(rootfd int) ([]packEntry, error) {
	var entries []packEntry
	visit := func(_ context.Context, _ int, _, rel string, st *unix.Stat_t) (bool, error) {
		if !isDir(st) && !isReg(st) {
			return false, fmt.Errorf("%s is a %s; only regular files and directories can be packed", rel, kindOf(st.Mode))
		}
		entries = append(entries, newPackEntry(rel, st))
		return true, nil
	}
	fail := func(rel string, err error) error { return fmt.Errorf("%s: %w", rel, err) }
	if err := walk(context.Background(), rootfd, "", visit, fail); err != nil {
		return nil, err
	}
	sort.SliceStable(entries, func(i, j int) bool {
		if entries[i].group != entries[j].group {
			return entries[i].group < entries[j].group
		}
		return entries[i].rel < entries[j].rel
	})
	return entries, nil
}

func newPackEntry(rel string, st *unix.Stat_t) packEntry {
	return packEntry{
		rel:   rel,
		dir:   isDir(st),
		group: packGroup(rel),
		mode:  int64(st.Mode & 0o7777),
		uid:   int(st.Uid),
		gid:   int(st.Gid),
		mtime: time.Unix(st.Mtim.Unix()),
	}
}

// packGroup ranks a path in packing order.
func packGroup(rel string) int {
	if rel == payloadDir || strings.HasPrefix(rel, payloadRoot) {
		return 5
	}
	if _, tag, ok := parseManifestName(rel); ok {
		if tag {
			return 3
		}
		return 2
	}
	switch rel {
	case bagitTxt:
		return 0
	case bagInfoTxt:
		return 1
	}
	return 4
}

// writeTar writes the entries and the end of the archive.
func writeTar(w io.Writer, base string, rootfd int, entries []packEntry) error {
	tw := tar.NewWriter(w)
	buf := make([]byte, blockSize)
	for _, e := range entries {
		if err := writeEntry(tw, base, rootfd, e, buf); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("tar: %w", err)
	}
	return nil
}

// writeEntry writes one entry; a file is read through a descriptor opened
// without following symlinks and must not shrink while it is packed.
func writeEntry(tw *tar.Writer, base string, rootfd int, e packEntry, buf []byte) error {
	hdr := &tar.Header{
		Name:    joinRel(base, e.rel),
		Mode:    e.mode,
		Uid:     e.uid,
		Gid:     e.gid,
		ModTime: e.mtime,
		Format:  tar.FormatPAX,
	}
	if e.dir {
		hdr.Typeflag, hdr.Name = tar.TypeDir, strings.TrimSuffix(hdr.Name, "/")+"/"
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("tar %s: %w", hdr.Name, err)
		}
		return nil
	}
	f, err := openFile(rootfd, e.rel)
	if err != nil {
		return err
	}
	defer f.Close()
	hdr.Typeflag, hdr.Size = tar.TypeReg, f.st.Size
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("tar %s: %w", e.rel, err)
	}
	n, err := io.CopyBuffer(tw, io.LimitReader(f, f.st.Size), buf)
	if err != nil {
		return fmt.Errorf("pack %s: %w", e.rel, err)
	}
	if n != f.st.Size {
		return fmt.Errorf("pack %s: file shrank from %d to %d bytes while it was packed", e.rel, f.st.Size, n)
	}
	return nil
}
