package imagefs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unsafe"

	"github.com/opencontainers/go-digest"
)

// IndexStore keeps layer indexes between runs, outside the evidence: what
// reading a layer in full found (every entry with its metadata, the digests
// of its files when they were hashed, its DiffID, its warnings), so that a
// later run can skip decompressing it. An index is only stored once the layer
// was read to its end and its blob digest and DiffID checked, and only used
// once the blob's digest is checked again (see cachedLayer), so it serves
// any blob of its digest; the store may drop it at any time. An index that
// does not decode, or names another blob or DiffID, is ignored. What an
// index says is believed: keep it where the examined host cannot write.
type IndexStore interface {
	// Get returns the index stored for the blob of digest d, or nil.
	Get(d digest.Digest) []byte
	// Put stores the index of the blob of digest d that write writes; a
	// failure only means the next run reads the layer again.
	Put(d digest.Digest, write func(io.Writer) error)
}

// indexMagic starts an encoded index; its last digit is the format version.
const indexMagic = "ctrforensics layer index 1\n"

// Bits of an encoded op.
const (
	ixEntry = 1 << iota
	ixWhiteout
	ixOpaque
	ixHardLink
	ixSum
	ixExt
)

// cachedLayer returns layer k read from its index, or nil when there is none
// that fits: a layer of another DiffID, without the digests or the DiffID
// the read needs, or larger than the limit, or whose blob no longer has its
// digest. The blob is read and its digest checked again before the index is
// used, without decompressing it: an index is the deterministic result of
// decompressing the bytes of that digest, so only the decompression is
// saved, and nothing is trusted for bytes that were not checked. With
// c.checkLater the check is handed over instead, and the caller must see it
// pass before it says anything the index decided.
func cachedLayer(ctx context.Context, layers []Layer, k int, c *config, hash, report bool) *layerOps {
	l := layers[k]
	if c.index == nil || l.Digest == "" {
		return nil
	}
	b := c.index.Get(l.Digest)
	if b == nil {
		return nil
	}
	x, lo, err := decodeIndex(b, k)
	switch {
	case err != nil, x.digest != l.Digest, x.wantDiffID != l.DiffID, hash && !x.hashed,
		report && x.diffID == "", x.size > c.maxBytes:
		return nil
	}
	if c.checkLater != nil {
		c.checkLater(k, func() error {
			if err := checkBlob(ctx, l); err != nil {
				return fmt.Errorf("%s: blob checked before its index is used: %w", layerName(layers, k), err)
			}
			return nil
		})
	} else if checkBlob(ctx, l) != nil {
		return nil // read in full, which fails naming the blob
	}
	for _, w := range x.warnings {
		c.warn(fmt.Sprintf("layer %d: %s", k, w))
	}
	if c.indexed != nil {
		c.indexed(k)
	}
	lo.indexed = true
	return lo
}

// checkBlob reads l's blob to its end and checks its digest, without
// decompressing it.
func checkBlob(ctx context.Context, l Layer) error {
	raw, err := l.Open(ctx)
	if err != nil {
		return err
	}
	defer raw.Close()
	want := l.Digest
	if l.DigestChecked {
		want = "" // the stream fails its last read on a mismatch
	}
	blob, err := newHashReader(raw, want, false)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(io.Discard, blob, make([]byte, 256<<10)); err != nil {
		return err
	}
	if err := blob.verify(); err != nil {
		return fmt.Errorf("blob digest: %w", err)
	}
	return nil
}

// storeLayer stores the index x of layer k, read in full and checked, with
// ops, the layer's ops in tar order, before they are sorted.
func storeLayer(layers []Layer, k int, c *config, x *index, ops *seq[op]) {
	if c.index == nil || x.digest == "" {
		return
	}
	prefix := fmt.Sprintf("layer %d: ", k)
	for i, w := range x.warnings {
		x.warnings[i] = strings.TrimPrefix(w, prefix)
	}
	c.index.Put(x.digest, func(w io.Writer) error { return encodeIndex(w, x, ops) })
}

// index is what an encoded layer index says besides the layer's ops.
type index struct {
	// digest and wantDiffID are the layer's blob digest and expected DiffID.
	digest, wantDiffID digest.Digest
	// diffID is the DiffID checked or computed, bytes the size of its files.
	diffID digest.Digest
	bytes  int64
	// hashed says the ops carry the digests of their files.
	hashed bool
	// size bounds the layer's decompressed size and the content it yields.
	size int64
	// warnings are the layer's warnings, without their "layer N: " prefix.
	warnings []string
}

// encodeIndex writes x with ops, the layer's ops in tar order, followed by
// the sha256 of everything before it, a block at a time.
func encodeIndex(w io.Writer, x *index, ops *seq[op]) error {
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, h), 64<<10)
	b := []byte(indexMagic)
	b = appendString(b, string(x.digest))
	b = appendString(b, string(x.wantDiffID))
	b = appendString(b, string(x.diffID))
	b = binary.AppendVarint(b, x.bytes)
	b = binary.AppendVarint(b, x.size)
	b = append(b, boolByte(x.hashed))
	b = binary.AppendUvarint(b, uint64(len(x.warnings)))
	for _, w := range x.warnings {
		b = appendString(b, w)
	}
	b = binary.AppendUvarint(b, uint64(ops.n))
	for i := range ops.n {
		if len(b) >= 32<<10 {
			if _, err := bw.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
		b = appendOp(b, ops.at(i))
	}
	if _, err := bw.Write(b); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err := w.Write(h.Sum(nil))
	return err
}

