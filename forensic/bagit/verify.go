package bagit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Problem is one thing wrong with a bag.
type Problem struct {
	// Path is bag-relative, e.g. "data/rootfs/changes.tar" or "bag-info.txt";
	// "" for the bag as a whole.
	Path string
	// Check is one of "bagit", "missing", "unlisted", "digest", "oxum",
	// "manifest", "unsafe", "unreadable".
	Check string
	// Detail is one line, e.g. "sha256 is 3f..., manifest-sha256.txt says 9a...".
	Detail string
}

// The checks a Problem names.
const (
	checkBagit      = "bagit"
	checkMissing    = "missing"
	checkUnlisted   = "unlisted"
	checkDigest     = "digest"
	checkOxum       = "oxum"
	checkManifest   = "manifest"
	checkUnsafe     = "unsafe"
	checkUnreadable = "unreadable"
)

// Options tune Verify.
type Options struct {
	// Extra says which files outside data/ may exist without being listed in
	// any tag manifest, such as files that change after the bag is sealed.
	Extra func(path string) bool
	// Keep says which files' content to return in Result.Files. A selected
	// file larger than 16 MiB, or beyond 64 MiB of kept files in all, is
	// verified like any other but not returned; it is named in Result.Oversized.
	Keep func(path string) bool
}

// maxKeep is the largest file Verify returns in Result.Files, and the
// largest bagit.txt or bag-info.txt it parses; maxKeepTotal bounds all the
// files it returns together, so that a hostile bag cannot fill memory.
const (
	maxKeep      = 16 << 20
	maxKeepTotal = 64 << 20
)

// Result is what Verify found.
type Result struct {
	// Problems are sorted by Path then Check; none means the bag is complete
	// and valid.
	Problems []Problem
	// Algorithms are those of the payload manifests found.
	Algorithms []Algorithm
	// PayloadFiles and PayloadBytes count the regular files under data/.
	PayloadFiles int64
	PayloadBytes int64
	// Info holds the fields of bag-info.txt in order.
	Info []Field
	// Files holds the content of the files Options.Keep selected.
	Files map[string][]byte
	// SHA256 holds the hex sha256 of every payload file under
	// data/image/blobs/, by bag-relative path.
	SHA256 map[string]string
	// Oversized names the files Keep selected that were too large to return.
	Oversized []string
}

// Valid reports whether the bag is complete and valid.
func (r *Result) Valid() bool { return len(r.Problems) == 0 }

const (
	// blobDir holds the payload files whose sha256 Result.SHA256 reports.
	blobDir = "data/image/blobs/"
	// smallFile is the size up to which a file hashed before its manifest is
	// known is hashed with every algorithm, to spare a second pass.
	smallFile = 1 << 20
	// maxLine is the longest manifest or bag-info.txt line accepted.
	maxLine = 64 << 10
)

// verifier holds the state of one verification.
type verifier struct {
	opts     Options
	tab      table
	dig      *digester
	res      *Result
	stream   bool      // files arrive in archive order, not tag files first
	parsed   [2]algSet // manifests parsed, by region (payload, tag)
	named    algSet    // algorithms of the manifests and tag manifests named so far
	bagit    bool      // bagit.txt was seen
	oxum     []string  // Payload-Oxum values of bag-info.txt
	problems []Problem
	lines    *bufio.Reader // reused to read manifests
	kept     int64         // bytes returned in Result.Files so far
}

const (
	regionPayload = 0
	regionTag     = 1
)

func newVerifier(opts Options, stream bool) *verifier {
	return &verifier{
		opts:   opts,
		tab:    newTable(),
		dig:    newDigester(),
		stream: stream,
		res:    &Result{Files: make(map[string][]byte), SHA256: make(map[string]string)},
	}
}

func (v *verifier) close() { v.dig.close() }

func (v *verifier) problem(path, check, format string, args ...any) {
	v.problems = append(v.problems, Problem{Path: path, Check: check, Detail: oneLine(fmt.Sprintf(format, args...))})
}

func regionOf(p string) int {
	if strings.HasPrefix(p, payloadRoot) {
		return regionPayload
	}
	return regionTag
}

// noteName records the algorithm of a manifest file name.
func (v *verifier) noteName(p string) {
	if alg, _, ok := parseManifestName(p); ok {
		if i, known := lookupAlg(alg); known {
			v.named = v.named.with(i)
		}
	}
}

// algsFor returns the algorithms to hash the file at p with: those its
// manifests ask for, sha256 for an image blob, and, while the manifests of
// its region are unknown, a guess that spares a second pass.
func (v *verifier) algsFor(idx uint32, p string, size int64) algSet {
	e := v.tab.at(idx)
	var algs algSet
	for i := algIndex(0); i < numAlgs; i++ {
		if e.state[i] == stWant {
			algs = algs.with(i)
		}
	}
	if strings.HasPrefix(p, blobDir) {
		algs = algs.with(idxSHA256)
	}
	_, _, isManifest := parseManifestName(p)
	if v.parsed[regionOf(p)] != 0 || (!v.stream && !isManifest) {
		return algs
	}
	if size <= smallFile {
		return allAlgs
	}
	return algs | defaultAlgs | v.named
}

