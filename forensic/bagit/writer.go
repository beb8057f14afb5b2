package bagit

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

const (
	dirMode  = 0o755
	fileMode = 0o644
)

// Writer builds a bag in a directory (Create) or as a tar stream
// (NewStream). Its methods are safe for concurrent use; each payload file is
// written through its own io.WriteCloser, and a stream takes one at a time,
// of a size given before its content.
type Writer struct {
	st   store
	algs algSet

	mu       sync.Mutex
	payload  map[string]*record // by bag-relative path, "data/..."
	tags     map[string]*record // WriteTag files, by bag-relative path
	dirs     map[string]bool    // bag-relative directories holding written files
	open     int
	finished bool
	// tagManifests holds what Finish wrote as tag manifests, by path;
	// unlisted the files WriteUnlisted wrote.
	tagManifests map[string][]byte
	unlisted     map[string]bool

	files, bytes atomic.Int64
}

// record is what the manifests say of one file: its digests, concatenated in
// algorithm order, once done.
type record struct {
	sums []byte
	done bool
}

// Create starts a bag in dir, which must not exist or be an empty directory,
// and creates dir and dir/data. Without algorithms the bag uses sha256 and
// sha512.
func Create(dir string, algs ...Algorithm) (*Writer, error) {
	set, err := algSetOf(algs)
	if err != nil {
		return nil, fmt.Errorf("create bag %s: %w", dir, err)
	}
	if err := mkdir(dir); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("create bag: %w", err)
	}
	names, err := readDirNames(dir)
	if err != nil {
		return nil, fmt.Errorf("create bag: %w", err)
	}
	if len(names) > 0 {
		return nil, fmt.Errorf("create bag %s: directory is not empty", dir)
	}
	if err := mkdir(filepath.Join(dir, payloadDir)); err != nil {
		return nil, fmt.Errorf("create bag: %w", err)
	}
	return newWriter(dirStore{dir}, set), nil
}

// NewStream starts a bag written to w as one PAX tar stream whose entries
// are below the top-level directory name (a single path component): the
// payload in the order it is written, then the tag files, then what
// WriteUnlisted adds; Close ends the archive. Nothing is written anywhere
// else. Each payload file's size must be given before its content
// (CreatePayloadSized). Without algorithms the bag uses sha256 and sha512.
func NewStream(w io.Writer, name string, algs ...Algorithm) (*Writer, error) {
	set, err := algSetOf(algs)
	if err != nil {
		return nil, fmt.Errorf("create bag %s: %w", name, err)
	}
	st, err := newStreamStore(w, name)
	if err != nil {
		return nil, fmt.Errorf("create bag: %w", err)
	}
	if err := st.mkdir(payloadDir); err != nil {
		return nil, fmt.Errorf("create bag: %w", err)
	}
	return newWriter(st, set), nil
}

func newWriter(st store, algs algSet) *Writer {
	return &Writer{
		st:      st,
		algs:    algs,
		payload: make(map[string]*record),
		tags:    make(map[string]*record),
		dirs:    map[string]bool{".": true, payloadDir: true},

		tagManifests: make(map[string][]byte),
	}
}

// mkdir creates a directory of mode 0755 whatever the umask; its parents
// are created as needed.
func mkdir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), dirMode); err != nil {
		return err
	}
	if err := os.Mkdir(dir, dirMode); err != nil {
		return err
	}
	return os.Chmod(dir, dirMode)
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// Progress returns the number of payload files closed and of payload bytes
// written so far. It is safe to call from another goroutine.
func (w *Writer) Progress() (files, bytes int64) {
	return w.files.Load(), w.bytes.Load()
}

// reserve claims a bag-relative path for a new file and creates its parents.
func (w *Writer) reserve(rel string, into map[string]*record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.finished {
		return errors.New("bag is finished")
	}
	if _, ok := w.payload[rel]; ok {
		return errors.New("already written")
	}
	if _, ok := w.tags[rel]; ok {
		return errors.New("already written")
	}
	if err := w.mkdirs(path.Dir(rel)); err != nil {
		return err
	}
	into[rel] = &record{}
	return nil
}

// mkdirs creates the bag-relative directory dir and its missing parents.
func (w *Writer) mkdirs(dir string) error {
	if w.dirs[dir] {
		return nil
	}
	if err := w.mkdirs(path.Dir(dir)); err != nil {
		return err
	}
	if err := w.st.mkdir(dir); err != nil {
		return fmt.Errorf("create parent: %w", err)
	}
	w.dirs[dir] = true
	return nil
}