func appendOp(b []byte, o *op) []byte {
	bits := byte(0)
	for _, f := range []struct {
		on  bool
		bit byte
	}{{o.entry, ixEntry}, {o.whiteout, ixWhiteout}, {o.opaque, ixOpaque}, {o.flags&fHardLink != 0, ixHardLink},
		{o.sum != nil, ixSum}, {o.ext != nil, ixExt}} {
		if f.on {
			bits |= f.bit
		}
	}
	b = append(b, bits, o.typ)
	b = appendString(b, o.path)
	b = binary.AppendVarint(b, o.size)
	b = binary.AppendVarint(b, o.sec)
	b = binary.AppendVarint(b, int64(o.nsec))
	b = binary.AppendVarint(b, int64(o.ord))
	b = binary.AppendUvarint(b, uint64(o.mode))
	b = binary.AppendUvarint(b, uint64(o.uid))
	b = binary.AppendUvarint(b, uint64(o.gid))
	if o.sum != nil {
		b = append(b, o.sum[:]...)
	}
	if x := o.ext; x != nil {
		b = appendString(b, x.link)
		b = binary.AppendVarint(b, x.major)
		b = binary.AppendVarint(b, x.minor)
		b = binary.AppendUvarint(b, uint64(len(x.xattrs)))
		keys := make([]string, 0, len(x.xattrs))
		for k := range x.xattrs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = appendString(appendString(b, k), x.xattrs[k])
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// errIndex says an index does not decode.
var errIndex = errors.New("not a valid layer index")

// decodeIndex decodes an index of layer k into the layer read it records.
// Paths and digests are copied into arenas, as a read of the layer stores
// them: b is not kept.
func decodeIndex(b []byte, k int) (*index, *layerOps, error) {
	if len(b) < len(indexMagic)+sha256.Size || !bytes.HasPrefix(b, []byte(indexMagic)) {
		return nil, nil, errIndex
	}
	body := b[:len(b)-sha256.Size]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], b[len(body):]) {
		return nil, nil, errIndex
	}
	d := &decoder{b: body[len(indexMagic):]}
	x := &index{}
	x.digest = digest.Digest(strings.Clone(d.str()))
	x.wantDiffID = digest.Digest(strings.Clone(d.str()))
	x.diffID = digest.Digest(strings.Clone(d.str()))
	x.bytes = d.varint()
	x.size = d.varint()
	x.hashed = d.byte() == 1
	for range d.count() {
		x.warnings = append(x.warnings, strings.Clone(d.str()))
	}
	rd := &reader{in: &interner{}}
	for range d.count() {
		rd.ops.push(d.op(k, rd))
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, nil, errIndex
	}
	lo := rd.sorted()
	lo.diffID, lo.bytes = x.diffID, x.bytes
	return x, lo, nil
}

// decoder reads an encoded index; the first error sticks and reads
// return zero values from then on.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err, d.b = errIndex, nil }

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a number of items, each at least one byte long.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) bytes(n int) []byte {
	if n > len(d.b) {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// str returns a string sharing the index's bytes: it must be copied to be
// kept.
func (d *decoder) str() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	v := d.bytes(int(n))
	if len(v) == 0 {
		return ""
	}
	return unsafe.String(&v[0], len(v))
}

// op decodes an op of layer k, its strings and digest copied into rd's
// arenas.
func (d *decoder) op(k int, rd *reader) op {
	bits, typ := d.byte(), d.byte()
	o := op{entry: bits&ixEntry != 0, whiteout: bits&ixWhiteout != 0, opaque: bits&ixOpaque != 0}
	o.path, o.typ, o.layer = rd.in.str("", d.str()), typ, uint16(k)
	o.size, o.sec = d.varint(), d.varint()
	o.nsec, o.ord = int32(d.varint()), int32(d.varint())
	o.mode, o.uid, o.gid = uint32(d.uvarint()), uint32(d.uvarint()), uint32(d.uvarint())
	if bits&ixHardLink != 0 {
		o.flags |= fHardLink
	}
	if bits&ixSum != 0 {
		if s := d.bytes(sha256.Size); s != nil {
			o.sum = rd.sums.next()
			copy(o.sum[:], s)
		}
	}
	if bits&ixExt != 0 {
		x := o.x()
		x.link = rd.in.str("", d.str())
		x.major, x.minor = d.varint(), d.varint()
		for range d.count() {
			if x.xattrs == nil {
				x.xattrs = map[string]string{}
			}
			key := strings.Clone(d.str())
			x.xattrs[key] = strings.Clone(d.str())
		}
	}
	return o
}
