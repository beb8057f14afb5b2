package bundle

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/gzip"

	"github.com/ctrforensics/ctrforensics/forensic/bagit"
	"github.com/ctrforensics/ctrforensics/forensic/custody"
)

// Sink stores a sealed bundle somewhere other than the local file system (an
// object store), as one tar stream that is never a local file, and may extend
// its chain of custody in a record of its own (the bag, once stored, is not
// appended to).
type Sink interface {
	// Name is where the bundle goes, ending in .tar, .tar.gz or .tgz; its
	// base name, without the extension, is the bag's top-level directory.
	Name() string
	// Store stores the bag that pack writes (gzip-compressed when Name ends
	// in .gz or .tgz). chain is the bag's chain of custody and bag the
	// digest of its tag manifest. It returns the chain's head digest after
	// what it recorded. On error nothing may look like a stored bundle.
	Store(ctx context.Context, pack func(io.Writer) error, chain []custody.Entry, bag string) (head string, err error)
}

// CreateStaged starts a bundle that Store will send to sink: the bag is
// built in a partial directory under stage (see Writer.Partial), and only
// its packed stream leaves it.
func CreateStaged(stage string, sink Sink, opts CreateOptions) (*Writer, error) {
	name := path.Base(sink.Name())
	if !isTarName(name) {
		return nil, fmt.Errorf("%s: a stored bundle is a tar: its name must end in .tar, .tar.gz or .tgz", sink.Name())
	}
	abs, err := filepath.Abs(filepath.Join(stage, name))
	if err != nil {
		return nil, err
	}
	o := &output{final: abs, tar: true, gzip: !strings.HasSuffix(name, ".tar")}
	if err := o.makePartial(); err != nil {
		return nil, err
	}
	bag, err := bagit.Create(o.bag, opts.Algorithms...)
	if err != nil {
		o.abandon()
		return nil, err
	}
	return &Writer{out: o, bag: bag, stop: reportProgress(bag, opts.Progress), sink: sink}, nil
}

func isTarName(name string) bool {
	for _, ext := range []string{".tar", ".tar.gz", ".tgz"} {
		if strings.HasSuffix(name, ext) && len(name) > len(ext) {
			return true
		}
	}
	return false
}

// Store sends the sealed bundle to the sink it was created for (see
// CreateStaged), then removes the staged bag, and returns the sink's name and
// custody head. On error the caller must still Abandon.
func (w *Writer) Store(ctx context.Context) (name, head string, err error) {
	if w.sink == nil {
		return "", "", errors.New("store bundle: the bundle was not created for a sink")
	}
	tm, err := os.ReadFile(w.path(TagManifest))
	if err != nil {
		return "", "", fmt.Errorf("store bundle: %w", err)
	}
	line, err := os.ReadFile(w.path(CustodyFile))
	if err != nil {
		return "", "", fmt.Errorf("store bundle: %w", err)
	}
	chain, err := custody.Read(bytes.NewReader(line))
	if err != nil {
		return "", "", fmt.Errorf("store bundle: %w", err)
	}
	pack := func(dst io.Writer) error { return bagit.Pack(w.out.bag, dst, w.out.gzip) }
	if head, err = w.sink.Store(ctx, pack, chain, digestOf(tm)); err != nil {
		return "", "", err
	}
	return w.sink.Name(), head, os.RemoveAll(w.out.partial)
}

// ReadCustodyStream returns the chain of custody and the tag manifest's
// digest of a tar or gzip-compressed tar bundle read as a stream, reading no
// further than the two files (packed bags hold their tag files first).
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
