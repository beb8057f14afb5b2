package snapshot

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/ctrforensics/ctrforensics/snapshot/contentdir"
)

func mkRoot(t *testing.T, dir string) {
	t.Helper()
	p := filepath.Join(dir, metaDBPath)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestFindRoot: a root is taken as it is; below the top of a disk the one
// usual root is found; none or several is a *NoRootError naming them.
func TestFindRoot(t *testing.T) {
	for _, tc := range []struct {
		name  string
		roots []string // below the directory given
		want  string   // "" for an error
		below bool
	}{
		{"root itself", []string{"."}, ".", false},
		{"containerd", []string{"var/lib/containerd"}, "var/lib/containerd", true},
		{"k3s", []string{"var/lib/rancher/k3s/agent/containerd"}, "var/lib/rancher/k3s/agent/containerd", true},
		{"docker", []string{"var/lib/docker/containerd/daemon"}, "var/lib/docker/containerd/daemon", true},
		{"none", []string{"var/lib/other"}, "", false},
		{"several", []string{"var/lib/containerd", "var/lib/docker/containerd/daemon"}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top := t.TempDir()
			for _, r := range tc.roots {
				mkRoot(t, filepath.Join(top, r))
			}
			got, below, err := FindRoot(top)
			var noRoot *NoRootError
			switch {
			case tc.want == "" && !errors.As(err, &noRoot):
				t.Fatalf("FindRoot = %q, %v; want a *NoRootError", got, err)
			case tc.want == "":
				if len(tc.roots) > 1 && len(noRoot.Candidates) != len(tc.roots) {
					t.Errorf("error names %v, want all of %v", noRoot.Candidates, tc.roots)
				}
			case err != nil || got != filepath.Join(top, tc.want) || below != tc.below:
				t.Errorf("FindRoot = %q, %v, %v; want %q, %v", got, below, err, filepath.Join(top, tc.want), tc.below)
			}
		})
	}
}

// TestDiskContentChecksDigests reads blobs straight from a content directory:
// a good blob reads, in order or not; a blob whose bytes do not match its
// digest fails with an error naming it; nothing is created in the store.
func TestDiskContentChecksDigests(t *testing.T) {
	dir := t.TempDir()
	good, bad := []byte("good blob\n"), []byte("tampered\n")
	gd, bd := digest.FromBytes(good), digest.FromBytes([]byte("original\n"))
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o700); err != nil {
		t.Fatal(err)
	}
	for d, b := range map[digest.Digest][]byte{gd: good, bd: bad} {
		if err := os.WriteFile(filepath.Join(blobs, d.Encoded()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	s := diskContent{contentdir.At(dir)}
	b, err := content.ReadBlob(ctx, s, ocispec.Descriptor{Digest: gd, Size: int64(len(good))})
	if err != nil || string(b) != string(good) {
		t.Fatalf("good blob: %q, %v", b, err)
	}
	ra, err := s.ReaderAt(ctx, ocispec.Descriptor{Digest: gd})
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 4)
	if _, err := ra.ReadAt(p, 5); err != nil || string(p) != "blob" { // out of order: checked whole first
		t.Errorf("read at 5: %q, %v", p, err)
	}
	ra.Close()

	for _, read := range []func(content.ReaderAt) error{
		func(ra content.ReaderAt) error {
			_, err := io.ReadAll(io.NewSectionReader(ra, 0, ra.Size()))
			return err
		},
		func(ra content.ReaderAt) error { _, err := ra.ReadAt(make([]byte, 2), 3); return err },
	} {
		ra, err := s.ReaderAt(ctx, ocispec.Descriptor{Digest: bd})
		if err != nil {
			t.Fatal(err)
		}
		var corrupt *contentdir.CorruptBlobError
		if err := read(ra); !errors.As(err, &corrupt) || corrupt.Digest != bd || !strings.Contains(err.Error(), bd.String()) {
			t.Errorf("tampered blob read: %v; want a *CorruptBlobError naming %s", err, bd)
		}
		ra.Close()
	}
	var walked []digest.Digest
	if err := s.Walk(ctx, func(i content.Info) error { walked = append(walked, i.Digest); return nil }); err != nil || len(walked) != 2 {
		t.Errorf("walk found %v, %v; want both blobs", walked, err)
	}
	if _, err := s.Writer(ctx); err == nil {
		t.Error("a disk content store gave a writer")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "blobs" {
		t.Errorf("the content directory holds %v after reading: it must be left as it was", entries)
	}
}

// TestDBSourceLockedIsCopied holds a bolt database open for writing, as a live
// daemon does, and expects dbSource to copy it at once instead of waiting,
// with the original's digests, and to tell it held on a writable mount too
// (where it is always copied); an unlocked database on a read-only source is
// read in place.
func TestDBSourceLockedIsCopied(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "meta.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("v1")); return err }); err != nil {
		t.Fatal(err)
	}
	copies := t.TempDir()
	start := time.Now()
	src, rec, err := dbSource(path, copies, false)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("dbSource took %s on a locked database", d)
	}
	if src == path || !rec.Locked || !rec.Copied || rec.Before == "" || rec.Before != rec.After || rec.Copy != rec.Before {
		t.Errorf("locked database: source %s, record %+v; want a copy with equal digests", src, rec)
	}
	copied, err := bolt.Open(src, 0, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		t.Fatalf("open the copy: %v", err)
	}
	if err := copied.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("v1")) == nil {
			return errors.New("the copy lacks bucket v1")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	copied.Close()
	if _, rec, err := dbSource(path, copies, true); err != nil || !rec.Locked || !rec.Copied {
		t.Errorf("locked database on a writable mount: record %+v, %v; want it copied and told held", rec, err)
	}
	db.Close()

	src, rec, err = dbSource(path, copies, false)
	if err != nil || src != path || rec.Copied || rec.Before == "" {
		t.Errorf("unlocked database: source %s, record %+v, %v; want it read in place", src, rec, err)
	}
	src, rec, err = dbSource(path, copies, true)
	if err != nil || src == path || !rec.Copied || rec.Locked || rec.Before != rec.Copy {
		t.Errorf("database on a writable mount: source %s, record %+v, %v; want a copy", src, rec, err)
	}
	names, _ := os.ReadDir(dir)
	if len(names) != 1 {
		t.Errorf("the database's directory holds %v: nothing may be added", names)
	}
}

