package packages

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
)

// ScanFS scans fsys (paths below its root are taken as absolute paths of the
// scanned filesystem). Entries are offered by their directory entry type, so
// symbolic links are never followed; fsys must not follow a final symlink
// when opening a regular file it listed (os.DirFS does; use ScanDir on a
// live tree).
func ScanFS(ctx context.Context, fsys fs.FS, opts Options) (*Inventory, error) {
	s := NewScanner(opts)
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			s.notef("%s: %v", esc(p), err)
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		f := File{Path: path.Clean("/" + p), Mode: info.Mode(), Size: info.Size()}
		if !s.Wants(f) {
			return nil
		}
		r, err := fsys.Open(p)
		if err != nil {
			s.notef("%s: %v", esc(f.Path), err)
			return nil
		}
		defer r.Close()
		if ra, ok := r.(io.ReaderAt); ok && classify(f) == kindExec {
			return s.addExecAt(f, ra)
		}
		return s.Add(ctx, f, r)
	})
	if err != nil {
		return nil, fmt.Errorf("scan packages: %w", err)
	}
	return s.Finish(ctx)
}

// addExecAt examines an executable that can be read at offsets, without
// reading it whole.
func (s *Scanner) addExecAt(f File, ra io.ReaderAt) error {
	if f.Size > s.opts.MaxBinaryBytes {
		s.notef("%s: %d bytes, over the bound of %d for binaries and archives: not examined", esc(f.Path), f.Size, s.opts.MaxBinaryBytes)
		return nil
	}
	var magic [4]byte
	if _, err := ra.ReadAt(magic[:], 0); err != nil || string(magic[:]) != "\x7fELF" {
		return nil
	}
	s.addGoBinary(f.Path, io.NewSectionReader(ra, 0, f.Size))
	return nil
}

// ScanTar scans a tar stream of a whole filesystem (such as an image's final
// filesystem written by imagefs.Export). Only regular file entries are
// read; links are never resolved.
func ScanTar(ctx context.Context, r io.Reader, opts Options) (*Inventory, error) {
	s := NewScanner(opts)
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("scan packages: read tar: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		f := File{Path: path.Clean("/" + h.Name), Mode: h.FileInfo().Mode(), Size: h.Size}
		if !s.Wants(f) {
			continue
		}
		if err := s.Add(ctx, f, tr); err != nil {
			return nil, fmt.Errorf("scan packages: %w", err)
		}
	}
	return s.Finish(ctx)
}
