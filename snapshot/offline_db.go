package snapshot

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/ctrforensics/ctrforensics/forensic/bundle"
)

// lockTimeout makes bolt try a database's lock once, without waiting (bolt
// retries every 50 ms until the timeout less 50 ms has passed): a live daemon
// holds the lock for as long as it runs, so waiting would only cost time, and
// a locked database is copied instead.
const lockTimeout = 50 * time.Millisecond

// boltReadOnly are the options every database of a root is opened with: never
// writable, never waiting long for a lock.
func boltReadOnly(o *bolt.Options) {
	o.ReadOnly = true
	o.Timeout = lockTimeout
}

// dbSource is the database file to open for an original under the root: the
// original itself, or a private copy when the original is locked by a live
// daemon or on a writable mount (reading it in place could move its access
// time). The record says which, with the original's digests, and whether a
// live daemon held the original.
func dbSource(original, copyDir string, writable bool) (string, bundle.DatabaseDigest, error) {
	rec := bundle.DatabaseDigest{Path: original}
	if !writable {
		db, err := bolt.Open(original, 0, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
		switch {
		case err == nil:
			db.Close()
			d, err := fileDigest(original)
			rec.Before, rec.After = d, d
			return original, rec, err
		case !errors.Is(err, bolterrors.ErrTimeout):
			return "", rec, fmt.Errorf("open %s read-only: %w", original, err)
		}
		rec.Locked = true
	} else {
		rec.Locked = heldByDaemon(original)
	}
	dst, err := os.CreateTemp(copyDir, filepath.Base(original)+"-")
	if err != nil {
		return "", rec, fmt.Errorf("copy %s: %w", original, err)
	}
	defer dst.Close()
	if rec.Before, err = fileDigest(original); err != nil {
		return "", rec, err
	}
	if rec.Copy, err = copyFile(dst, original); err != nil {
		return "", rec, err
	}
	if rec.After, err = fileDigest(original); err != nil {
		return "", rec, err
	}
	if err := dst.Close(); err != nil {
		return "", rec, fmt.Errorf("copy %s: %w", original, err)
	}
	rec.Copied = true
	return dst.Name(), rec, nil
}

// copyFile copies the file at path into dst, reading without moving its
// access time, and returns the digest of what it copied.
func copyFile(dst io.Writer, path string) (digest.Digest, error) {
	f, err := openNoatime(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(dst, h), f); err != nil {
		return "", fmt.Errorf("copy %s: %w", path, err)
	}
	return digest.NewDigest(digest.SHA256, h), nil
}

// fileDigest is the sha256 of the file at path, read without moving its
// access time.
func fileDigest(path string) (digest.Digest, error) {
	return copyFile(io.Discard, path)
}
