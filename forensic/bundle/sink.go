package bundle

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/klauspost/compress/gzip"

	"github.com/ctrforensics/ctrforensics/forensic/bagit"
	"github.com/ctrforensics/ctrforensics/forensic/custody"
)

// Sink stores a bundle somewhere other than the local file system (an
// object store) as one tar stream, written while the bundle is collected:
// no part of the bag is ever a local file. It may extend the chain of
// custody in a record of its own (the bag, once stored, is not appended to).
type Sink interface {
	// Name is where the bundle goes, ending in .tar, .tar.gz or .tgz; its
	// base name, without the extension, is the bag's top-level directory.
	Name() string
	// Begin starts storing the stream written to the Upload it returns
	// (gzip-compressed when Name ends in .gz or .tgz).
	Begin(ctx context.Context) (Upload, error)
}

// Upload receives the stream of one bundle (see Sink).
type Upload interface {
	io.Writer
	// Complete ends the stream and stores it; chain is the bag's chain of
	// custody and bag the digest of its tag manifest. It returns the chain's
	// head digest after what it recorded. On error nothing may look like a
	// stored bundle, unless the error says what was stored.
	Complete(ctx context.Context, chain []custody.Entry, bag string) (head string, err error)
	// Abort abandons the upload: nothing may look like a stored bundle. It
	// may be called after Complete failed, and more than once.
	Abort()
}

// CreateStream starts a bundle that the sink stores as it is written: the
// bag is written as one tar stream (see bagit.NewStream): the payload first,
// each file's size known before its content (PutStream, PutSized), then the
// tag files and the chain of custody. Store completes it.
func CreateStream(ctx context.Context, sink Sink, opts CreateOptions) (*Writer, error) {
	name := path.Base(sink.Name())
	if !isTarName(name) {
		return nil, fmt.Errorf("%s: a stored bundle is a tar: its name must end in .tar, .tar.gz or .tgz", sink.Name())
	}
	up, err := sink.Begin(ctx)
	if err != nil {
		return nil, err
	}
	st := &stream{sink: sink, up: up, w: up}
	if !strings.HasSuffix(name, ".tar") {
		st.zw, _ = gzip.NewWriterLevel(up, gzip.DefaultCompression) // the level is valid
		st.w = st.zw
	}
	bag, err := bagit.NewStream(st.w, bagName(name), opts.Algorithms...)
	if err != nil {
		up.Abort()
		return nil, err
	}
	return &Writer{bag: bag, stop: reportProgress(bag, opts.Progress), stream: st}, nil
}

// stream is where a Writer made by CreateStream writes.
type stream struct {
	sink Sink
	up   Upload
	zw   *gzip.Writer
	w    io.Writer // zw, or up
	// chain is the bag's chain of custody once sealed, bag the digest of
	// its tag manifest.
	chain []custody.Entry
	bag   string
}

// bagName is a bundle's top-level directory: its file name without .tar,
// .tar.gz or .tgz.
func bagName(file string) string {
	for _, ext := range []string{".tar.gz", ".tgz", ".tar"} {
		if n, ok := strings.CutSuffix(file, ext); ok {
			return n
		}
	}
	return file
}

func isTarName(name string) bool {
	for _, ext := range []string{".tar", ".tar.gz", ".tgz"} {
		if strings.HasSuffix(name, ext) && len(name) > len(ext) {
			return true
		}
	}
	return false
}

// Store ends the stream of a sealed bundle made by CreateStream and has the
// sink store it; it returns the sink's name and custody head. On error the
// caller must still Abandon.
func (w *Writer) Store(ctx context.Context) (name, head string, err error) {
	st := w.stream
	switch {
	case st == nil:
		return "", "", errors.New("store bundle: the bundle was not created for a sink")
	case st.chain == nil:
		return "", "", errors.New("store bundle: the bundle is not sealed")
	}
	if err := w.bag.Close(); err != nil {
		return "", "", fmt.Errorf("store bundle: %w", err)
	}
	if st.zw != nil {
		if err := st.zw.Close(); err != nil {
			return "", "", fmt.Errorf("store bundle: gzip: %w", err)
		}
	}
	if head, err = st.up.Complete(ctx, st.chain, st.bag); err != nil {
		return "", "", err
	}
	return st.sink.Name(), head, nil
}

// ReadCustodyStream returns the chain of custody and the tag manifest's
// digest of a tar or gzip-compressed tar bundle read as a stream, reading no
// further than the two files (packed bags hold their tag files first, bags
// written as a stream last).
func ReadCustodyStream(name string, r io.Reader) ([]custody.Entry, string, error) {
	files := map[string][]byte{}
	br := bufio.NewReaderSize(r, 64<<10)
	src := io.Reader(br)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w: a gzip stream that is not a tar archive (%v)", name, errNoBag, err)
		}
		defer zr.Close()
		src = zr
	}
	tr := tar.NewReader(src)
	for len(files) < 2 {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w: %v", name, errNoBag, err)
		}
		rel := stripTop(hdr.Name)
		if (rel == CustodyFile || rel == TagManifest) && hdr.Typeflag == tar.TypeReg {
			if files[rel], err = io.ReadAll(io.LimitReader(tr, 64<<20)); err != nil {
				return nil, "", fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	if files[TagManifest] == nil {
		return nil, "", fmt.Errorf("%s: %w (no %s)", name, errNoBag, TagManifest)
	}
	chain, err := custody.Read(bytes.NewReader(files[CustodyFile]))
	return chain, digestOf(files[TagManifest]), err
}
