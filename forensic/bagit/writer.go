package bagit

import (
	"bufio"
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

// Writer builds a bag in a directory. Its methods are safe for concurrent
// use; each payload file is written through its own io.WriteCloser.
type Writer struct {
	dir  string
	algs algSet

	mu       sync.Mutex
	payload  map[string]*record // by bag-relative path, "data/..."
	tags     map[string]*record // WriteTag files, by bag-relative path
	dirs     map[string]bool    // bag-relative directories holding written files
	open     int
	finished bool

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
	return &Writer{
		dir:     dir,
		algs:    set,
		payload: make(map[string]*record),
		tags:    make(map[string]*record),
		dirs:    map[string]bool{".": true, payloadDir: true},
	}, nil
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
	if err := mkdir(filepath.Join(w.dir, filepath.FromSlash(dir))); err != nil {
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

// createFile creates a new file of mode 0644 below the bag root.
func (w *Writer) createFile(rel string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(w.dir, filepath.FromSlash(rel)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(fileMode); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// CreatePayload creates the payload file data/<rel>; rel is a clean relative
// slash-separated path such as "rootfs/changes.tar". Every byte written is
// hashed with every algorithm of the bag; Close syncs the file to disk and
// records its digests. The caller must Close it before Finish.
func (w *Writer) CreatePayload(rel string) (io.WriteCloser, error) {
	if why := checkName(rel); why != "" {
		return nil, fmt.Errorf("create payload %q: %s", rel, why)
	}
	bagRel := payloadRoot + rel
	if err := w.reserve(bagRel, w.payload); err != nil {
		return nil, fmt.Errorf("create payload %q: %w", rel, err)
	}
	f, err := w.createFile(bagRel)
	if err != nil {
		return nil, fmt.Errorf("create payload: %w", err)
	}
	w.mu.Lock()
	w.open++
	w.mu.Unlock()
	d := newDigester()
	d.reset(w.algs, f)
	return &payloadWriter{w: w, rel: bagRel, f: f, d: d}, nil
}

// payloadWriter writes and hashes one payload file.
type payloadWriter struct {
	w      *Writer
	rel    string
	f      *os.File
	d      *digester
	err    error
	closed bool
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
	if err == nil {
		err = p.f.Sync()
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
	f, err := w.CreatePayload(rel)
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
	sums, err := w.writeTagFile(rel, func(out io.Writer) error {
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

// writeTagFile creates the file rel, writes it with fill, syncs it and returns
// its digests.
func (w *Writer) writeTagFile(rel string, fill func(io.Writer) error) (*[numAlgs][]byte, error) {
	f, err := w.createFile(rel)
	if err != nil {
		return nil, err
	}
	d := newDigester()
	defer d.close()
	d.reset(w.algs, f)
	bw := bufio.NewWriterSize(d, 64<<10)
	err = fill(bw)
	if err == nil {
		err = bw.Flush()
	}
	var sums *[numAlgs][]byte
	if err == nil {
		sums, err = d.finish()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", rel, err)
	}
	return sums, nil
}

// Finish writes bagit.txt, bag-info.txt (info in order, then Payload-Oxum and,
// unless info has one, Bagging-Date), the payload manifests and the tag
// manifests, and syncs the bag to disk. Every payload writer must be closed.
// The writer refuses further writes afterwards, even when Finish fails.
func (w *Writer) Finish(info []Field) error {
	if err := checkInfo(info); err != nil {
		return fmt.Errorf("finish bag: %w", err)
	}
	if err := w.seal(); err != nil {
		return fmt.Errorf("finish bag: %w", err)
	}
	tags := sortedRecords(w.tags)
	for _, s := range w.finishSteps(info) {
		sums, err := w.writeTagFile(s.name, s.fill)
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
		if _, err := w.writeTagFile(manifestName(true, i), func(out io.Writer) error { return w.writeManifest(out, i, tags) }); err != nil {
			return fmt.Errorf("finish bag: %w", err)
		}
	}
	return w.syncDirs()
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

// syncDirs syncs every directory that received files, deepest first.
func (w *Writer) syncDirs() error {
	w.mu.Lock()
	dirs := make([]string, 0, len(w.dirs))
	for d := range w.dirs {
		dirs = append(dirs, d)
	}
	w.mu.Unlock()
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if err := syncDir(filepath.Join(w.dir, filepath.FromSlash(d))); err != nil {
			return fmt.Errorf("finish bag: %w", err)
		}
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
