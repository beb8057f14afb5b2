package packages

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/internal/fdio"
)

// VerifyDir checks files of the tree at root against the package records of
// the tree at recordRoot (the image's: records the container changed are not
// trusted, and a changed record is reported as DatabaseChanged). With targets
// nil every recorded file is checked; otherwise only the targets (a
// container's changes), so the cost follows the number of changes. Files are
// reached by descriptor, never through a symlink, and read with O_NOATIME.
func VerifyDir(ctx context.Context, recordRoot, root string, targets []Target, opts Options) ([]Result, error) {
	s := NewScanner(opts)
	var inv *Inventory
	var err error
	if targets == nil {
		inv, err = s.scanDir(ctx, recordRoot)
	} else {
		inv, err = s.scanRecords(ctx, recordRoot, targets)
	}
	if err != nil {
		return nil, err
	}
	owners := s.Owners(inv)
	rootfd, err := fdio.OpenDir(unix.AT_FDCWD, root)
	if err != nil {
		return nil, fmt.Errorf("verify packages: %w", err)
	}
	defer fdio.Close(rootfd)
	if targets == nil {
		targets = allTargets(func(d string) bool {
			st, err := fdio.Fstatat(rootfd, d)
			return err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK
		}, owners)
	}
	dirs := owners.Dirs()
	recfd, err := fdio.OpenDir(unix.AT_FDCWD, recordRoot)
	if err != nil {
		return nil, fmt.Errorf("verify packages: %w", err)
	}
	defer fdio.Close(recfd)
	var out []Result
	for _, t := range targets {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res, ok, err := verifyTarget(rootfd, recfd, owners, dirs, t)
		if err != nil {
			return nil, fmt.Errorf("verify packages: %w", err)
		}
		if ok {
			out = append(out, res)
		}
	}
	slices.SortFunc(out, func(a, b Result) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// verifyTarget checks one path. A record without mode and owner (dpkg,
// Python) takes them from the file in the record tree (the image), so a
// chmod u+s is caught too.
func verifyTarget(rootfd, recfd int, owners Owners, dirs map[string]bool, t Target) (Result, bool, error) {
	if DatabasePath(t.Path) {
		return Result{Path: t.Path, Status: DatabaseChanged}, true, nil
	}
	recorded, rec, owned := owners.Lookup(t.Path)
	st, fd, err := openIn(rootfd, t.Path)
	if err != nil {
		return Result{}, false, err
	}
	if fd >= 0 {
		defer fdio.Close(fd)
	}
	if !owned {
		if t.Added && st != nil && st.Regular && dirs[path.Dir(t.Path)] {
			return Result{Path: t.Path, Status: NotOwned}, true, nil
		}
		return Result{}, false, nil
	}
	if !rec.HasOwner {
		if ist, ifd, err := openIn(recfd, t.Path); err == nil && ist != nil && ist.Regular {
			fdio.Close(ifd)
			rec.Mode, rec.UID, rec.GID, rec.HasOwner = ist.Mode, ist.UID, ist.GID, true
		}
	}
	var r *os.File
	if fd >= 0 {
		r = os.NewFile(uintptr(fd), t.Path)
		fd = -1
		defer r.Close()
	}
	if r == nil {
		res, err := Check(t.Path, recorded, rec, st, nil)
		return res, true, err
	}
	res, err := Check(t.Path, recorded, rec, st, r)
	return res, true, err
}

// openIn stats p below rootfd without following any symlink and opens it
// when it is a regular file. A path that does not exist, or passes through
// something that is not a directory, gives a nil Stat.
func openIn(rootfd int, p string) (*Stat, int, error) {
	parts := strings.Split(strings.TrimPrefix(path.Clean(p), "/"), "/")
	dirfd := rootfd
	for _, c := range parts[:len(parts)-1] {
		fd, err := fdio.OpenDir(dirfd, c)
		if dirfd != rootfd {
			fdio.Close(dirfd)
		}
		if err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
				return nil, -1, nil
			}
			return nil, -1, err
		}
		dirfd = fd
	}
	if dirfd != rootfd {
		defer fdio.Close(dirfd)
	}
	name := parts[len(parts)-1]
	ust, err := fdio.Fstatat(dirfd, name)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil, -1, nil
	}
	if err != nil {
		return nil, -1, err
	}
	st := &Stat{Regular: ust.Mode&unix.S_IFMT == unix.S_IFREG, Mode: ust.Mode & 0o7777, UID: ust.Uid, GID: ust.Gid}
	if !st.Regular {
		return st, -1, nil
	}
	fd, err := fdio.OpenRegular(dirfd, name, ust.Ino)
	if err != nil {
		return nil, -1, fmt.Errorf("open %s: %w", esc(p), err)
	}
	return st, fd, nil
}

