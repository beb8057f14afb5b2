package bagit

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// maxTrailer is how much data after the end of a compressed tar archive is
// read to check the gzip trailer.
const maxTrailer = 16 << 20

// verifyTar verifies a tar or tar.gz bag; open is called once per pass.
func verifyTar(ctx context.Context, open func() (io.ReadCloser, error), opts Options) (*Result, error) {
	v := newVerifier(opts, true)
	defer v.close()
	t := &tarBag{v: v}
	if err := t.read(ctx, open, t.entry); err != nil {
		return nil, err
	}
	if need := v.pending(); len(need) > 0 {
		second := &tarBag{v: v, need: need, quiet: true}
		if err := second.read(ctx, open, second.rehash); err != nil {
			return nil, err
		}
	}
	return v.conclude(), nil
}

// tarBag is one pass over a tar bag.
type tarBag struct {
	v       *verifier
	prefix  string // the bag's top-level directory with a slash, or ""
	decided bool   // prefix is known
	dirs    map[string]bool
	last    string // name of the last entry read
	need    map[string]algSet
	quiet   bool // a second pass: problems were reported by the first
	// isBroken is set when the archive could not be read to its end.
	isBroken bool
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
		return t.entries(ctx, tar.NewReader(br), fn, false)
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		t.broken("", "gzip header: %v", err)
		return nil
	}
	defer zr.Close()
	if err := t.entries(ctx, tar.NewReader(zr), fn, true); err != nil {
		return err
	}
	if !t.isBroken {
		t.drain(zr)
	}
	return nil
}

// entries reads the archive's entries until its end or the first break.
func (t *tarBag) entries(ctx context.Context, tr *tar.Reader, fn entryFunc, gz bool) error {
	for first := true; ; first = false {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if first && !gz && errors.Is(err, tar.ErrHeader) {
				return fmt.Errorf("verify bag: not a tar archive: %w", err)
			}
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

// drain reads what follows the end of a compressed archive so that the gzip
// trailer is checked.
func (t *tarBag) drain(src io.Reader) {
	n, err := io.Copy(io.Discard, io.LimitReader(src, maxTrailer+1))
	switch {
	case err != nil:
		t.broken("", "after the end of the archive: %v", err)
	case n > maxTrailer:
		t.broken("", "more than %d MiB of data after the end of the archive", maxTrailer>>20)
	}
}

func (t *tarBag) broken(path, format string, args ...any) {
	t.isBroken = true
	if !t.quiet {
		t.v.problem(path, CheckUnreadable, format, args...)
	}
}

// dispatch checks an entry's name and type and hands a regular file to fn.
func (t *tarBag) dispatch(ctx context.Context, hdr *tar.Header, r io.Reader, fn entryFunc) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	name, why := cleanTarName(hdr.Name)
	if why != "" {
		t.unsafe(hdr.Name, "%s", why)
		return nil
	}
	if name == "" {
		return nil // the archive's root directory, "./"
	}
	if hdr.Typeflag == tar.TypeDir {
		if t.dirs[name] {
			t.unsafe(hdr.Name, "directory appears twice in the archive")
		}
		if t.dirs == nil {
			t.dirs = make(map[string]bool)
		}
		t.dirs[name] = true
		return nil
	}
	rel, ok := t.rel(name)
	if !ok {
		if !t.quiet {
			t.v.problem(hdr.Name, CheckUnlisted, "outside the bag's top-level directory %q", strings.TrimSuffix(t.prefix, "/"))
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

func (t *tarBag) unsafe(path, format string, args ...any) {
	if !t.quiet {
		t.v.problem(path, CheckUnsafe, format, args...)
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

// rel returns the bag-relative path of an entry name, deciding the bag's
// top-level directory from the first file: none when it is at the archive's
// root or under data/ (a bag packed from inside), its first component
// otherwise.
func (t *tarBag) rel(name string) (string, bool) {
	if !t.decided {
		t.decided = true
		first, _, nested := strings.Cut(name, "/")
		if nested && (first != payloadDir || name == payloadDir+"/"+bagitTxt) {
			t.prefix = first + "/"
		}
	}
	rel, ok := strings.CutPrefix(name, t.prefix)
	return rel, ok && rel != ""
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

// entry is the first pass's entryFunc.
func (t *tarBag) entry(ctx context.Context, hdr *tar.Header, rel string, r io.Reader) error {
	return t.v.file(ctx, rel, hdr.Size, r)
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
