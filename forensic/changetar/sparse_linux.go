package changetar

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A sparse file is archived in the GNU sparse format 1.0 of PAX, which GNU tar,
// Go's archive/tar (and so containerd's applier) and libarchive restore: the
// PAX header carries GNU.sparse.major=1, minor=0, name and realsize; the
// entry's data starts with the map of the data regions (their count, then each
// offset and length, in decimal, one per line, padded to a block) followed by
// the regions' bytes. Holes take no room. archive/tar's Writer does not write
// this format (it drops GNU.sparse.* records), so the headers are encoded by
// archive/tar with same-length placeholder keys, which are then renamed in
// the encoded PAX records.

const (
	blockSize = 512
	// sparseKey stands in for "GNU.sparse." in the records archive/tar encodes.
	sparseKey = "CTR.sparse."
	gnuSparse = "GNU.sparse."
)

// region is a run of data in a sparse file.
type region struct{ off, n int64 }

// dataRegions finds the data of the open file fd of size bytes with
// SEEK_DATA and SEEK_HOLE (which read nothing); ok is false when the
// filesystem cannot tell or the file has no hole worth a sparse entry.
func dataRegions(fd int, size int64) (regions []region, ok bool) {
	var data int64
	for off := int64(0); off < size; {
		start, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole remains
		}
		if err != nil {
			return nil, false
		}
		end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
		if err != nil {
			return nil, false
		}
		end = min(end, size)
		if start >= end {
			break
		}
		regions = append(regions, region{start, end - start})
		data += end - start
		off = end
	}
	if _, err := unix.Seek(fd, 0, io.SeekStart); err != nil {
		return nil, false
	}
	if len(regions) == 0 || regions[len(regions)-1].off+regions[len(regions)-1].n < size {
		// A file ending in a hole ends its map with an empty region at its
		// size, as GNU tar writes it (GNU tar restores it too short otherwise).
		regions = append(regions, region{size, 0})
	}
	// A sparse entry is worth it only when it saves at least a block.
	return regions, size-data >= 2*blockSize
}

// sparseMap encodes the map of regions, padded to a block, and the size of
// the file's data in the entry (the map plus the regions).
func sparseMap(regions []region) ([]byte, int64) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d\n", len(regions))
	var data int64
	for _, r := range regions {
		fmt.Fprintf(&b, "%d\n%d\n", r.off, r.n)
		data += r.n
	}
	if pad := b.Len() % blockSize; pad != 0 {
		b.Write(make([]byte, blockSize-pad))
	}
	return b.Bytes(), int64(b.Len()) + data
}

// sparseHeaders encodes hdr as the PAX and USTAR headers of a sparse entry
// whose data (map and regions) is size bytes.
func sparseHeaders(hdr *tar.Header, size int64) ([]byte, error) {
	h := *hdr
	h.PAXRecords = make(map[string]string, len(hdr.PAXRecords)+4)
	for k, v := range hdr.PAXRecords {
		h.PAXRecords[k] = v
	}
	h.PAXRecords[sparseKey+"major"] = "1"
	h.PAXRecords[sparseKey+"minor"] = "0"
	h.PAXRecords[sparseKey+"name"] = hdr.Name
	h.PAXRecords[sparseKey+"realsize"] = strconv.FormatInt(hdr.Size, 10)
	// The name GNU tar gives the entry itself; readers use GNU.sparse.name.
	dir, base := "", hdr.Name
	if i := strings.LastIndexByte(hdr.Name, '/'); i >= 0 {
		dir, base = hdr.Name[:i+1], hdr.Name[i+1:]
	}
	h.Name, h.Size, h.Format = dir+"GNUSparseFile.0/"+base, size, tar.FormatPAX
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&h); err != nil { // writes the header blocks, no data
		return nil, err
	}
	b := buf.Bytes()
	if len(b) < 2*blockSize || b[156] != tar.TypeXHeader {
		return nil, errors.New("sparse entry: archive/tar wrote no PAX header")
	}
	n, err := strconv.ParseInt(strings.TrimRight(string(b[124:136]), "\x00 "), 8, 64)
	if err != nil || blockSize+n > int64(len(b)) {
		return nil, errors.New("sparse entry: unreadable PAX header size")
	}
	if err := renameKeys(b[blockSize:blockSize+n], sparseKey, gnuSparse); err != nil {
		return nil, err
	}
	return b, nil
}

// renameKeys renames, in place, the keys of the PAX records recs that start
// with from to start with to (of the same length). Records are walked by
// their length fields, so no value, whatever it holds, is ever taken for a key.
func renameKeys(recs []byte, from, to string) error {
	for len(recs) > 0 {
		sp := bytes.IndexByte(recs, ' ')
		if sp <= 0 {
			return errors.New("sparse entry: malformed PAX record")
		}
		n, err := strconv.Atoi(string(recs[:sp]))
		if err != nil || n <= sp || n > len(recs) {
			return errors.New("sparse entry: malformed PAX record")
		}
		if key := recs[sp+1 : n]; bytes.HasPrefix(key, []byte(from)) {
			copy(key, to)
		}
		recs = recs[n:]
	}
	return nil
}

// writeSparse writes the open file f, planned as e, as a sparse entry
// holding its planned data regions only, and hashes its logical content (the
// holes as zeros) into h. A region that ends early (the file shrank while it
// was read) is completed with zeros.
func (tb *tarBuilder) writeSparse(e *planned, f *os.File, h hash.Hash) error {
	hdr := tb.a.header(e, sparse)
	mapBytes, size := sparseMap(e.regions)
	headers, err := sparseHeaders(hdr, size)
	if err != nil {
		return err
	}
	if err := tb.tw.Flush(); err != nil { // the previous entry is complete
		return err
	}
	if _, err := tb.w.Write(headers); err != nil {
		return err
	}
	if _, err := tb.w.Write(mapBytes); err != nil {
		return err
	}
	tb.stats.Entries++
	var pos int64 // logical offset hashed so far
	short := false
	for _, r := range e.regions {
		hashZeros(h, r.off-pos)
		n, err := io.CopyN(io.MultiWriter(tb.w, h), ctxReader{tb.ctx, io.NewSectionReader(fdReaderAt(f.Fd()), r.off, r.n)}, r.n)
		tb.stats.Bytes += n
		if err == io.EOF {
			short = true
			hashZeros(h, r.n-n)
			err = writeZeros(tb.w, r.n-n)
		}
		if err != nil {
			return err
		}
		pos = r.off + r.n
	}
	if short {
		tb.note(e.c, "shrank while it was archived: the data past its new end archived as zeros")
	}
	hashZeros(h, hdr.Size-pos)
	return writeZeros(tb.w, blocks(size-int64(len(mapBytes)))-(size-int64(len(mapBytes))))
}

var zeros [64 << 10]byte

// hashZeros hashes n zero bytes, the content of a hole.
func hashZeros(h hash.Hash, n int64) {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		h.Write(zeros[:k])
		n -= k
	}
}

// fdReaderAt reads a descriptor at an offset with pread.
type fdReaderAt uintptr

func (f fdReaderAt) ReadAt(p []byte, off int64) (int, error) {
	for {
		n, err := unix.Pread(int(f), p, off)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}