// scanDir is ScanDir on this Scanner, which keeps the records for Owners.
func (s *Scanner) scanDir(ctx context.Context, root string) (*Inventory, error) {
	ds := fdio.NewDirs(0)
	d, err := ds.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("scan packages: %w", err)
	}
	defer d.Close()
	if err := s.walkDir(ctx, d, "/"); err != nil {
		return nil, fmt.Errorf("scan packages: %w", err)
	}
	return s.Finish(ctx)
}

// scanRecords reads only the package records that can own the targets: the
// dpkg and apk databases, the rpm database directories, and the dist-info
// directories of the Python library directories that hold a target. Its cost
// follows the number of targets and packages, not the size of the tree.
func (s *Scanner) scanRecords(ctx context.Context, root string, targets []Target) (*Inventory, error) {
	s.recordsOnly = true
	subs := map[string]bool{"/etc": false, "/usr/lib": false, "/var/lib/dpkg": true, "/lib/apk/db": true,
		"/var/lib/rpm": true, "/usr/lib/sysimage/rpm": true}
	for _, t := range targets {
		for d := path.Dir(t.Path); d != "/"; d = path.Dir(d) {
			if isPythonLib(d) {
				subs[d] = true
				break
			}
		}
	}
	ds := fdio.NewDirs(0)
	rd, err := ds.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("scan packages: %w", err)
	}
	defer rd.Close()
	names := make([]string, 0, len(subs))
	for sub := range subs {
		names = append(names, sub)
	}
	slices.Sort(names)
	for _, sub := range names {
		d, err := descend(rd, sub)
		if err != nil || d == nil {
			continue
		}
		if subs[sub] {
			err = s.walkDir(ctx, d, sub)
		} else {
			err = s.readFiles(ctx, d, sub)
		}
		d.Close()
		if err != nil {
			return nil, fmt.Errorf("scan packages: %w", err)
		}
	}
	return s.Finish(ctx)
}

// descend opens the directory sub below root one component at a time,
// never through a symlink; a missing directory gives nil.
func descend(root *fdio.Dir, sub string) (*fdio.Dir, error) {
	d := root
	for _, c := range strings.Split(strings.TrimPrefix(sub, "/"), "/") {
		fd, err := d.Acquire()
		if err != nil {
			return nil, err
		}
		st, err := fdio.Fstatat(fd, c)
		d.Release()
		if err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if d != root {
				d.Close()
			}
			return nil, nil
		}
		next, err := d.Open(c, st.Ino)
		if d != root {
			d.Close()
		}
		if err != nil {
			return nil, err
		}
		d = next
	}
	return d, nil
}

// readFiles offers the regular files directly in d (not below).
func (s *Scanner) readFiles(ctx context.Context, d *fdio.Dir, dir string) error {
	fd, err := d.Acquire()
	if err != nil {
		return err
	}
	defer d.Release()
	names, err := fdio.ReadNames(fd)
	if err != nil {
		return err
	}
	for _, name := range names {
		if st, err := fdio.Fstatat(fd, name); err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
			s.scanFile(ctx, fd, name, path.Join(dir, name), &st)
		}
	}
	return nil
}
