package bagit

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// maxTrailer is how much data after the end of a tar archive is read to
// check that it is only padding (and, compressed, to check the gzip trailer).
const maxTrailer = 16 << 20

// maxUnlisted bounds the content of entries no manifest lists that a tar
// verification skips (reading, and for a compressed tar decompressing, to
// reach the next entry) without hashing it; past it, the verification stops.
const maxUnlisted = 64 << 20

// ErrNotTar says a bag file is not a tar or gzip-compressed tar archive, or
// an empty one.
var ErrNotTar = errors.New("not a tar archive")

// errStopped ends the reading of an archive that is not worth reading on.
var errStopped = errors.New("verification stopped")

// verifyTar verifies a tar or tar.gz bag; open is called once per pass.
func verifyTar(ctx context.Context, open func() (io.ReadCloser, error), opts Options) (*Result, error) {
	res, t, err := verifyTarAs(ctx, open, opts, nil)
	if err != nil || t.outside == 0 || t.prefix == "" {
		return res, err
	}
	// Files outside the guessed top-level directory: the archive may hold a
	// bag at its root whose first entry is in a tag directory. Keep the
	// reading that finds fewer problems.
	root := ""
	res2, _, err := verifyTarAs(ctx, open, opts, &root)
	if err != nil || len(res2.Problems) >= len(res.Problems) {
		return res, err
	}
	return res2, nil
}

// verifyTarAs verifies a tar bag whose top-level directory is prefix, or is
// guessed from the first entry when prefix is nil.
func verifyTarAs(ctx context.Context, open func() (io.ReadCloser, error), opts Options, prefix *string) (*Result, *tarBag, error) {
	v := newVerifier(opts, true)
	defer v.close()
	t := &tarBag{v: v}
	if prefix != nil {
		t.prefix, t.decided = *prefix, true
	}
	if err := t.read(ctx, open, t.entry); err != nil {
		return nil, nil, err
	}
	if need := v.pending(); len(need) > 0 {
		second := &tarBag{v: v, need: need, quiet: true, prefix: t.prefix, decided: true}
		if err := second.read(ctx, open, second.rehash); err != nil {
			return nil, nil, err
		}
	}
	return v.conclude(), t, nil
}

// tarBag is one pass over a tar bag.
type tarBag struct {
	v       *verifier
	prefix  string // the bag's top-level directory with a slash, or ""
	decided bool   // prefix is known
	dirs    map[string]bool
	last    string // name of the last entry read
	outside int    // files outside the top-level directory
	need    map[string]algSet
	quiet   bool // a second pass: problems were reported by the first
	// isBroken is set when the archive could not be read to its end.
	isBroken bool
	// skipped counts the bytes of unlisted entries skipped.
	skipped int64
}

// entryFunc handles one tar entry whose name is safe; rel is bag-relative.
type entryFunc func(ctx context.Context, hdr *tar.Header, rel string, r io.Reader) error

// read streams the archive through fn. A broken archive is a Problem; the
// error is for an archive that cannot be read at all, or for ctx.
func (t *tarBag) read(ctx context.Context, open func() (io.ReadCloser, error), fn entryFunc) error {
	rc, err := open()
	if err != nil {
		return fmt.Errorf("verify bag: %w", err)
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 64<<10)
	magic, _ := br.Peek(2)
	if len(magic) < 2 || magic[0] != 0x1f || magic[1] != 0x8b {
		if err := t.entries(ctx, tar.NewReader(br), fn); err != nil {
			return err
		}
		if !t.isBroken {
			t.trailing(br)
		}
		return nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return fmt.Errorf("verify bag: %w: gzip header: %w", ErrNotTar, err)
	}
	defer zr.Close()
	if err := t.entries(ctx, tar.NewReader(zr), fn); err != nil {
		return err
	}
	if !t.isBroken {
		t.trailing(zr)
	}
	return nil
}

