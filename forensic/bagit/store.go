package bagit

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"
)

// store holds the files of a bag being written: a directory (Create), or a
// tar stream that is never a local file (NewStream). Paths are bag-relative
// and slash-separated; the Writer creates a directory before anything in it.
type store interface {
	// mkdir creates the directory dir, whose parent exists.
	mkdir(dir string) error
	// create creates the new file rel, which will hold size bytes, or an
	// unknown number when size is negative (a store may refuse that).
	create(rel string, size int64) (io.WriteCloser, error)
	// finish makes the bag durable (dirs are the directories that received
	// files) or ends the stream.
	finish(dirs []string) error
}

// dirStore is a bag in a directory of the local file system.
type dirStore struct{ root string }

func (s dirStore) path(rel string) string { return filepath.Join(s.root, filepath.FromSlash(rel)) }

func (s dirStore) mkdir(dir string) error { return mkdir(s.path(dir)) }

// create creates a file of mode 0644 whatever the umask; Close syncs it.
func (s dirStore) create(rel string, _ int64) (io.WriteCloser, error) {
	f, err := os.OpenFile(s.path(rel), os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(fileMode); err != nil {
		f.Close()
		return nil, err
	}
	return syncedFile{f}, nil
}

// finish syncs every directory that received files, deepest first.
func (s dirStore) finish(dirs []string) error {
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if err := syncDir(s.path(d)); err != nil {
			return err
		}
	}
	return nil
}

// syncedFile syncs the file to disk when it is closed.
type syncedFile struct{ *os.File }

func (f syncedFile) Close() error {
	err := f.Sync()
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// errNeedSize refuses a file of unknown size in a tar stream, whose header
// comes before the content.
var errNeedSize = errors.New("a bag written as a stream needs the size of each file before its content")

// streamStore is a bag written as a PAX tar stream, entries named below the
// top-level directory top, one file at a time, in the order written.
type streamStore struct {
	tw    *tar.Writer
	top   string
	mtime time.Time
	// writing is the file being written, "" between files.
	writing string
}

func newStreamStore(w io.Writer, top string) (*streamStore, error) {
	if why := checkRel(top); why != "" || path.Dir(top) != "." || top == payloadDir {
		return nil, fmt.Errorf("bag name %q: not a single path component", top)
	}
	s := &streamStore{tw: tar.NewWriter(w), top: top, mtime: time.Now().Truncate(time.Second)}
	return s, s.header(&tar.Header{Typeflag: tar.TypeDir, Name: top + "/", Mode: dirMode})
}

func (s *streamStore) header(hdr *tar.Header) error {
	hdr.ModTime, hdr.Format = s.mtime, tar.FormatPAX
	if err := s.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("tar %s: %w", hdr.Name, err)
	}
	return nil
}

func (s *streamStore) mkdir(dir string) error {
	if s.writing != "" {
		return fmt.Errorf("%s is still being written", s.writing)
	}
	return s.header(&tar.Header{Typeflag: tar.TypeDir, Name: s.top + "/" + dir + "/", Mode: dirMode})
}

func (s *streamStore) create(rel string, size int64) (io.WriteCloser, error) {
	switch {
	case size < 0:
		return nil, errNeedSize
	case s.writing != "":
		return nil, fmt.Errorf("%s is still being written: a stream takes one file at a time", s.writing)
	}
	if err := s.header(&tar.Header{Typeflag: tar.TypeReg, Name: s.top + "/" + rel, Mode: fileMode, Size: size}); err != nil {
		return nil, err
	}
	s.writing = rel
	return &streamFile{s: s, left: size}, nil
}

// finish writes the end of the archive.
func (s *streamStore) finish([]string) error {
	if s.writing != "" {
		return fmt.Errorf("%s is still being written", s.writing)
	}
	return s.tw.Close()
}

// streamFile is the content of one entry of a streamStore.
type streamFile struct {
	s    *streamStore
	left int64
}

func (f *streamFile) Write(b []byte) (int, error) {
	if int64(len(b)) > f.left {
		return 0, fmt.Errorf("%s: more than the %d bytes announced", f.s.writing, f.left)
	}
	n, err := f.s.tw.Write(b)
	f.left -= int64(n)
	return n, err
}

// Close ends the entry; one left short cannot be completed, and breaks the
// stream.
func (f *streamFile) Close() error {
	if f.left != 0 {
		return fmt.Errorf("%s: %d bytes short of the size announced", f.s.writing, f.left)
	}
	f.s.writing = ""
	return nil
}