// complete records the digests of a file written under a reserved path.
func (w *Writer) complete(rel string, into map[string]*record, sums *[numAlgs][]byte) {
	b := w.pack(sums)
	w.mu.Lock()
	into[rel].sums, into[rel].done = b, true
	w.mu.Unlock()
}

// CreatePayload creates the payload file data/<rel>; rel is a clean relative
// slash-separated path such as "rootfs/changes.tar". Every byte written is
// hashed with every algorithm of the bag; Close syncs the file to disk and
// records its digests. The caller must Close it before Finish. A stream
// (NewStream) refuses it: see CreatePayloadSized.
func (w *Writer) CreatePayload(rel string) (io.WriteCloser, error) {
	return w.CreatePayloadSized(rel, -1)
}

// CreatePayloadSized is CreatePayload for a file of size bytes: Close fails
// unless exactly size bytes were written (a stream's entry left short or
// long cannot be repaired: the bag must be abandoned). A negative size is
// unknown.
func (w *Writer) CreatePayloadSized(rel string, size int64) (io.WriteCloser, error) {
	if why := checkName(rel); why != "" {
		return nil, fmt.Errorf("create payload %q: %s", rel, why)
	}
	bagRel := payloadRoot + rel
	if err := w.reserve(bagRel, w.payload); err != nil {
		return nil, fmt.Errorf("create payload %q: %w", rel, err)
	}
	f, err := w.st.create(bagRel, size)
	if err != nil {
		return nil, fmt.Errorf("create payload %q: %w", rel, err)
	}
	w.mu.Lock()
	w.open++
	w.mu.Unlock()
	d := newDigester()
	d.reset(w.algs, f)
	return &payloadWriter{w: w, rel: bagRel, f: f, d: d, size: size}, nil
}

// payloadWriter writes and hashes one payload file.
type payloadWriter struct {
	w      *Writer
	rel    string
	f      io.WriteCloser
	d      *digester
	err    error
	closed bool
	// size is the size announced (negative: none), n what was written.
	size, n int64
}

// Write writes p to the payload file.
func (p *payloadWriter) Write(b []byte) (int, error) {
	if p.closed {
		return 0, fmt.Errorf("write payload %s: %w", p.rel, os.ErrClosed)
	}
	if p.err != nil {
		return 0, p.err
	}
	n, err := p.d.Write(b)
	p.n += int64(n)
	p.w.bytes.Add(int64(n))
	if err != nil {
		p.err = fmt.Errorf("write payload %s: %w", p.rel, err)
		return n, p.err
	}
	return n, nil
}

// Close writes what is buffered, syncs and closes the file and records its
// digests in the bag.
func (p *payloadWriter) Close() error {
	if p.closed {
		return fmt.Errorf("close payload %s: %w", p.rel, os.ErrClosed)
	}
	p.closed = true
	defer func() {
		p.w.mu.Lock()
		p.w.open--
		p.w.mu.Unlock()
	}()
	sums, err := p.d.finish()
	p.d.close()
	if err == nil {
		err = p.err
	}
	if err == nil && p.size >= 0 && p.n != p.size {
		err = fmt.Errorf("%d bytes written, %d announced", p.n, p.size)
	}
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close payload %s: %w", p.rel, err)
	}
	p.w.complete(p.rel, p.w.payload, sums)
	p.w.files.Add(1)
	return nil
}

