package bagit

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/internal/fdio"
)

// dirBag is the verification of a bag directory.
type dirBag struct {
	v      *verifier
	rootfd int
	tags   []tagEntry
	data   bool // data/ is a directory
}

// verifyDir verifies a bag directory: it finds the tag files, reads the tag
// manifests, the manifests and the other tag files, then walks data/.
func verifyDir(ctx context.Context, dir string, opts Options) (*Result, error) {
	rootfd, err := openRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("verify bag: %w", err)
	}
	defer unix.Close(rootfd)
	if _, err := fdio.ReadNames(rootfd); err != nil {
		return nil, fmt.Errorf("verify bag %s: %w", dir, err)
	}
	b := &dirBag{v: newVerifier(opts, false), rootfd: rootfd}
	defer b.v.close()
	if err := walk(ctx, rootfd, "", b.scanTag, b.walkFailed); err != nil {
		return nil, err
	}
	for _, t := range b.tags {
		b.v.noteName(t.rel)
	}
	for _, t := range orderTags(b.tags) {
		if err := b.readFile(ctx, t.rel, t.size); err != nil {
			return nil, err
		}
	}
	if !b.data {
		b.v.problem(payloadDir, checkBagit, "no data directory")
	} else if err := walkInto(ctx, rootfd, payloadDir, payloadDir, b.visitPayload, b.walkFailed); err != nil {
		return nil, err
	}
	if err := b.secondPass(ctx); err != nil {
		return nil, err
	}
	return b.v.conclude(), nil
}

// scanTag is the walkFunc that collects the tag files.
func (b *dirBag) scanTag(_ context.Context, _ int, _, rel string, st *unix.Stat_t) (bool, error) {
	switch {
	case rel == payloadDir && isDir(st):
		b.data = true
		return false, nil
	case isDir(st):
		return true, nil
	case isReg(st):
		b.tags = append(b.tags, tagEntry{rel, st.Size})
	default:
		b.otherFile(rel, st.Mode)
	}
	return false, nil
}

// visitPayload is the walkFunc that checks each payload file.
func (b *dirBag) visitPayload(ctx context.Context, dirfd int, name, rel string, st *unix.Stat_t) (bool, error) {
	switch {
	case isDir(st):
		return true, nil
	case !isReg(st):
		b.otherFile(rel, st.Mode)
		return false, nil
	}
	f, err := openRegular(dirfd, name)
	if err != nil {
		b.openFailed(rel, err)
		return false, nil
	}
	defer f.Close()
	return false, b.fileErr(b.v.file(ctx, rel, f.st.Size, f))
}

// readFile checks a tag file.
func (b *dirBag) readFile(ctx context.Context, rel string, size int64) error {
	f, err := openFile(b.rootfd, rel)
	if err != nil {
		b.openFailed(rel, err)
		return nil
	}
	defer f.Close()
	return b.fileErr(b.v.file(ctx, rel, size, f))
}

func (b *dirBag) otherFile(rel string, mode uint32) {
	b.v.problem(rel, checkUnsafe, "%s; not followed or read", kindOf(mode))
	idx := b.v.tab.lookup(rel)
	b.v.tab.at(idx).flags |= fOther
}

func (b *dirBag) openFailed(rel string, err error) {
	var nr notRegularError
	if errors.As(err, &nr) {
		b.otherFile(rel, nr.mode)
		return
	}
	idx := b.v.tab.lookup(rel)
	b.v.tab.at(idx).flags |= fSeen | fUnreadable
	b.v.problem(rel, checkUnreadable, "%v", err)
}

// walkFailed records a directory that could not be read.
func (b *dirBag) walkFailed(rel string, err error) error {
	b.v.problem(rel, checkUnreadable, "%v", err)
	return nil
}

// fileErr keeps only the errors that stop the verification: a file that
// cannot be read is a Problem already.
func (b *dirBag) fileErr(err error) error {
	if err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return err
	}
	return nil
}

// secondPass hashes again the files a manifest needed an algorithm for that
// was not computed; with all manifests read first this does not happen.
func (b *dirBag) secondPass(ctx context.Context) error {
	for rel, algs := range b.v.pending() {
		f, err := openFile(b.rootfd, rel)
		if err != nil {
			continue
		}
		err = b.v.rehash(ctx, rel, algs, f)
		f.Close()
		if err := b.fileErr(err); err != nil {
			return err
		}
	}
	return nil
}
