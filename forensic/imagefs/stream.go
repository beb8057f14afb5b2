package imagefs

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

// zstdMaxWindow is the largest zstd window accepted, as the zstd tool does by
// default: a bigger one would make the decoder allocate it.
const zstdMaxWindow = 128 << 20

// stream reads one layer blob as a tar: blob, blob digest, decompression,
// size bound and diff ID, then tar.
type stream struct {
	name     string
	raw      io.ReadCloser
	blob     *hashReader // the blob as stored
	dec      io.Reader   // decompressed
	closeDec func()
	lim      *limitReader
	tr       *tar.Reader
	max      int64
	content  int64 // content bytes read from entries, bounded too
	want     Layer
	ord      int // ordinal of the current header, -1 before the first
	// computeDiffID hashes the uncompressed tar even when no DiffID is known.
	computeDiffID bool
}

// openStream opens layer k of layers for reading as a tar.
func openStream(ctx context.Context, layers []Layer, k int, c *config, computeDiffID bool) (*stream, error) {
	l := layers[k]
	s := &stream{name: layerName(layers, k), want: l, max: c.maxBytes, ord: -1, closeDec: func() {},
		computeDiffID: computeDiffID}
	if l.Open == nil {
		return nil, fmt.Errorf("%s: no Open function", s.name)
	}
	raw, err := l.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", s.name, err)
	}
	s.raw = raw
	if err := s.setup(ctx); err != nil {
		s.close()
		return nil, fmt.Errorf("open %s: %w", s.name, err)
	}
	return s, nil
}

func (s *stream) setup(ctx context.Context) error {
	var err error
	want := s.want.Digest
	if s.want.DigestChecked {
		want = ""
	}
	if s.blob, err = newHashReader(s.raw, want, false); err != nil {
		return fmt.Errorf("blob digest: %w", err)
	}
	br := bufio.NewReaderSize(s.blob, 64<<10)
	if err := s.decompress(br); err != nil {
		return err
	}
	diff, err := newHashReader(s.dec, s.want.DiffID, s.computeDiffID)
	if err != nil {
		return fmt.Errorf("diff ID: %w", err)
	}
	s.lim = &limitReader{ctx: ctx, r: diff.piped(), max: s.max}
	s.tr = tar.NewReader(s.lim)
	return nil
}

// decompress sets s.dec from the media type, or from the magic bytes when
// the type says nothing.
func (s *stream) decompress(br *bufio.Reader) error {
	comp := compressionOf(s.want.MediaType)
	if comp == "" {
		magic, _ := br.Peek(4)
		comp = sniff(magic)
	}
	switch comp {
	case "gzip":
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		s.dec, s.closeDec = zr, func() { zr.Close() }
	case "zstd":
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return fmt.Errorf("zstd: %w", err)
		}
		s.dec, s.closeDec = zr, zr.Close
	case "none":
		s.dec = br
	default:
		return fmt.Errorf("unsupported media type %q", s.want.MediaType)
	}
	return nil
}

// compressionOf returns "gzip", "zstd" or "none" from a layer media type, ""
// when the type says nothing, or "unsupported".
func compressionOf(mt string) string {
	switch {
	case mt == "":
		return ""
	case strings.Contains(mt, "encrypted"):
		return "unsupported"
	case strings.HasSuffix(mt, "gzip"):
		return "gzip"
	case strings.HasSuffix(mt, "zstd"):
		return "zstd"
	case strings.HasSuffix(mt, ".tar"):
		return "none"
	}
	return ""
}

func sniff(magic []byte) string {
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return "gzip"
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd"
	}
	return "none"
}

// next returns the next header, io.EOF at the end of the archive.
func (s *stream) next() (*tar.Header, error) {
	hdr, err := s.tr.Next()
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.name, s.cause(err))
	}
	s.ord++
	if s.ord > maxOrd {
		return nil, fmt.Errorf("read %s: more than %d entries", s.name, maxOrd)
	}
	return hdr, nil
}

// maxOrd is the largest entry ordinal a rec can hold.
const maxOrd = 1<<31 - 1

// cause prefers the size-bound error to what the tar reader made of it.
func (s *stream) cause(err error) error {
	if s.lim.err != nil {
		return s.lim.err
	}
	return err
}