// entries reads the archive's entries until its end or the first break.
func (t *tarBag) entries(ctx context.Context, tr *tar.Reader, fn entryFunc) error {
	for first := true; ; first = false {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		switch {
		case first && errors.Is(err, io.EOF):
			return fmt.Errorf("verify bag: %w: the archive is empty", ErrNotTar)
		case first && errors.Is(err, io.ErrUnexpectedEOF):
			return fmt.Errorf("verify bag: %w: too short for a tar header", ErrNotTar)
		case first && err != nil:
			return fmt.Errorf("verify bag: %w: %w", ErrNotTar, err)
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			t.broken("", "archive breaks after %q: %v", t.last, err)
			return nil
		}
		t.last = hdr.Name
		if err := t.dispatch(ctx, hdr, tr, fn); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			t.isBroken = true // the entry could not be read: the stream is broken
			return nil
		}
	}
}

// trailing reads what follows the end-of-archive marker, which checks the
// gzip trailer of a compressed archive. Tar writers pad the archive with
// zero blocks; anything else (an entry appended after the end, a second gzip
// member) is hidden from a reader that stops at the marker, but `tar -i`
// extracts it.
func (t *tarBag) trailing(src io.Reader) {
	n, at, err := firstNonZero(io.LimitReader(src, maxTrailer+1))
	switch {
	case err != nil:
		t.broken("", "after the end of the archive: %v", err)
	case at >= 0:
		t.unsafe("", "data after the end of the archive (%d bytes past it): an entry or gzip member hidden from "+
			"readers that stop at the end-of-archive marker, which `tar -i` extracts", at)
	case n > maxTrailer:
		t.broken("", "more than %d MiB of data after the end of the archive", maxTrailer>>20)
	}
}

// firstNonZero reads r to its end and returns how many bytes it read and the
// offset of the first byte that is not zero, or -1.
func firstNonZero(r io.Reader) (int64, int64, error) {
	buf := make([]byte, 32<<10)
	var n int64
	at := int64(-1)
	for {
		m, err := r.Read(buf)
		if at < 0 {
			for i, b := range buf[:m] {
				if b != 0 {
					at = n + int64(i)
					break
				}
			}
		}
		n += int64(m)
		if errors.Is(err, io.EOF) {
			return n, at, nil
		}
		if err != nil {
			return n, at, err
		}
	}
}

func (t *tarBag) broken(path, format string, args ...any) {
	t.isBroken = true
	if !t.quiet {
		t.v.problem(path, checkUnreadable, format, args...)
	}
}

// dispatch checks an entry's name and type and hands a regular file to fn.
func (t *tarBag) dispatch(ctx context.Context, hdr *tar.Header, r io.Reader, fn entryFunc) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		if why := globalHeaderProblem(hdr); why != "" {
			t.unsafe(hdr.Name, "%s", why)
		}
		return nil
	}
	if p, ok := hdr.PAXRecords[paxPath]; ok && p != hdr.Name {
		t.unsafe(hdr.Name, "the entry has two names: a GNU long name (read here) and the PAX path %q, "+
			"which GNU tar extracts instead", p)
		return nil
	}
	name, why := cleanTarName(hdr.Name)
	if why != "" {
		t.unsafe(hdr.Name, "%s", why)
		return nil
	}
	t.decide(hdr.Name, name, hdr.Typeflag == tar.TypeDir)
	if name == "" {
		return nil // the archive's root directory, "./"
	}
	if hdr.Typeflag == tar.TypeDir {
		t.dir(hdr.Name, name)
		return nil
	}
	rel, ok := strings.CutPrefix(name, t.prefix)
	if !ok || rel == "" {
		t.outside++
		if !t.quiet {
			t.v.problem(hdr.Name, checkUnlisted, "outside the bag's top-level directory %q", strings.TrimSuffix(t.prefix, "/"))
		}
		return nil
	}
	if why := entryTypeProblem(hdr); why != "" {
		t.unsafe(rel, "%s", why)
		if !t.quiet {
			idx := t.v.tab.lookup(rel)
			t.v.tab.at(idx).flags |= fOther
		}
		return nil
	}
	return fn(ctx, hdr, rel, r)
}

// paxPath is the PAX record of an entry's name.
const paxPath = "path"

