// Package treestate describes a directory tree in one line per entry, for
// tests that check a replayed or extracted tree against the one it came from.
//
// It reads the files it describes (their sha256): use it on trees a test
// made, or on read-only mounts, never on evidence through a writable path.
package treestate

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Describe maps the path of every entry below root (relative to root) to its
// type, mode, owner, size, content digest, link target and mtime. Symlinks
// are described, never followed.
func Describe(root string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		desc, err := describe(p)
		if err != nil {
			return err
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", root, err)
	}
	return out, nil
}

// describe is one entry's line.
func describe(p string) (string, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return "", err
	}
	desc := fmt.Sprintf("mode=%o uid=%d gid=%d", st.Mode, st.Uid, st.Gid)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		desc = "dir " + desc
	case unix.S_IFREG:
		b, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		desc += fmt.Sprintf(" size=%d sha=%x", st.Size, sha256.Sum256(b))
	case unix.S_IFLNK:
		target, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		desc += " target=" + target
	}
	return desc + " mtime=" + time.Unix(st.Mtim.Unix()).UTC().Format(time.RFC3339Nano), nil
}

// WithoutDirTimes returns m without the mtimes of directories (extracting
// entries into a directory sets its mtime).
func WithoutDirTimes(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if strings.HasPrefix(v, "dir ") {
			v, _, _ = strings.Cut(v, " mtime=")
		}
		out[k] = v
	}
	return out
}

// Diff lists, sorted, every path whose description differs between got and
// want, and every path only got has.
func Diff(got, want map[string]string) []string {
	var diffs []string
	for k, v := range want {
		if got[k] != v {
			diffs = append(diffs, fmt.Sprintf("%s: got %q want %q", k, got[k], v))
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: extra %q", k, v))
		}
	}
	slices.Sort(diffs)
	return diffs
}