// WritePayload writes b as the payload file data/<rel>.
func (w *Writer) WritePayload(rel string, b []byte) error {
	f, err := w.CreatePayloadSized(rel, int64(len(b)))
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WriteTag writes b as a tag file at rel, relative to the bag root (for
// example "metadata/acquisition.json"); it is listed in the tag manifests.
// rel may not be under data/ nor a name the bag reserves for itself.
func (w *Writer) WriteTag(rel string, b []byte) error {
	if why := checkName(rel); why != "" {
		return fmt.Errorf("write tag %q: %s", rel, why)
	}
	if reservedTag(rel) {
		return fmt.Errorf("write tag %q: name is reserved for the bag's own tag files", rel)
	}
	if err := w.reserve(rel, w.tags); err != nil {
		return fmt.Errorf("write tag %q: %w", rel, err)
	}
	_, sums, err := w.writeTagFile(rel, func(out io.Writer) error {
		_, err := out.Write(b)
		return err
	})
	if err != nil {
		return fmt.Errorf("write tag: %w", err)
	}
	w.complete(rel, w.tags, sums)
	return nil
}

// checkName reports why rel cannot name a file the writer creates.
func checkName(rel string) string {
	if !utf8.ValidString(rel) {
		return "path is not UTF-8, which manifests require"
	}
	return checkRel(rel)
}

// reservedTag reports whether rel may not be written by WriteTag.
func reservedTag(rel string) bool {
	if rel == payloadDir || strings.HasPrefix(rel, payloadRoot) {
		return true
	}
	if _, _, ok := parseManifestName(rel); ok {
		return true
	}
	return rel == bagitTxt || rel == bagInfoTxt || rel == fetchTxt
}

// writeTagFile creates the file rel with what fill writes (held in memory:
// tag files are small, and a stream needs their size first), and returns
// its content and digests.
func (w *Writer) writeTagFile(rel string, fill func(io.Writer) error) ([]byte, *[numAlgs][]byte, error) {
	var buf bytes.Buffer
	if err := fill(&buf); err != nil {
		return nil, nil, fmt.Errorf("write %s: %w", rel, err)
	}
	f, err := w.st.create(rel, int64(buf.Len()))
	if err != nil {
		return nil, nil, fmt.Errorf("write %s: %w", rel, err)
	}
	d := newDigester()
	defer d.close()
	d.reset(w.algs, f)
	_, err = d.Write(buf.Bytes())
	var sums *[numAlgs][]byte
	if err == nil {
		sums, err = d.finish()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, nil, fmt.Errorf("write %s: %w", rel, err)
	}
	return buf.Bytes(), sums, nil
}

// Finish writes bagit.txt, bag-info.txt (info in order, then Payload-Oxum and,
// unless info has one, Bagging-Date), the payload manifests and the tag
// manifests, and syncs a directory bag to disk. Every payload writer must be
// closed. The writer refuses further writes afterwards, even when Finish
// fails, but for WriteUnlisted.
func (w *Writer) Finish(info []Field) error {
	if err := checkInfo(info); err != nil {
		return fmt.Errorf("finish bag: %w", err)
	}
	if err := w.seal(); err != nil {
		return fmt.Errorf("finish bag: %w", err)
	}
	tags := sortedRecords(w.tags)
	for _, s := range w.finishSteps(info) {
		_, sums, err := w.writeTagFile(s.name, s.fill)
		if err != nil {
			return fmt.Errorf("finish bag: %w", err)
		}
		tags = append(tags, named{s.name, w.pack(sums)})
	}
	sort.Slice(tags, func(a, b int) bool { return tags[a].path < tags[b].path })
	for i := algIndex(0); i < numAlgs; i++ {
		if !w.algs.has(i) {
			continue
		}
		name := manifestName(true, i)
		b, _, err := w.writeTagFile(name, func(out io.Writer) error { return w.writeManifest(out, i, tags) })
		if err != nil {
			return fmt.Errorf("finish bag: %w", err)
		}
		w.tagManifests[name] = b
	}
	if ds, ok := w.st.(dirStore); ok {
		return ds.finish(w.dirList())
	}
	return nil
}

// TagManifest returns the tag manifest of algorithm alg that Finish wrote,
// or nil.
func (w *Writer) TagManifest(alg Algorithm) []byte {
	i, ok := lookupAlg(alg)
	if !ok {
		return nil
	}
	return w.tagManifests[manifestName(true, i)]
}

// WriteUnlisted writes b as the file rel once the bag is finished: a file no
// manifest lists, that verifies itself (a chain of custody, a signature over
// the tag manifests). rel may not be under data/ nor be a file the bag holds
// or reserves.
func (w *Writer) WriteUnlisted(rel string, b []byte) error {
	if why := checkName(rel); why != "" {
		return fmt.Errorf("write %q: %s", rel, why)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	_, taken := w.tags[rel]
	switch {
	case !w.finished:
		return fmt.Errorf("write %q: the bag is not finished", rel)
	case reservedTag(rel) || taken || w.unlisted[rel]:
		return fmt.Errorf("write %q: the bag holds or reserves that name", rel)
	case path.Dir(rel) != "." && !w.dirs[path.Dir(rel)]:
		return fmt.Errorf("write %q: its directory is not in the bag", rel)
	}
	f, err := w.st.create(rel, int64(len(b)))
	if err != nil {
		return fmt.Errorf("write %s: %w", rel, err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", rel, err)
	}
	if w.unlisted == nil {
		w.unlisted = map[string]bool{}
	}
	w.unlisted[rel] = true
	return nil
}

// Close ends a stream (the end of the archive) or syncs a directory bag
// again; nothing may be written afterwards.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.finished {
		return errors.New("close bag: the bag is not finished")
	}
	if err := w.st.finish(w.dirListLocked()); err != nil {
		return fmt.Errorf("close bag: %w", err)
	}
	return nil
}

// tagStep is a tag file Finish writes and lists in the tag manifests.
type tagStep struct {
	name string
	fill func(io.Writer) error
}

// finishSteps returns bagit.txt, bag-info.txt and the payload manifests.
func (w *Writer) finishSteps(info []Field) []tagStep {
	steps := []tagStep{
		{bagitTxt, writeBagitTxt},
		{bagInfoTxt, func(out io.Writer) error { return w.writeBagInfo(out, info) }},
	}
	payload := sortedRecords(w.payload)
	for i := algIndex(0); i < numAlgs; i++ {
		if w.algs.has(i) {
			steps = append(steps, tagStep{manifestName(false, i), func(out io.Writer) error { return w.writeManifest(out, i, payload) }})
		}
	}
	return steps
}

// seal marks the writer finished and checks that every payload is complete.
func (w *Writer) seal() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.finished {
		return errors.New("bag is already finished")
	}
	w.finished = true
	if w.open > 0 {
		return fmt.Errorf("%d payload files are still open", w.open)
	}
	for p, r := range w.payload {
		if !r.done {
			return fmt.Errorf("payload %s was not written completely", p)
		}
	}
	for p, r := range w.tags {
		if !r.done {
			return fmt.Errorf("tag file %s was not written completely", p)
		}
	}
	return nil
}

// checkInfo validates bag-info.txt fields given to Finish.
func checkInfo(info []Field) error {
	for _, f := range info {
		switch {
		case f.Label == "" || strings.TrimSpace(f.Label) != f.Label:
			return fmt.Errorf("bag-info label %q is empty or has surrounding spaces", f.Label)
		case strings.ContainsAny(f.Label, ":\r\n"):
			return fmt.Errorf("bag-info label %q holds a colon or line break", f.Label)
		case strings.ContainsAny(f.Value, "\r\n"):
			return fmt.Errorf("bag-info value of %s holds a line break", f.Label)
		case !utf8.ValidString(f.Label) || !utf8.ValidString(f.Value):
			return fmt.Errorf("bag-info field %q is not UTF-8", f.Label)
		case strings.EqualFold(f.Label, labelOxum):
			return fmt.Errorf("bag-info field %s is computed by the writer", labelOxum)
		}
	}
	return nil
}

// named is a file's bag-relative path and its digests in algorithm order.
type named struct {
	path string
	sums []byte
}

func sortedRecords(m map[string]*record) []named {
	out := make([]named, 0, len(m))
	for p, r := range m {
		out = append(out, named{p, r.sums})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].path < out[b].path })
	return out
}

