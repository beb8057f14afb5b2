package scan

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/imagefs"
)

// LayersInput scans every file of every layer of an image, including the
// files a later layer deletes or replaces: each File names its layer and
// whether the image's final filesystem still shows it (Hidden is false).
// The layer blobs are hostile input: names are cleaned as imagefs cleans
// them, whiteouts are not files, links are never followed.
func LayersInput(layers []imagefs.Layer) Input {
	return &layersInput{layers: layers}
}

type layersInput struct {
	layers []imagefs.Layer
}

// Walk implements Input.
func (in *layersInput) Walk(ctx context.Context, fn func(*File, io.Reader) error) error {
	final := make(map[string]int)
	err := imagefs.Walk(ctx, in.layers, imagefs.Options{}, func(e *imagefs.Entry) error {
		if e.Type != forensic.TypeDir {
			final[e.Path] = e.Layer
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the image's final filesystem: %w", err)
	}
	for k := range in.layers {
		if err := in.layer(ctx, k, final, fn); err != nil {
			return fmt.Errorf("layer %d: %w", k, err)
		}
	}
	return nil
}

func (in *layersInput) layer(ctx context.Context, k int, final map[string]int, fn func(*File, io.Reader) error) (err error) {
	// imagefs decompresses the blob (gzip, zstd or none, bounded) and checks
	// its digest and DiffID once it is read whole: a tampered layer fails
	// the scan.
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := imagefs.ExportLayer(ctx, in.layers, k, pw, imagefs.Options{})
		pw.CloseWithError(err)
		done <- err
	}()
	defer func() {
		pr.CloseWithError(errors.New("scan stopped"))
		if werr := <-done; err == nil && werr != nil {
			err = werr
		}
	}()
	tr := tar.NewReader(pr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			_, err = io.Copy(io.Discard, pr) // the tar's padding, so the digests are checked
			return err
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := in.entry(k, hdr, tr, final, fn); err != nil {
			return err
		}
	}
}

// entry passes one tar entry of layer k to fn; whiteouts and directories are
// not files.
func (in *layersInput) entry(k int, hdr *tar.Header, tr *tar.Reader, final map[string]int, fn func(*File, io.Reader) error) error {
	p, ok := cleanName(hdr.Name)
	if !ok || strings.HasPrefix(path.Base(p), ".wh.") {
		return nil
	}
	f := &File{Path: p, Type: tarType(hdr.Typeflag), Mode: uint32(hdr.Mode) & 0o7777, UID: uint32(hdr.Uid),
		GID: uint32(hdr.Gid), Size: hdr.Size, Layer: k}
	if f.Type == forensic.TypeDir {
		return nil
	}
	if v, ok := hdr.PAXRecords["SCHILY.xattr."+capabilityXattr]; ok {
		f.Capability = []byte(v)
	}
	if l, ok := final[p]; !ok || l != k {
		f.Hidden = true
	}
	var content io.Reader
	if hdr.Typeflag == tar.TypeReg { // the reader turns TypeRegA into TypeReg
		content = tr
	}
	return fn(f, content)
}

// cleanName makes a tar entry name absolute and clean; names escaping the
// root are refused.
func cleanName(name string) (string, bool) {
	for strings.HasPrefix(name, "./") || strings.HasPrefix(name, "/") {
		name = strings.TrimPrefix(strings.TrimPrefix(name, "./"), "/")
	}
	if name == "" || name == "." {
		return "", false
	}
	p := path.Clean("/" + name)
	if p == "/" || strings.Contains(name, "\x00") || hasDotDot(name) {
		return "", false
	}
	return p, true
}

func hasDotDot(name string) bool {
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return true
		}
	}
	return false
}

func tarType(flag byte) forensic.FileType {
	switch flag {
	case tar.TypeReg, tar.TypeLink:
		return forensic.TypeFile
	case tar.TypeDir:
		return forensic.TypeDir
	case tar.TypeSymlink:
		return forensic.TypeSymlink
	case tar.TypeFifo:
		return forensic.TypeFIFO
	case tar.TypeChar:
		return forensic.TypeChar
	case tar.TypeBlock:
		return forensic.TypeBlock
	}
	return forensic.TypeUnknown
}
