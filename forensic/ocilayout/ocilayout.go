// Package ocilayout writes OCI image layouts (image-spec v1.1, image-layout):
// a directory, or one tar archive of it.
//
// Invariants:
//   - Nothing appears under the output's name before Commit: blobs are staged
//     in a sibling directory OUTPUT.partial-XXXXXXXX (Partial), and Commit
//     renames it (a directory layout) or packs it into OUTPUT.partial-XXXXXXXX.tar
//     and renames that (a tar layout). An interrupted writer leaves only those
//     two names, which Abandon (or a cleanup that knows Partial) removes.
//   - Every blob is stored under the sha256 of the bytes written, computed
//     while writing; a blob is never rewritten once named.
//   - The tar form is deterministic: entries in sorted order, fixed times,
//     owner 0, so the same blobs and index give the same archive bytes.
//   - Layers written with PutLayer are gzip streams with a fixed header (no
//     name, no time), so the same uncompressed tar gives the same blob digest.
package ocilayout

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PartialMarker is in the name of a layout still being written.
const PartialMarker = ".partial-"

// Writer stages an OCI image layout and commits it to its output.
type Writer struct {
	out, stage string
	tar        bool
	done       bool
}

// IsTar tells whether out names a tar layout (FILE.tar) rather than a
// directory.
func IsTar(out string) bool { return strings.HasSuffix(out, ".tar") }

// Create starts a layout for out: FILE.tar, which must not exist, or a
// directory, which must not exist or be empty.
func Create(out string) (*Writer, error) {
	abs, err := filepath.Abs(out)
	if err != nil {
		return nil, err
	}
	w := &Writer{out: abs, tar: IsTar(abs)}
	if err := w.checkOutput(); err != nil {
		return nil, err
	}
	var id [4]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	w.stage = abs + PartialMarker + hex.EncodeToString(id[:])
	if err := os.MkdirAll(filepath.Join(w.stage, ocispec.ImageBlobsDir, "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("create layout staging directory: %w", err)
	}
	return w, nil
}

// OutputExistsError says the output is already there.
type OutputExistsError struct{ Path string }

func (e *OutputExistsError) Error() string {
	return e.Path + " already exists (a layout is never written over anything)"
}

func (w *Writer) checkOutput() error {
	st, err := os.Lstat(w.out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case w.tar || !st.IsDir():
		return &OutputExistsError{Path: w.out}
	}
	entries, err := os.ReadDir(w.out)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return &OutputExistsError{Path: w.out}
	}
	return nil
}

// Partial is the staging directory; Commit of a tar layout also writes
// Partial()+".tar" before renaming it.
func (w *Writer) Partial() string { return w.stage }

// PutBlob stores r as a blob and returns its descriptor.
func (w *Writer) PutBlob(mediaType string, r io.Reader) (ocispec.Descriptor, error) {
	f, err := os.CreateTemp(w.stage, "blob-")
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer os.Remove(f.Name())
	dg := digest.SHA256.Digester()
	n, err := io.Copy(io.MultiWriter(f, dg.Hash()), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("write blob: %w", err)
	}
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: dg.Digest(), Size: n}
	return desc, w.name(f.Name(), desc.Digest)
}

// name moves a written temporary file to its blob path.
func (w *Writer) name(tmp string, d digest.Digest) error {
	dst := filepath.Join(w.stage, filepath.FromSlash(BlobPath(d)))
	if _, err := os.Lstat(dst); err == nil {
		return nil // same digest, same bytes
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("store blob %s: %w", d, err)
	}
	return nil
}

// PutJSON stores v, encoded as JSON, as a blob and returns its descriptor.
func (w *Writer) PutJSON(mediaType string, v any) (ocispec.Descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("encode %s: %w", mediaType, err)
	}
	return w.PutBlob(mediaType, bytes.NewReader(b))
}

