//go:build !linux

package contentdir

import (
	"io"
	"os"
)

// openBlob opens a blob read-only.
func openBlob(p string) (*os.File, error) { return os.Open(p) }

// listDir lists the directory p: it fails unless this process may read it.
func listDir(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); err != nil && err != io.EOF {
		return err
	}
	return nil
}
