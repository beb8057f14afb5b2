package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ctrforensics/ctrforensics/internal/atomicfile"
)

// LabelPartialFile names, on the lease of a run writing one output file, the
// temporary file it writes before renaming it into place, so that cleanup
// removes what a killed run left.
const LabelPartialFile = "ctrforensics.io/partial-file"

// ExistsError says an output is already there: ctrforensics never replaces a
// file.
type ExistsError struct{ Path string }

func (e *ExistsError) Error() string { return e.Path + " already exists" }

// WriteNewFile writes the new file path with fill, atomically (see
// atomicfile), under a lease that names the temporary file until it is
// renamed into place. It refuses to replace a file that is already there.
func (c *Client) WriteNewFile(ctx context.Context, path string, fill func(*os.File) error) error {
	if _, err := os.Lstat(path); err == nil {
		return &ExistsError{Path: path}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	temp, err := atomicfile.TempName(abs)
	if err != nil {
		return err
	}
	hold, err := c.Begin(ctx, "", SessionOptions{Purpose: "output", Labels: map[string]string{LabelPartialFile: temp}})
	if err != nil {
		return err
	}
	hold.Record("partial output", temp+" (named on this lease until it is renamed to "+abs+")")
	err = atomicfile.WriteVia(abs, temp, fill)
	return errors.Join(err, hold.Close(ctx))
}

// removePartialFile removes the temporary file a killed WriteNewFile left,
// when it is one: a regular file whose name has the temporary form. It tells
// whether it removed one.
func removePartialFile(temp string) bool {
	fi, err := os.Lstat(temp)
	if err != nil || !fi.Mode().IsRegular() || !atomicfile.IsTempName(temp) {
		return false
	}
	return os.Remove(temp) == nil
}