// PutLayer stores, as a gzip-compressed layer blob (ocispec.MediaTypeImageLayerGzip),
// the uncompressed tar that fn writes, and returns its descriptor and DiffID
// (the sha256 of the uncompressed tar).
func (w *Writer) PutLayer(fn func(io.Writer) error) (ocispec.Descriptor, digest.Digest, error) {
	pr, pw := io.Pipe()
	diffID := digest.SHA256.Digester()
	done := make(chan struct{})
	go func() {
		defer close(done)
		zw := gzip.NewWriter(pw) // the zero Header: no name, no time, OS unknown
		err := fn(io.MultiWriter(zw, diffID.Hash()))
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
		pw.CloseWithError(err)
	}()
	desc, err := w.PutBlob(ocispec.MediaTypeImageLayerGzip, pr)
	pr.CloseWithError(errors.New("layer blob not read to its end"))
	<-done // fn no longer runs: what it reads may be released
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	return desc, diffID.Digest(), nil
}

// Commit writes index.json and oci-layout and puts the layout at its output.
// It returns the output's absolute path.
func (w *Writer) Commit(index ocispec.Index) (string, error) {
	if index.SchemaVersion == 0 {
		index.Versioned = specs.Versioned{SchemaVersion: 2}
	}
	if index.MediaType == "" {
		index.MediaType = ocispec.MediaTypeImageIndex
	}
	if err := writeJSON(filepath.Join(w.stage, ocispec.ImageIndexFile), index); err != nil {
		return "", err
	}
	if err := writeJSON(filepath.Join(w.stage, ocispec.ImageLayoutFile), ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}); err != nil {
		return "", err
	}
	if err := w.checkOutput(); err != nil {
		return "", err
	}
	if !w.tar {
		os.Remove(w.out) // an empty directory given as the output
		if err := os.Rename(w.stage, w.out); err != nil {
			return "", fmt.Errorf("move layout into place: %w", err)
		}
		w.done = true
		return w.out, nil
	}
	if err := w.pack(); err != nil {
		return "", err
	}
	w.done = true
	os.RemoveAll(w.stage)
	return w.out, nil
}

// pack writes the staged layout into Partial()+".tar" and renames that to
// the output; Link fails when the output appeared meanwhile.
func (w *Writer) pack() error {
	tmp := w.stage + ".tar"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	err = WriteTar(w.stage, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp, w.out)
	}
	os.Remove(tmp)
	if err != nil {
		return fmt.Errorf("write %s: %w", w.out, err)
	}
	return nil
}

// Abandon removes what the writer staged; after Commit it does nothing.
func (w *Writer) Abandon() {
	if w.done {
		return
	}
	os.RemoveAll(w.stage)
	os.Remove(w.stage + ".tar")
}

// epoch is the time of every entry of a tar layout.
var epoch = time.Unix(0, 0).UTC()

// WriteTar writes the layout directory dir as a deterministic tar: oci-layout,
// index.json, then every other file in sorted order, each with mode 0644 (0755
// for directories), owner 0 and the Unix epoch as its time. Partial files
// (temporary blobs) are left out.
func WriteTar(dir string, w io.Writer) error {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", p)
		}
		if strings.HasPrefix(d.Name(), "blob-") {
			return nil
		}
		names = append(names, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(names, func(i, j int) bool { return tarOrder(names[i]) < tarOrder(names[j]) })
	tw := tar.NewWriter(w)
	for _, n := range names {
		if err := addFile(tw, dir, n); err != nil {
			return err
		}
	}
	return tw.Close()
}

// tarOrder puts oci-layout and index.json first, then the rest sorted.
func tarOrder(n string) string {
	switch n {
	case ocispec.ImageLayoutFile:
		return "0"
	case ocispec.ImageIndexFile:
		return "1"
	}
	return "2" + n
}

func addFile(tw *tar.Writer, dir, name string) error {
	p := filepath.Join(dir, filepath.FromSlash(name))
	st, err := os.Lstat(p)
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: name, Mode: 0o644, ModTime: epoch, Typeflag: tar.TypeReg, Size: st.Size(), Format: tar.FormatPAX}
	if st.IsDir() {
		hdr.Name, hdr.Mode, hdr.Typeflag, hdr.Size = name+"/", 0o755, tar.TypeDir, 0
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if st.IsDir() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	return nil
}

// BlobPath is the path of a blob inside a layout: blobs/ALG/HEX.
func BlobPath(d digest.Digest) string {
	return path.Join(ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
}

func writeJSON(p string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}

// Open opens a blob the writer stored.
func (w *Writer) Open(d digest.Digest) (*os.File, error) {
	return os.Open(filepath.Join(w.stage, filepath.FromSlash(BlobPath(d))))
}