// copyContent copies the current entry's content to w, bounded like the
// decompressed stream: a sparse entry expands without reading anything.
func (s *stream) copyContent(w io.Writer, buf []byte) (int64, error) {
	r := io.LimitReader(s.tr, s.max-s.content+1)
	n, err := io.CopyBuffer(w, r, buf)
	s.content += n
	if err != nil {
		return n, fmt.Errorf("read %s: %w", s.name, s.cause(err))
	}
	if s.content > s.max {
		return n, fmt.Errorf("read %s: content exceeds the limit of %d bytes (MaxLayerBytes): possible decompression bomb",
			s.name, s.max)
	}
	return n, nil
}

// finish reads the rest of the blob and verifies its digests.
func (s *stream) finish() error {
	if _, err := io.Copy(io.Discard, s.lim); err != nil {
		return fmt.Errorf("read %s: %w", s.name, err)
	}
	if _, err := io.Copy(io.Discard, s.blob); err != nil {
		return fmt.Errorf("read %s: %w", s.name, err)
	}
	if err := s.diffID().verify(); err != nil {
		return fmt.Errorf("%s: diff ID: %w", s.name, err)
	}
	if err := s.blob.verify(); err != nil {
		return fmt.Errorf("%s: blob digest: %w", s.name, err)
	}
	return nil
}

// finishBlob reads the rest of the blob as stored, without decompressing it,
// and checks its digest: what was decompressed came from checked bytes.
func (s *stream) finishBlob() error {
	s.closeDec()
	s.closeDec = func() {}
	if _, err := io.Copy(io.Discard, s.blob); err != nil {
		return fmt.Errorf("read %s: %w", s.name, err)
	}
	if err := s.blob.verify(); err != nil {
		return fmt.Errorf("%s: blob digest: %w", s.name, err)
	}
	return nil
}

func (s *stream) diffID() *hashReader { return s.lim.r.(*hashReader) }

func (s *stream) close() {
	if s.lim != nil {
		s.diffID().stop()
	}
	s.closeDec()
	s.raw.Close()
}

// limitReader fails once more than max bytes were read, and when ctx is done.
type limitReader struct {
	ctx context.Context
	r   io.Reader
	n   int64
	max int64
	err error
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if err := l.ctx.Err(); err != nil {
		return 0, err
	}
	if room := l.max - l.n + 1; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.max {
		l.err = fmt.Errorf("decompressed size exceeds the limit of %d bytes (MaxLayerBytes): possible decompression bomb", l.max)
		return n, l.err
	}
	return n, err
}

// hashReader digests what is read through it when a digest is expected,
// inline or, when piped, on a goroutine of its own (see hashPipe).
type hashReader struct {
	r    io.Reader
	want digest.Digest
	h    hash.Hash
	pipe *hashPipe
}

// newHashReader hashes with want's algorithm, or with sha256 when want is
// empty and compute is set.
func newHashReader(r io.Reader, want digest.Digest, compute bool) (*hashReader, error) {
	hr := &hashReader{r: r, want: want}
	if want == "" {
		if compute {
			hr.h = digest.SHA256.Hash()
		}
		return hr, nil
	}
	if err := want.Validate(); err != nil {
		return nil, fmt.Errorf("expected digest %q: %w", want, err)
	}
	hr.h = want.Algorithm().Hash()
	return hr, nil
}

// piped makes h hash on a goroutine of its own; stop must then be called.
func (h *hashReader) piped() *hashReader {
	if h.h != nil {
		h.pipe = newHashPipe(h.r, h.h)
	}
	return h
}

func (h *hashReader) Read(p []byte) (int, error) {
	if h.pipe != nil {
		return h.pipe.Read(p)
	}
	n, err := h.r.Read(p)
	if h.h != nil && n > 0 {
		h.h.Write(p[:n])
	}
	return n, err
}

// stop ends the hashing goroutine of a piped hashReader, once everything
// read is hashed. Reading on hashes nothing more.
func (h *hashReader) stop() {
	if h.pipe != nil {
		h.pipe.stop()
	}
}

// verify compares the digest of everything read with the expected one.
func (h *hashReader) verify() error {
	h.stop()
	if h.h == nil || h.want == "" {
		return nil
	}
	if got := digest.NewDigest(h.want.Algorithm(), h.h); got != h.want {
		return fmt.Errorf("mismatch: content is %s, expected %s", got, h.want)
	}
	return nil
}

// sum returns the digest of everything read: the expected one once verified,
// the computed one, or "" when nothing was hashed.
func (h *hashReader) sum() digest.Digest {
	h.stop()
	if h.h == nil || h.want != "" {
		return h.want
	}
	return digest.NewDigest(digest.SHA256, h.h)
}