// TestParseSnapshotPath splits the paths a host-level scan reports.
func TestParseSnapshotPath(t *testing.T) {
	const ov = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs"
	for _, tc := range []struct {
		path, sn, id, within, dir string
	}{
		{ov + "/snapshots/123/fs/etc/passwd", "overlayfs", "123", "/etc/passwd", ov},
		{ov + "/snapshots/123/fs", "overlayfs", "123", "/", ov},
		{ov + "/snapshots/7/work/work", "overlayfs", "7", "", ov},
		{"/r/io.containerd.snapshotter.v1.native/snapshots/9/bin/sh", "native", "9", "/bin/sh", "/r/io.containerd.snapshotter.v1.native"},
		{"/etc/passwd", "", "", "", ""},
		{ov + "/metadata.db", "", "", "", ""},
	} {
		o, dir, err := parseSnapshotPath(tc.path)
		if tc.sn == "" {
			var e *NotSnapshotPathError
			if !errors.As(err, &e) {
				t.Errorf("%s: %v, want a *NotSnapshotPathError", tc.path, err)
			}
			continue
		}
		if err != nil || o.Snapshotter != tc.sn || o.SnapshotID != tc.id || o.Within != tc.within || dir != tc.dir {
			t.Errorf("%s: %+v %s %v", tc.path, o, dir, err)
		}
	}
	if !slices.Contains(offlineSnapshotters, "overlayfs") {
		t.Error("overlayfs is not read offline")
	}
}

// TestCleanDBCopies: the database copies of a dead run are removed, those of
// a live one and directories named otherwise are left.
func TestCleanDBCopies(t *testing.T) {
	tmp := t.TempDir()
	dead := filepath.Join(tmp, dbCopyPrefix+"2147483646-x")
	live := filepath.Join(tmp, dbCopyPrefix+strconv.Itoa(os.Getpid())+"-x")
	other := filepath.Join(tmp, dbCopyPrefix+"x")
	for _, d := range []string{dead, live, other} {
		if err := os.MkdirAll(filepath.Join(d, "meta.db-1"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	rep := &CleanupReport{}
	for _, d := range []string{dead, live, other} {
		cleanDBCopies(d, rep)
	}
	for d, want := range map[string]bool{dead: false, live: true, other: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", d, err == nil, want)
		}
	}
	if len(rep.Removed) != 1 || !strings.Contains(rep.Removed[0], dead) {
		t.Errorf("report %v, want the dead run's copies", rep.Removed)
	}
}
