// Package atomicfile writes a file so that a reader, or the file system after
// a crash, sees either what was there before or the complete new content,
// never a part of it.
//
// The content is written to a temporary file in the destination's directory
// (the same file system, so that rename is atomic), synced, closed and renamed
// over the destination; the directory is then synced so that the rename
// itself survives a crash. On any error the temporary file is removed and the
// destination is left as it was.
package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// WriteNew writes the file at path with fill, replacing any file already
// there only once the new content is complete and on disk. fill receives the
// temporary file opened for writing; it must not close it.
func WriteNew(path string, fill func(*os.File) error) error {
	temp, err := TempName(path)
	if err != nil {
		return err
	}
	return WriteVia(path, temp, fill)
}

// tempMarker separates a destination's name from the random suffix of its
// temporary file.
const tempMarker = ".tmp-"

// tempSuffixLen is the length of the hexadecimal suffix after tempMarker.
const tempSuffixLen = 12

// TempName returns a new temporary file name for path, in its directory:
// path, tempMarker and 12 random hexadecimal digits.
func TempName(path string) (string, error) {
	var b [tempSuffixLen / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path + tempMarker + hex.EncodeToString(b[:]), nil
}

// IsTempName tells whether name (a base name or a path) has the form TempName
// gives, so that a caller removing what a killed writer left never removes
// anything else.
func IsTempName(name string) bool {
	i := strings.LastIndex(name, tempMarker)
	if i <= 0 || len(name)-i-len(tempMarker) != tempSuffixLen {
		return false
	}
	_, err := hex.DecodeString(name[i+len(tempMarker):])
	return err == nil
}

// WriteVia is WriteNew with the temporary file named by the caller, for a
// caller that records the name so that what a killed process left can be
// found and removed. temp must be in path's directory and must not exist.
func WriteVia(path, temp string, fill func(*os.File) error) (err error) {
	if filepath.Dir(filepath.Clean(temp)) != filepath.Dir(filepath.Clean(path)) {
		return fmt.Errorf("write %s: temporary file %s is in another directory", path, temp)
	}
	f, err := os.OpenFile(temp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			os.Remove(temp)
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	err = fill(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil && !errors.Is(cerr, os.ErrClosed) {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(temp, path); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}
