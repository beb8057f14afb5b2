package bagit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
)

// rootBag is the verification of a bag directory through os.Root, for the
// systems without Linux's descriptor-relative file access (internal/fdio):
// every name is resolved below the bag's root, a symlink is never followed
// (each entry is checked with Lstat, and a file opened is checked to be the
// one that was checked), and nothing is written. On Linux, verifyDir is used;
// the tests run both on the same bags.
type rootBag struct {
	v    *verifier
	root *os.Root
	tags []tagEntry
	data bool
}

// verifyRoot verifies a bag directory like verifyDir.
func verifyRoot(ctx context.Context, dir string, opts Options) (*Result, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("verify bag: %w", err)
	}
	defer root.Close()
	b := &rootBag{v: newVerifier(opts, false), root: root}
	defer b.v.close()
	if err := b.walk(ctx, "", b.scanTag); err != nil {
		return nil, err
	}
	for _, t := range b.tags {
		b.v.noteName(t.rel)
	}
	for _, t := range orderTags(b.tags) {
		if err := b.readFile(ctx, t.rel); err != nil {
			return nil, err
		}
	}
	if !b.data {
		b.v.problem(payloadDir, checkBagit, "no data directory")
	} else if err := b.walk(ctx, payloadDir, b.visitPayload); err != nil {
		return nil, err
	}
	for rel, algs := range b.v.pending() {
		f, _, err := b.open(rel)
		if err != nil {
			continue
		}
		err = b.v.rehash(ctx, rel, algs, f)
		f.Close()
		if err := stopErr(err); err != nil {
			return nil, err
		}
	}
	return b.v.conclude(), nil
}

// walk calls fn for every entry below the bag-relative directory dir ("" for
// the root), sorted, descending into the directories fn asks for.
func (b *rootBag) walk(ctx context.Context, dir string, fn func(ctx context.Context, rel string, fi fs.FileInfo) (bool, error)) error {
	f, err := b.root.Open(displayRel(dir))
	if err != nil {
		b.v.problem(displayRel(dir), checkUnreadable, "%v", err)
		return nil
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		b.v.problem(displayRel(dir), checkUnreadable, "%v", err)
		return nil
	}
	sort.Strings(names)
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		rel := joinRel(dir, name)
		fi, err := b.root.Lstat(rel)
		if err != nil {
			b.v.problem(rel, checkUnreadable, "stat: %v", err)
			continue
		}
		descend, err := fn(ctx, rel, fi)
		if err != nil {
			return err
		}
		if descend && fi.IsDir() {
			if err := b.walk(ctx, rel, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// scanTag collects the tag files.
func (b *rootBag) scanTag(_ context.Context, rel string, fi fs.FileInfo) (bool, error) {
	switch {
	case rel == payloadDir && fi.IsDir():
		b.data = true
		return false, nil
	case fi.IsDir():
		return true, nil
	case fi.Mode().IsRegular():
		b.tags = append(b.tags, tagEntry{rel, fi.Size()})
	default:
		b.otherFile(rel, fi.Mode())
	}
	return false, nil
}

// visitPayload checks each payload file.
func (b *rootBag) visitPayload(ctx context.Context, rel string, fi fs.FileInfo) (bool, error) {
	switch {
	case fi.IsDir():
		return true, nil
	case !fi.Mode().IsRegular():
		b.otherFile(rel, fi.Mode())
		return false, nil
	}
	return false, b.readFile(ctx, rel)
}

// readFile checks a regular file.
func (b *rootBag) readFile(ctx context.Context, rel string) error {
	f, size, err := b.open(rel)
	if err != nil {
		var nr notRegular
		if errors.As(err, &nr) {
			b.otherFile(rel, nr.mode)
			return nil
		}
		b.v.tab.at(b.v.tab.lookup(rel)).flags |= fSeen | fUnreadable
		b.v.problem(rel, checkUnreadable, "%v", err)
		return nil
	}
	defer f.Close()
	return stopErr(b.v.file(ctx, rel, size, f))
}

// notRegular is a file found not to be a regular file when it was opened.
type notRegular struct{ mode fs.FileMode }

func (e notRegular) Error() string { return e.mode.Type().String() + ", not a regular file" }

// open opens the regular file rel and checks it is the file Lstat sees
// there: a symlink or a file swapped meanwhile is refused.
func (b *rootBag) open(rel string) (*os.File, int64, error) {
	before, err := b.root.Lstat(rel)
	if err != nil {
		return nil, 0, err
	}
	if !before.Mode().IsRegular() {
		return nil, 0, notRegular{before.Mode()}
	}
	f, err := b.root.Open(rel)
	if err != nil {
		return nil, 0, err
	}
	after, err := f.Stat()
	if err == nil && !os.SameFile(before, after) {
		err = fmt.Errorf("%s changed while it was opened", path.Clean(rel))
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, after.Size(), nil
}

func (b *rootBag) otherFile(rel string, mode fs.FileMode) {
	kind := mode.Type().String()
	switch {
	case mode&fs.ModeSymlink != 0:
		kind = "symlink"
	case mode&fs.ModeNamedPipe != 0:
		kind = "fifo"
	case mode&fs.ModeSocket != 0:
		kind = "socket"
	case mode&fs.ModeCharDevice != 0:
		kind = "character device"
	case mode&fs.ModeDevice != 0:
		kind = "block device"
	}
	b.v.problem(rel, checkUnsafe, "%s; not followed or read", kind)
	b.v.tab.at(b.v.tab.lookup(rel)).flags |= fOther
}

// stopErr keeps only the errors that stop a verification: a file that
// cannot be read is a Problem already.
func stopErr(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