// file checks one regular file of the bag, read from r, and returns an error
// when r fails. size is what the directory or archive says.
func (v *verifier) file(ctx context.Context, p string, size int64, r io.Reader) error {
	idx := v.tab.lookup(p)
	e := v.tab.at(idx)
	if e.flags&(fSeen|fOther) != 0 {
		v.problem(p, checkUnsafe, "appears twice in the archive; the second copy was not read")
		return nil
	}
	e.flags |= fSeen
	v.noteName(p)
	algs := v.algsFor(idx, p, size)
	n, sums, err := v.consume(ctx, p, algs, size, r)
	if regionOf(p) == regionPayload {
		v.res.PayloadFiles++
		v.res.PayloadBytes += n
	}
	if err != nil {
		v.tab.at(idx).flags |= fUnreadable
		if ctx.Err() == nil {
			v.problem(p, checkUnreadable, "read failed after %d bytes: %v", n, err)
		}
		return err
	}
	v.record(idx, p, algs, sums)
	return nil
}

// unlisted reports whether a file is unlisted as far as the manifests read
// so far tell: a manifest of its region was read and none lists it, and it is
// neither a tag file the bag reserves nor one Options.Extra accepts. (A
// manifest read later that lists it makes the second pass hash it.)
func (v *verifier) unlisted(p string) bool {
	region := regionOf(p)
	if v.parsed[region] == 0 || p == bagitTxt || p == bagInfoTxt {
		return false
	}
	if _, _, ok := parseManifestName(p); ok {
		return false
	}
	if region == regionTag && v.opts.Extra != nil && v.opts.Extra(p) {
		return false
	}
	idx, ok := v.tab.find(p)
	return !ok || v.tab.at(idx).listed == 0
}

// skip records a file seen without reading it.
func (v *verifier) skip(p string, size int64) {
	e := v.tab.at(v.tab.lookup(p))
	if e.flags&(fSeen|fOther) != 0 {
		v.problem(p, checkUnsafe, "appears twice in the archive; the second copy was not read")
		return
	}
	e.flags |= fSeen
	if regionOf(p) == regionPayload {
		v.res.PayloadFiles++
		v.res.PayloadBytes += size
	}
}

// consume reads a file, hashing it and parsing or keeping it as needed.
func (v *verifier) consume(ctx context.Context, p string, algs algSet, size int64, r io.Reader) (int64, *[numAlgs][]byte, error) {
	v.dig.reset(algs, nil)
	keep := v.opts.Keep != nil && v.opts.Keep(p)
	special := p == bagitTxt || p == bagInfoTxt
	var cb *capBuffer
	if keep || special {
		cb = &capBuffer{limit: maxKeep, over: size > maxKeep}
		r = io.TeeReader(r, cb)
	}
	_, _, isManifest := parseManifestName(p)
	if algs == 0 && cb == nil && !isManifest {
		return size, &v.dig.sums, nil // nothing to learn from the content
	}
	cr := &countReader{r: r}
	var err error
	if isManifest {
		err = v.parseManifest(ctx, p, io.TeeReader(cr, v.dig))
	} else {
		_, err = v.dig.readFrom(ctx, cr)
	}
	if err != nil {
		return cr.n, nil, err
	}
	sums, err := v.dig.finish()
	if err != nil {
		return cr.n, nil, err
	}
	v.afterRead(p, keep, cb)
	return cr.n, sums, nil
}

// afterRead parses bagit.txt and bag-info.txt and keeps what Keep selected.
func (v *verifier) afterRead(p string, keep bool, cb *capBuffer) {
	if cb == nil {
		return
	}
	switch {
	case keep && (cb.over || v.kept+int64(len(cb.buf)) > maxKeepTotal):
		v.res.Oversized = append(v.res.Oversized, p)
	case keep:
		v.kept += int64(len(cb.buf))
		v.res.Files[p] = cb.buf
	}
	switch p {
	case bagitTxt:
		v.bagit = true
		v.checkBagitTxt(cb)
	case bagInfoTxt:
		v.parseBagInfo(cb)
	}
}

// record compares or stores the digests computed for a file.
func (v *verifier) record(idx uint32, p string, algs algSet, sums *[numAlgs][]byte) {
	region := regionOf(p)
	e := v.tab.at(idx)
	for i := algIndex(0); i < numAlgs; i++ {
		if !algs.has(i) {
			continue
		}
		switch e.state[i] {
		case stWant:
			v.compare(p, i, sums[i], v.tab.digest(i, e.slot[i]))
			e.state[i] = stDone
		case stNone:
			if !v.parsed[region].has(i) {
				e.slot[i], e.state[i] = v.tab.store(i, sums[i]), stGot
			}
		}
	}
	if algs.has(idxSHA256) && strings.HasPrefix(p, blobDir) {
		v.res.SHA256[p] = hex.EncodeToString(sums[idxSHA256])
	}
}