// pack concatenates digests in algorithm order.
func (w *Writer) pack(sums *[numAlgs][]byte) []byte {
	var b []byte
	for i := algIndex(0); i < numAlgs; i++ {
		if w.algs.has(i) {
			b = append(b, sums[i]...)
		}
	}
	return b
}

// offset returns where the digest of algorithm i starts in a packed record.
func (w *Writer) offset(i algIndex) int {
	off := 0
	for j := algIndex(0); j < i; j++ {
		if w.algs.has(j) {
			off += algSpecs[j].size
		}
	}
	return off
}

func writeBagitTxt(out io.Writer) error {
	_, err := fmt.Fprintf(out, "BagIt-Version: %s\nTag-File-Character-Encoding: UTF-8\n", bagitVersion)
	return err
}

func (w *Writer) writeBagInfo(out io.Writer, info []Field) error {
	files, bytes := w.Progress()
	hasDate := false
	for _, f := range info {
		hasDate = hasDate || strings.EqualFold(f.Label, labelDate)
		if _, err := fmt.Fprintf(out, "%s: %s\n", f.Label, f.Value); err != nil {
			return err
		}
	}
	if _, err := fmt.Fprintf(out, "%s: %d.%d\n", labelOxum, bytes, files); err != nil {
		return err
	}
	if !hasDate {
		_, err := fmt.Fprintf(out, "%s: %s\n", labelDate, time.Now().UTC().Format(time.DateOnly))
		return err
	}
	return nil
}

// writeManifest writes one line per file: lowercase hex, two spaces, path.
func (w *Writer) writeManifest(out io.Writer, i algIndex, files []named) error {
	off, size := w.offset(i), algSpecs[i].size
	line := make([]byte, 0, 256)
	for _, f := range files {
		line = hex.AppendEncode(line[:0], f.sums[off:off+size])
		line = append(line, "  "...)
		line = append(line, encodePath(f.path)...)
		line = append(line, '\n')
		if _, err := out.Write(line); err != nil {
			return err
		}
	}
	return nil
}

// dirList returns the directories that received files.
func (w *Writer) dirList() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dirListLocked()
}

func (w *Writer) dirListLocked() []string {
	dirs := make([]string, 0, len(w.dirs))
	for d := range w.dirs {
		dirs = append(dirs, d)
	}
	return dirs
}
