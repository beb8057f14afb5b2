package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/ctrforensics/ctrforensics/forensic/bagit"
)

// PartialMarker is in the name of every bag still being written.
const PartialMarker = ".partial-"

// output is where a collect writes: the bag is built in a directory next to the
// final path (partial/NAME, NAME being the final name without .tar or .tar.gz,
// which a tar keeps as its top-level directory) and moved or packed there once
// sealed.
type output struct {
	final   string
	partial string
	bag     string
	// tar and gzip say the final path is a tar, compressed or not.
	tar, gzip bool
}

func newOutput(path string) (*output, error) {
	if path == "" {
		return nil, fmt.Errorf("no output: give -o DIR, -o FILE.tar or -o FILE.tar.gz")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	o := &output{final: abs}
	switch {
	case strings.HasSuffix(abs, ".tar"):
		o.tar = true
	case strings.HasSuffix(abs, ".tar.gz"), strings.HasSuffix(abs, ".tgz"):
		o.tar, o.gzip = true, true
	}
	if err := o.checkFinal(); err != nil {
		return nil, err
	}
	o.partial = abs + PartialMarker + randomID()[:8]
	name := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(filepath.Base(abs), ".tar"), ".tar.gz"), ".tgz")
	o.bag = filepath.Join(o.partial, name)
	if err := os.Mkdir(o.partial, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", o.partial, err)
	}
	return o, nil
}

// checkFinal refuses to overwrite anything but an empty directory.
func (o *output) checkFinal() error {
	fi, err := os.Lstat(o.final)
	switch {
	case os.IsNotExist(err):
		return nil
	case err != nil:
		return err
	case o.tar || !fi.IsDir():
		return fmt.Errorf("output %s already exists: pick a new name", o.final)
	}
	entries, err := os.ReadDir(o.final)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("output directory %s is not empty: pick a new or empty one", o.final)
	}
	return nil
}

// commit moves or packs the sealed bag to its final path.
func (o *output) commit() error {
	if err := o.checkFinal(); err != nil {
		return err
	}
	if !o.tar {
		os.Remove(o.final) // an empty directory given as output
		if err := os.Rename(o.bag, o.final); err != nil {
			return fmt.Errorf("move bag to %s: %w", o.final, err)
		}
		return os.Remove(o.partial)
	}
	tmp := o.partial + ".tar"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	err = bagit.Pack(o.bag, f, o.gzip)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, o.final)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", o.final, err)
	}
	return os.RemoveAll(o.partial)
}

// abandon removes what an unfinished collect wrote.
func (o *output) abandon() {
	os.RemoveAll(o.partial)
	os.Remove(o.partial + ".tar")
}

// fileDigest returns "sha256:<hex>" of a file.
func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func goVersion() string { return runtime.Version() }