// compare reports a digest that differs from its manifest's.
func (v *verifier) compare(p string, i algIndex, got, want []byte) {
	if !bytes.Equal(got, want) {
		v.problem(p, checkDigest, "%s is %x, %s says %x", algSpecs[i].name, got, manifestName(regionOf(p) == regionTag, i), want)
	}
}

// rehash hashes a file again with algorithms a manifest named after the file
// was read.
func (v *verifier) rehash(ctx context.Context, p string, algs algSet, r io.Reader) error {
	idx, ok := v.tab.find(p)
	if !ok {
		return nil
	}
	v.dig.reset(algs, nil)
	if _, err := v.dig.readFrom(ctx, r); err != nil {
		return err
	}
	sums, err := v.dig.finish()
	if err != nil {
		return err
	}
	v.record(idx, p, algs, sums)
	return nil
}

// pending returns the files that were read before a manifest asked for an
// algorithm they were not hashed with.
func (v *verifier) pending() map[string]algSet {
	need := make(map[string]algSet)
	for p, idx := range v.tab.index {
		e := v.tab.at(idx)
		if e.flags&fSeen == 0 || e.flags&fUnreadable != 0 {
			continue
		}
		var algs algSet
		for i := algIndex(0); i < numAlgs; i++ {
			if e.state[i] == stWant {
				algs = algs.with(i)
			}
		}
		if algs != 0 {
			need[p] = algs
		}
	}
	return need
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// capBuffer keeps what is written to it up to a limit and then nothing,
// never failing.
type capBuffer struct {
	buf   []byte
	limit int
	over  bool
}

func (c *capBuffer) Write(b []byte) (int, error) {
	if c.over {
		return len(b), nil
	}
	if len(c.buf)+len(b) > c.limit {
		c.over, c.buf = true, nil
		return len(b), nil
	}
	c.buf = append(c.buf, b...)
	return len(b), nil
}

// conclude runs the checks that need the whole bag and returns the result.
func (v *verifier) conclude() *Result {
	for p, idx := range v.tab.index {
		v.checkEntry(p, v.tab.at(idx))
	}
	if !v.bagit {
		v.problem(bagitTxt, checkBagit, "bagit.txt is missing")
	}
	if v.parsed[regionPayload] == 0 {
		v.problem("", checkManifest, "no payload manifest (manifest-<algorithm>.txt) with a supported algorithm")
	}
	v.verifyOxum()
	res := v.res
	res.Algorithms = v.parsed[regionPayload].list()
	res.Problems = v.problems
	sort.SliceStable(res.Problems, func(a, b int) bool {
		pa, pb := res.Problems[a], res.Problems[b]
		if pa.Path != pb.Path {
			return pa.Path < pb.Path
		}
		if pa.Check != pb.Check {
			return pa.Check < pb.Check
		}
		return pa.Detail < pb.Detail
	})
	return res
}

// checkEntry reports a listed file that is missing, a file that is not
// listed where it should be, and a digest that could not be computed.
func (v *verifier) checkEntry(p string, e *entry) {
	region := regionOf(p)
	if e.flags&fSeen == 0 {
		if e.listed != 0 {
			v.problem(p, checkMissing, "listed in %s but not in the bag", v.manifestList(region, e.listed))
		}
		return
	}
	if e.flags&fUnreadable != 0 {
		return
	}
	for i := algIndex(0); i < numAlgs; i++ {
		if e.state[i] == stWant {
			v.problem(p, checkUnreadable, "%s could not be computed", algSpecs[i].name)
		}
	}
	if _, _, ok := parseManifestName(p); ok && region == regionTag {
		return
	}
	if region == regionTag && v.opts.Extra != nil && v.opts.Extra(p) {
		return
	}
	switch missing := v.parsed[region] &^ e.listed; {
	case v.parsed[region] == 0 && region == regionTag:
		v.problem(p, checkUnlisted, "tag file, but the bag has no tag manifest")
	case v.parsed[region] == 0:
		v.problem(p, checkUnlisted, "payload file, but the bag has no payload manifest")
	case missing != 0:
		v.problem(p, checkUnlisted, "not listed in %s", v.manifestList(region, missing))
	}
}

// manifestList names the manifests of a region for a set of algorithms.
func (v *verifier) manifestList(region int, algs algSet) string {
	var names []string
	for i := algIndex(0); i < numAlgs; i++ {
		if algs.has(i) {
			names = append(names, manifestName(region == regionTag, i))
		}
	}
	return strings.Join(names, ", ")
}
