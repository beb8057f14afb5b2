package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ctrforensics/ctrforensics/forensic/custody"
	"github.com/ctrforensics/ctrforensics/internal/atomicfile"
)

// errNoBag says a path holds no bag ctrforensics can append to.
var errNoBag = errors.New("not an evidence bundle")

// ReadCustody returns a bundle's chain of custody and the digest of its tag
// manifest.
func ReadCustody(p string) ([]custody.Entry, string, error) {
	files, err := readRootFiles(p, CustodyFile, TagManifest)
	if err != nil {
		return nil, "", err
	}
	if files[TagManifest] == nil {
		return nil, "", fmt.Errorf("%s: %w (no %s)", p, errNoBag, TagManifest)
	}
	chain, err := custody.Read(bytes.NewReader(files[CustodyFile]))
	return chain, digestOf(files[TagManifest]), err
}

// AddCustody appends an event to a bundle's chain of custody and returns the
// new head digest. No other file of the bag changes; a tar is rewritten with
// every other entry byte for byte the same.
func AddCustody(p, action, actor, note string, key ed25519.PrivateKey) (string, error) {
	chain, bag, err := ReadCustody(p)
	if err != nil {
		return "", err
	}
	line, err := custody.Next(chain, time.Now(), action, actor, note, bag, key)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	if fi.IsDir() {
		err = appendLine(filepath.Join(p, CustodyFile), line)
	} else {
		err = rewriteTar(p, line)
	}
	if err != nil {
		return "", fmt.Errorf("append custody event to %s: %w", p, err)
	}
	return custody.LineDigest(line), nil
}

func appendLine(file string, line []byte) error {
	if err := refuseSymlink(file); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|oNoFollow, 0)
	if err != nil {
		return err
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// refuseSymlink fails for a symlink, where oNoFollow cannot (Windows).
func refuseSymlink(p string) error {
	fi, err := os.Lstat(p)
	if err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symlink: not followed", p)
	}
	return nil
}

// readRootFiles returns the content of the named files at the root of a bag
// directory or tar.
func readRootFiles(p string, names ...string) (map[string][]byte, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w: a %s, neither a bundle directory nor a tar archive", p, errNoBag, fi.Mode().Type())
	}
	out := map[string][]byte{}
	if fi.IsDir() {
		for _, n := range names {
			if b, err := readNoFollow(filepath.Join(p, n)); err == nil {
				out[n] = b
			}
		}
		return out, nil
	}
	err = eachTarEntry(p, func(name string, hdr *tar.Header, r io.Reader) error {
		for _, n := range names {
			if name == n && hdr.Typeflag == tar.TypeReg {
				b, err := io.ReadAll(io.LimitReader(r, 64<<20))
				if err != nil {
					return err
				}
				out[n] = b
			}
		}
		return nil
	})
	return out, err
}

// readNoFollow reads a small file of a bag, refusing a symlink.
func readNoFollow(p string) ([]byte, error) {
	if err := refuseSymlink(p); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 64<<20))
}

// eachTarEntry calls fn for each entry of a (gzip-compressed) tar bag with its
// name relative to the bag root (the top-level directory stripped).
func eachTarEntry(p string, fn func(rel string, hdr *tar.Header, r io.Reader) error) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := maybeGunzip(f)
	if err != nil {
		return fmt.Errorf("%s: %w: a gzip file that is not a tar archive (%v)", p, errNoBag, err)
	}
	tr := tar.NewReader(r)
	for first := true; ; first = false {
		hdr, err := tr.Next()
		switch {
		case first && errors.Is(err, io.ErrUnexpectedEOF):
			return fmt.Errorf("%s: %w: neither a bundle directory nor a tar archive (too short for a tar header)", p, errNoBag)
		case first && err != nil:
			return fmt.Errorf("%s: %w: neither a bundle directory nor a tar archive (%v)", p, errNoBag, err)
		case err == io.EOF:
			return nil
		case err != nil:
			return fmt.Errorf("%s: %w", p, err)
		}
		if err := fn(stripTop(hdr.Name), hdr, tr); err != nil {
			return err
		}
	}
}

func stripTop(name string) string {
	name = strings.TrimPrefix(name, "./")
	if _, rest, ok := strings.Cut(name, "/"); ok {
		return rest
	}
	return ""
}

func maybeGunzip(f *os.File) (io.Reader, error) {
	var magic [2]byte
	n, _ := io.ReadFull(f, magic[:])
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if n == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		return gzip.NewReader(f)
	}
	return f, nil
}

// rewriteTar copies a tar bag with line appended to its custody chain, into a
// new file renamed over the old one.
func rewriteTar(p string, line []byte) error {
	gz, err := isGzip(p)
	if err != nil {
		return err
	}
	return atomicfile.WriteVia(p, p+PartialSuffix, func(out *os.File) error {
		return copyTarAppending(p, out, gz, line)
	})
}

// isGzip tells whether the file at p starts with the gzip magic bytes.
func isGzip(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var magic [2]byte
	n, _ := io.ReadFull(f, magic[:])
	return n == 2 && magic[0] == 0x1f && magic[1] == 0x8b, nil
}

// PartialSuffix marks a file being rewritten.
const PartialSuffix = ".custody-partial"

func copyTarAppending(p string, out io.Writer, gz bool, line []byte) error {
	appended := false
	var w io.Writer = out
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(out)
		w = zw
	}
	tw := tar.NewWriter(w)
	err := eachTarEntry(p, func(rel string, hdr *tar.Header, r io.Reader) error {
		if rel != CustodyFile {
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			_, err := io.Copy(tw, r)
			return err
		}
		old, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		appended = true
		h := *hdr
		h.Size = int64(len(old) + len(line))
		h.ModTime = time.Now()
		if err := tw.WriteHeader(&h); err != nil {
			return err
		}
		_, err = tw.Write(append(old, line...))
		return err
	})
	if err != nil {
		return err
	}
	if !appended {
		return fmt.Errorf("%s has no %s to append to", p, CustodyFile)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if zw != nil {
		return zw.Close()
	}
	return nil
}
