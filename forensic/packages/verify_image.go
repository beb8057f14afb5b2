package packages

import (
	"archive/tar"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/ctrforensics/ctrforensics/forensic/imagefs"
)

// VerifyImage checks every file the packages of an image own against the
// package records of the same image: the final filesystem is read from the
// layers as imagefs.Export streams it (nothing unpacked, nothing mounted,
// nothing run), so a later layer that replaced a package's file without its
// package manager is reported as Modified, and a file a later layer deleted
// as Missing. Records without mode and owner (dpkg, Python) are checked on
// content only, as dpkg --verify does: an image holds no other reference.
//
// The stream is read once: package records are collected, and every other
// regular file is hashed with the algorithms of the package managers whose
// directories the stream showed before its first file (Export writes every
// non-regular entry first). Should a record name an algorithm not computed
// for a file, the files concerned are hashed in a second pass, so the result
// never depends on that order.
func VerifyImage(ctx context.Context, layers []imagefs.Layer, opts Options, fsOpts imagefs.Options) ([]Result, error) {
	s := NewScanner(opts)
	s.recordsOnly = true
	v := &imageVerifier{s: s, entries: map[string]*imageEntry{}}
	fsOpts = imagefs.Options{MaxLayerBytes: fsOpts.MaxLayerBytes, Warn: fsOpts.Warn}
	if err := v.export(ctx, layers, fsOpts, v.first); err != nil {
		return nil, fmt.Errorf("verify packages: %w", err)
	}
	inv, err := s.Finish(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify packages: %w", err)
	}
	owners := s.Owners(inv)
	targets := allTargets(func(d string) bool {
		e := v.entries["/"+d]
		return e != nil && e.symlink
	}, owners)
	if again := v.unhashed(owners, targets); len(again) > 0 {
		// Warnings were given in the first pass.
		fsOpts.Warn = nil
		if err := v.export(ctx, layers, fsOpts, v.rehash(again)); err != nil {
			return nil, fmt.Errorf("verify packages: %w", err)
		}
	}
	out := make([]Result, 0, len(targets))
	for _, t := range targets {
		recorded, rec, _ := owners.Lookup(t.Path)
		var st *Stat
		actual := ""
		if e := v.entries[t.Path]; e != nil {
			st = &e.st
			actual = e.sum(rec.Algorithm)
		}
		out = append(out, compare(t.Path, recorded, rec, st, actual))
	}
	slices.SortFunc(out, func(a, b Result) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// imageEntry is what the verifier keeps of one entry of the final
// filesystem: its stat, the target of a hard link, and the digests computed
// of a regular file's content.
type imageEntry struct {
	st      Stat
	symlink bool
	linkTo  string
	sums    digests
}

func (e *imageEntry) sum(alg string) string { return e.sums.hex(alg) }

type imageVerifier struct {
	s       *Scanner
	entries map[string]*imageEntry
	// algs are the hash algorithms every regular file gets, fixed at the
	// stream's first regular file.
	algs  algSet
	fixed bool
}

// export streams the image's final filesystem to fn, one tar entry at a time.
func (v *imageVerifier) export(ctx context.Context, layers []imagefs.Layer, fsOpts imagefs.Options,
	fn func(ctx context.Context, h *tar.Header, p string, r io.Reader) error) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := imagefs.Export(ctx, layers, pw, fsOpts)
		pw.CloseWithError(err)
		done <- err
	}()
	err := readTar(ctx, pr, fn)
	pr.CloseWithError(errors.New("verify stopped reading"))
	if eerr := <-done; eerr != nil && err == nil {
		return eerr
	}
	return err
}

// readTar calls fn for every entry of the tar stream r, with its cleaned
// absolute path, then reads the stream to its end.
func readTar(ctx context.Context, r io.Reader, fn func(ctx context.Context, h *tar.Header, p string, r io.Reader) error) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			_, err = io.Copy(io.Discard, r)
			return err
		}
		if err != nil {
			return fmt.Errorf("read the final filesystem: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(ctx, h, path.Clean("/"+h.Name), tr); err != nil {
			return err
		}
	}
}

// first is the handler of the first pass: it keeps every entry's stat, gives
// the package records to the scanner and hashes the regular files.
func (v *imageVerifier) first(ctx context.Context, h *tar.Header, p string, r io.Reader) error {
	e := &imageEntry{st: Stat{Regular: h.Typeflag == tar.TypeReg, Mode: uint32(h.Mode) & 0o7777, UID: uint32(h.Uid),
		GID: uint32(h.Gid)}, symlink: h.Typeflag == tar.TypeSymlink}
	switch h.Typeflag {
	case tar.TypeDir:
		v.noteDir(p)
	case tar.TypeLink:
		// A hard link follows its target in Export's stream.
		e.linkTo = path.Clean("/" + h.Linkname)
		if t := v.entries[e.linkTo]; t != nil {
			e.st.Regular, e.sums = t.st.Regular, t.sums
		}
	case tar.TypeReg:
		v.fixed = true
		hs := newHashes(v.algs)
		tee := io.TeeReader(r, hs)
		f := File{Path: p, Mode: h.FileInfo().Mode(), Size: h.Size}
		if v.s.Wants(f) {
			if err := v.s.Add(ctx, f, tee); err != nil {
				return err
			}
		}
		if _, err := io.Copy(io.Discard, tee); err != nil {
			return fmt.Errorf("read %s: %w", esc(p), err)
		}
		hs.sumInto(&e.sums)
	}
	v.entries[p] = e
	return nil
}