// globalHeaderProblem says why a PAX global header is unsafe: archive/tar
// reports it as an entry of its own, but GNU tar applies its records (a path
// included) to every later entry, so the two would extract different files.
// A comment alone (git archive writes one) changes nothing.
func globalHeaderProblem(hdr *tar.Header) string {
	var keys []string
	for key := range hdr.PAXRecords {
		if key != "comment" {
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return ""
	}
	sort.Strings(keys)
	return fmt.Sprintf("PAX global header with records %q, which GNU tar applies to every later entry and this reader does not", keys)
}

// dir records a directory entry; a directory may appear once.
func (t *tarBag) dir(raw, name string) {
	if t.dirs[name] {
		t.unsafe(raw, "directory appears twice in the archive")
	}
	if t.dirs == nil {
		t.dirs = make(map[string]bool)
	}
	t.dirs[name] = true
}

func (t *tarBag) unsafe(path, format string, args ...any) {
	if !t.quiet {
		t.v.problem(path, checkUnsafe, format, args...)
	}
}

// cleanTarName strips "./" and a directory's trailing slash from an entry
// name and reports why it is unsafe.
func cleanTarName(name string) (string, string) {
	n := strings.TrimPrefix(name, "./")
	n = strings.TrimSuffix(n, "/")
	if n == "" || n == "." {
		return "", ""
	}
	if why := checkRel(n); why != "" {
		return "", why + "; not extracted"
	}
	return n, ""
}

// decide guesses the bag's top-level directory from the first entry: none
// for "./" entries (tar -C bag -c .), for a file at the archive's root or for
// data/; else the first component of the name (tar -C parent -c bag).
func (t *tarBag) decide(raw, name string, dir bool) {
	if t.decided {
		return
	}
	t.decided = true
	if raw == "." || strings.HasPrefix(raw, "./") {
		return
	}
	first, _, nested := strings.Cut(name, "/")
	if (nested || dir) && first != payloadDir {
		t.prefix = first + "/"
	}
}

// entryTypeProblem says why an entry that is not a directory may not be in a
// bag, or "" for a regular file.
func entryTypeProblem(hdr *tar.Header) string {
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeCont, tar.TypeGNUSparse: // the reader turns old '\x00' entries into TypeReg
		return ""
	case tar.TypeSymlink:
		return fmt.Sprintf("symlink to %q; not followed", hdr.Linkname)
	case tar.TypeLink:
		return fmt.Sprintf("hard link to %q; not followed", hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock:
		return "device node; not created"
	case tar.TypeFifo:
		return "fifo; not created"
	}
	return fmt.Sprintf("entry of type %q; not extracted", hdr.Typeflag)
}

// entry is the first pass's entryFunc. An entry that no manifest read so
// far lists is reported from its header, its content never hashed; the
// content the archive makes the verification skip that way is bounded.
func (t *tarBag) entry(ctx context.Context, hdr *tar.Header, rel string, r io.Reader) error {
	if !t.v.unlisted(rel) {
		return t.v.file(ctx, rel, hdr.Size, r)
	}
	t.v.skip(rel, hdr.Size)
	if t.skipped += hdr.Size; t.skipped > maxUnlisted {
		t.broken("", "stopped at %s, unlisted and %d bytes long: past %d MiB of unlisted content the rest of the archive is not read",
			rel, hdr.Size, maxUnlisted>>20)
		return errStopped
	}
	return nil
}

// rehash is the second pass's entryFunc: it hashes the files that still
// need an algorithm.
func (t *tarBag) rehash(ctx context.Context, _ *tar.Header, rel string, r io.Reader) error {
	algs, ok := t.need[rel]
	if !ok {
		return nil
	}
	delete(t.need, rel)
	return t.v.rehash(ctx, rel, algs, r)
}

// VerifyStream checks a bag packed as a tar or gzip-compressed tar stream
// that is not a local file (an object in a store, say): open returns the
// stream from its start, and is called once per pass (a second pass only
// when the first could not check everything). Like Verify, it never writes;
// the error is for a stream that cannot be read at all.
func VerifyStream(ctx context.Context, open func() (io.ReadCloser, error), opts Options) (*Result, error) {
	return verifyTar(ctx, open, opts)
}
