package imagefs

import (
	"crypto/sha256"
	"strings"
	"time"
	"unsafe"

	"github.com/opencontainers/go-digest"

	"github.com/ctrforensics/ctrforensics/forensic"
)

// maxLayers is the number of layers a rec can name.
const maxLayers = 1<<16 - 1

// File types as stored in a rec.
const (
	tFile uint8 = iota
	tDir
	tSymlink
	tFIFO
	tChar
	tBlock
)

// fileType returns the forensic name of a rec type.
func fileType(t uint8) forensic.FileType {
	switch t {
	case tFile:
		return forensic.TypeFile
	case tDir:
		return forensic.TypeDir
	case tSymlink:
		return forensic.TypeSymlink
	case tFIFO:
		return forensic.TypeFIFO
	case tChar:
		return forensic.TypeChar
	case tBlock:
		return forensic.TypeBlock
	}
	return forensic.TypeUnknown
}

// rec flags.
const (
	fHardLink uint8 = 1 << iota
	// fResolved: a hard link whose target was found; ext.srcLayer/srcOrd name
	// the entry holding its content.
	fResolved
	fImplicit // a parent directory no layer shipped
)

// rec is the compact form of an entry kept for every path: 72 bytes plus its
// path in an arena, its digest (when hashed) in another, and an ext for the
// rare extras.
type rec struct {
	path string // "/a/b"
	ext  *recExt
	// sum is the content's sha256, nil when not hashed; it points into an
	// arena shared by the entries of a layer.
	sum   *[sha256.Size]byte
	size  int64
	sec   int64
	nsec  int32
	ord   int32 // index of the entry's header in its layer's tar
	mode  uint32
	uid   uint32
	gid   uint32
	layer uint16
	typ   uint8
	flags uint8
}

// recExt holds what few entries need.
type recExt struct {
	link         string
	xattrs       map[string]string
	major, minor int64
	srcOrd       int32
	srcLayer     uint16
}

func (r *rec) x() *recExt {
	if r.ext == nil {
		r.ext = &recExt{}
	}
	return r.ext
}

func (r *rec) isDir() bool { return r.typ == tDir }

// hasContent says whether the rec's own header carries the content.
func (r *rec) hasContent() bool { return r.typ == tFile && r.flags&fHardLink == 0 }

func (r *rec) mtime() time.Time { return time.Unix(r.sec, int64(r.nsec)).UTC() }

func (r *rec) digest() digest.Digest {
	if r.sum == nil {
		return ""
	}
	return digest.NewDigestFromBytes(digest.SHA256, r.sum[:])
}

// entry converts r into an Entry, sharing its strings.
func (r *rec) entry() Entry {
	e := Entry{
		Path: r.path, Type: fileType(r.typ), Digest: r.digest(), Mtime: r.mtime(),
		Size: r.size, Layer: int(r.layer), Mode: r.mode, UID: r.uid, GID: r.gid,
		HardLink: r.flags&fHardLink != 0,
	}
	if x := r.ext; x != nil {
		e.LinkTarget, e.Xattrs, e.DevMajor, e.DevMinor = x.link, x.xattrs, x.major, x.minor
	}
	return e
}

// chunkLen is the number of elements in a chunk of a seq.
const chunkLen = 1 << 12

// seq is an append-only sequence stored in fixed chunks: growing it never
// copies, and draining it releases each chunk once read.
type seq[T any] struct {
	chunks [][]T
	n      int
}

func (s *seq[T]) push(v T) {
	if s.n%chunkLen == 0 {
		s.chunks = append(s.chunks, make([]T, 0, chunkLen))
	}
	c := &s.chunks[len(s.chunks)-1]
	*c = append(*c, v)
	s.n++
}

func (s *seq[T]) at(i int) *T { return &s.chunks[i/chunkLen][i%chunkLen] }

// drain calls fn on every element in order and releases the chunks behind it;
// s is empty afterwards.
func (s *seq[T]) drain(fn func(*T) error) error {
	defer func() { *s = seq[T]{} }()
	for ci, c := range s.chunks {
		for i := range c {
			if err := fn(&c[i]); err != nil {
				return err
			}
		}
		s.chunks[ci] = nil
	}
	return nil
}

// find returns the index of path p in s, which is sorted, or -1.
func find(s *seq[rec], p string) int {
	lo, hi := 0, s.n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if comparePaths(s.at(mid).path, p) < 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < s.n && s.at(lo).path == p {
		return lo
	}
	return -1
}

// comparePaths orders paths component by component: byte order with "/"
// below every other byte (names hold no NUL), so that a directory's subtree
// directly follows it.
func comparePaths(a, b string) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	switch {
	case i == n:
		return len(a) - len(b)
	case a[i] == '/':
		return -1
	case b[i] == '/':
		return 1
	}
	return int(a[i]) - int(b[i])
}

// within says whether p lies strictly below directory dir.
func within(p, dir string) bool {
	if dir == "/" {
		return len(p) > 1
	}
	return len(p) > len(dir) && p[len(dir)] == '/' && strings.HasPrefix(p, dir)
}

// parentOf returns the parent of an absolute cleaned path.
func parentOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// arenaLen is the size of an interner chunk; longer strings get their own.
const arenaLen = 64 << 10

// interner copies strings into shared chunks, so that a million paths cost
// their bytes and not a million allocations. Bytes written are never changed.
type interner struct {
	buf []byte
}

// str returns a copy of prefix+s.
func (in *interner) str(prefix, s string) string {
	n := len(prefix) + len(s)
	if n == 0 {
		return ""
	}
	if n > arenaLen/16 {
		return prefix + s
	}
	if cap(in.buf)-len(in.buf) < n {
		in.buf = make([]byte, 0, arenaLen)
	}
	start := len(in.buf)
	in.buf = append(append(in.buf, prefix...), s...)
	return unsafe.String(&in.buf[start], n)
}

// sumsLen is the number of digests in a sums chunk (64 KiB).
const sumsLen = 2048

// sums hands out digest slots from shared chunks, so that a million digests
// cost their bytes and not a million allocations. A slot is never reused.
type sums struct {
	buf [][sha256.Size]byte
}

// next returns a new slot.
func (s *sums) next() *[sha256.Size]byte {
	if len(s.buf) == cap(s.buf) {
		s.buf = make([][sha256.Size]byte, 0, sumsLen)
	}
	s.buf = s.buf[:len(s.buf)+1]
	return &s.buf[len(s.buf)-1]
}