// noteDir adds the algorithms of the package manager whose database
// directory p is, while no regular file has been hashed yet.
func (v *imageVerifier) noteDir(p string) {
	if v.fixed {
		return
	}
	switch {
	case p == "/var/lib/dpkg":
		v.algs |= algMD5
	case p == "/lib/apk/db":
		v.algs |= algSHA1
	case p == "/var/lib/rpm" || p == "/usr/lib/sysimage/rpm":
		v.algs |= algMD5 | algSHA1 | algSHA256
	case strings.HasSuffix(p, ".dist-info"):
		v.algs |= algSHA256
	}
}

// unhashed returns the regular files whose digest an owned file's record
// needs and the first pass did not compute, with the algorithms: the owned
// file's own, or its hard link target's.
func (v *imageVerifier) unhashed(owners Owners, targets []Target) map[string]algSet {
	again := map[string]algSet{}
	for _, t := range targets {
		_, rec, _ := owners.Lookup(t.Path)
		a := algOf(rec.Algorithm)
		e := v.entries[t.Path]
		if e == nil || !e.st.Regular || a == 0 || e.sums.have&a != 0 {
			continue
		}
		again[t.Path] |= a
		if e.linkTo != "" {
			again[e.linkTo] |= a
		}
	}
	return again
}

// rehash is the handler of the second pass: it hashes the files of again
// (a hard link takes its target's digests, which precede it).
func (v *imageVerifier) rehash(again map[string]algSet) func(context.Context, *tar.Header, string, io.Reader) error {
	return func(_ context.Context, h *tar.Header, p string, r io.Reader) error {
		e := v.entries[p]
		if again[p] == 0 || e == nil {
			return nil
		}
		switch h.Typeflag {
		case tar.TypeReg:
			hs := newHashes(again[p])
			if _, err := io.Copy(hs, r); err != nil {
				return fmt.Errorf("read %s: %w", esc(p), err)
			}
			hs.sumInto(&e.sums)
		case tar.TypeLink:
			if t := v.entries[path.Clean("/"+h.Linkname)]; t != nil {
				e.sums = t.sums
			}
		}
		return nil
	}
}

// algSet is a set of hash algorithms.
type algSet uint8

const (
	algMD5 algSet = 1 << iota
	algSHA1
	algSHA256
)

func algOf(name string) algSet {
	switch name {
	case "md5":
		return algMD5
	case "sha1":
		return algSHA1
	case "sha256":
		return algSHA256
	}
	return 0
}

// digests holds the digests of one file, without a map per file: an image
// of 100k files keeps 100k of them.
type digests struct {
	have   algSet
	md5    [md5.Size]byte
	sha1   [sha1.Size]byte
	sha256 [sha256.Size]byte
}

func (d *digests) hex(alg string) string {
	a := algOf(alg)
	if d.have&a == 0 {
		return ""
	}
	switch a {
	case algMD5:
		return hex.EncodeToString(d.md5[:])
	case algSHA1:
		return hex.EncodeToString(d.sha1[:])
	}
	return hex.EncodeToString(d.sha256[:])
}

// hashes writes to one hash per algorithm of a set.
type hashes struct {
	md5, sha1, sha256 hash.Hash
}

func newHashes(a algSet) *hashes {
	hs := &hashes{}
	if a&algMD5 != 0 {
		hs.md5 = md5.New()
	}
	if a&algSHA1 != 0 {
		hs.sha1 = sha1.New()
	}
	if a&algSHA256 != 0 {
		hs.sha256 = sha256.New()
	}
	return hs
}

// Write implements io.Writer.
func (hs *hashes) Write(b []byte) (int, error) {
	for _, h := range []hash.Hash{hs.md5, hs.sha1, hs.sha256} {
		if h != nil {
			h.Write(b)
		}
	}
	return len(b), nil
}

// sumInto adds the digests computed to d.
func (hs *hashes) sumInto(d *digests) {
	if hs.md5 != nil {
		hs.md5.Sum(d.md5[:0])
		d.have |= algMD5
	}
	if hs.sha1 != nil {
		hs.sha1.Sum(d.sha1[:0])
		d.have |= algSHA1
	}
	if hs.sha256 != nil {
		hs.sha256.Sum(d.sha256[:0])
		d.have |= algSHA256
	}
}
