package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/metadata"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/core/snapshots/storage"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/ctrforensics/ctrforensics/forensic/bundle"
)

// Offline roots. A containerd root directory of a dead host (a disk image
// mounted read-only) is read without any daemon: containerd's meta.db through
// core/metadata and each snapshotter's metadata.db through
// core/snapshots/storage, both bolt databases opened read-only (never
// initialised or migrated), and content blobs straight from disk. A database
// a live daemon holds locked, or one on a writable mount, is copied to a
// private directory first and the copy read; the original's digests before
// and after the copy are recorded. Nothing under the root is ever written,
// and no access time moves.

// TaskOffline is the task state of every container read from a disk root:
// there is no runtime to ask.
const TaskOffline TaskStatus = "unknown (offline)"

// metaDBPath is where containerd keeps meta.db under its root.
const metaDBPath = "io.containerd.metadata.v1.bolt/meta.db"

// snapshotterDirPrefix starts the directory of a snapshotter under a root.
const snapshotterDirPrefix = "io.containerd.snapshotter.v1."

// RootCandidates are where containerd roots usually are below the top of a
// host's filesystem: containerd's own, k3s's, and Docker's containerd store.
var RootCandidates = []string{
	"var/lib/containerd",
	"var/lib/rancher/k3s/agent/containerd",
	"var/lib/docker/containerd/daemon",
}

// NoRootError says a directory is no containerd root and holds none of the
// usual ones, or several (Candidates).
type NoRootError struct {
	Dir        string
	Candidates []string
}

func (e *NoRootError) Error() string {
	if len(e.Candidates) > 0 {
		return fmt.Sprintf("%s holds several containerd roots: %s", e.Dir, strings.Join(e.Candidates, ", "))
	}
	return fmt.Sprintf("%s is not a containerd root (no %s) and holds none of %s", e.Dir, metaDBPath, strings.Join(RootCandidates, ", "))
}

// FindRoot returns dir when it is a containerd root, or else the one usual
// root below it (dir is then the top of a host's filesystem); found says
// whether it looked below.
func FindRoot(dir string) (root string, found bool, err error) {
	if isRoot(dir) {
		return dir, false, nil
	}
	var hits []string
	for _, c := range RootCandidates {
		if p := filepath.Join(dir, c); isRoot(p) {
			hits = append(hits, p)
		}
	}
	if len(hits) == 1 {
		return hits[0], true, nil
	}
	return "", false, &NoRootError{Dir: dir, Candidates: hits}
}

func isRoot(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, metaDBPath))
	return err == nil && fi.Mode().IsRegular()
}

// diskRoot is the offline source of a Client.
type diskRoot struct {
	path    string
	bolt    *bolt.DB
	db      *metadata.DB
	sns     map[string]*diskSnapshotter
	copyDir string
	record  bundle.DiskRoot
	notes   []string
}

// OpenRoot opens the containerd root directory root read-only, working in
// namespace. The databases are copied to a private directory first when a
// live daemon holds them or when root is on a writable mount.
func OpenRoot(ctx context.Context, root, namespace string) (_ *Client, err error) {
	root, err = filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if !isRoot(root) {
		return nil, &NoRootError{Dir: root}
	}
	copyDir, err := newCopyDir()
	if err != nil {
		return nil, err
	}
	d := &diskRoot{path: root, copyDir: copyDir, sns: map[string]*diskSnapshotter{},
		record: bundle.DiskRoot{Source: bundle.SourceDiskRoot, Path: root}}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	writable := !onReadOnlyMount(root)
	if err := d.openMeta(writable); err != nil {
		return nil, err
	}
	if err := d.openSnapshotters(writable); err != nil {
		return nil, err
	}
	ss := map[string]snapshots.Snapshotter{}
	for name, sn := range d.sns {
		ss[name] = sn
	}
	d.db = metadata.NewDB(d.bolt, newDiskContent(root), ss)
	c, err := client.New("", client.WithDefaultNamespace(namespace), client.WithServices(
		client.WithContainerStore(metadata.NewContainerStore(d.db)),
		client.WithImageStore(metadata.NewImageStore(d.db)),
		client.WithContentStore(defaultNamespace{d.db.ContentStore(), namespace}),
		client.WithSnapshotters(d.db.Snapshotters()),
		client.WithSandboxStore(metadata.NewSandboxStore(d.db)),
	))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", root, err)
	}
	return &Client{c: c, namespace: namespace, disk: d}, nil
}

func (d *diskRoot) openMeta(writable bool) error {
	src, rec, err := dbSource(filepath.Join(d.path, metaDBPath), d.copyDir, writable)
	if err != nil {
		return err
	}
	d.addRecord(rec)
	d.bolt, err = bolt.Open(src, 0, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		return fmt.Errorf("open %s read-only: %w", src, err)
	}
	return nil
}

// openSnapshotters opens the databases of the snapshotters read offline; a
// snapshotter the root does not have holds no snapshot.
func (d *diskRoot) openSnapshotters(writable bool) error {
	for _, name := range offlineSnapshotters {
		sn := &diskSnapshotter{name: name, dir: filepath.Join(d.path, snapshotterDirPrefix+name)}
		d.sns[name] = sn
		if !sn.exists() {
			continue
		}
		src, rec, err := dbSource(filepath.Join(sn.dir, "metadata.db"), d.copyDir, writable)
		if err != nil {
			return err
		}
		d.addRecord(rec)
		if sn.ms, err = storage.NewMetaStore(src, func(o *bolt.Options) error { boltReadOnly(o); return nil }); err != nil {
			return fmt.Errorf("open %s: %w", src, err)
		}
	}
	return nil
}

func (d *diskRoot) addRecord(rec bundle.DatabaseDigest) {
	d.record.Databases = append(d.record.Databases, rec)
	if rec.Copied && rec.Before != rec.After {
		d.notes = append(d.notes, fmt.Sprintf("%s changed while it was copied (%s before, %s after): a live daemon is writing it; the copy read is %s",
			rec.Path, rec.Before, rec.After, rec.Copy))
	}
}

// close closes the databases and removes the private copies.
func (d *diskRoot) close() error {
	var errs []error
	for _, sn := range d.sns {
		errs = append(errs, sn.Close())
	}
	if d.bolt != nil {
		errs = append(errs, d.bolt.Close())
	}
	errs = append(errs, os.RemoveAll(d.copyDir))
	return errors.Join(errs...)
}

// DiskRootOp is something a disk root cannot do.
type DiskRootOp string

// What a disk root cannot do.
const (
	// OpCreateImage creates an image in containerd: a disk root is never
	// written.
	OpCreateImage DiskRootOp = "create an image"
	// OpPause pauses a task: nothing runs on a disk root.
	OpPause DiskRootOp = "pause a task"
)

// DiskRootError says an operation needs a live host, not a disk root.
type DiskRootError struct {
	Op DiskRootOp
}

func (e *DiskRootError) Error() string {
	why := "a disk root is never written"
	if e.Op == OpPause {
		why = "no task runs on a disk root"
	}
	return fmt.Sprintf("cannot %s from a disk root: %s", e.Op, why)
}

// Root is the containerd root directory the client reads, or "" for a client
// of a live daemon.
func (c *Client) Root() string {
	if c.disk == nil {
		return ""
	}
	return c.disk.path
}

// DiskRoot describes the disk root for the acquisition record; nil for a
// client of a live daemon.
func (c *Client) DiskRoot() *bundle.DiskRoot {
	if c.disk == nil {
		return nil
	}
	r := c.disk.record
	r.Databases = append([]bundle.DatabaseDigest(nil), r.Databases...)
	return &r
}

// RootNotes are what opening the disk root found worth saying (a database
// that changed while it was copied).
func (c *Client) RootNotes() []string {
	if c.disk == nil {
		return nil
	}
	return append([]string(nil), c.disk.notes...)
}

// snapshotter returns the disk snapshotter name, or an
// *UnsupportedSnapshotterError.
func (d *diskRoot) snapshotter(name string) (*diskSnapshotter, error) {
	sn, ok := d.sns[name]
	if !ok {
		return nil, &UnsupportedSnapshotterError{Snapshotter: name}
	}
	return sn, nil
}

// namespaces lists meta.db's namespaces, sorted.
func (d *diskRoot) namespaces(ctx context.Context) (nss []string, err error) {
	err = d.db.View(func(tx *bolt.Tx) error {
		nss, err = metadata.NewNamespaceStore(tx).List(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	sort.Strings(nss)
	return nss, nil
}

// view returns read-only mounts of the committed snapshot key of namespace ns,
// as a view snapshot of it would have, without creating one.
func (d *diskRoot) view(ctx context.Context, ns, snapshotter, key string) ([]mount.Mount, error) {
	sn, err := d.snapshotter(snapshotter)
	if err != nil {
		return nil, err
	}
	var bkey string
	err = d.db.View(func(tx *bolt.Tx) error {
		bkt := tx.Bucket([]byte("v1"))
		for _, name := range []string{ns, "snapshots", snapshotter, key} {
			if bkt == nil {
				break
			}
			bkt = bkt.Bucket([]byte(name))
		}
		if bkt != nil {
			bkey = string(bkt.Get([]byte("name")))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if bkey == "" {
		return nil, fmt.Errorf("snapshot %s in namespace %s of snapshotter %s: %w", key, ns, snapshotter, errdefs.ErrNotFound)
	}
	return sn.viewMounts(ctx, bkey)
}

// beginOffline starts a session on a disk root: no lease, since no daemon
// runs that could remove anything; views are computed, never created. A
// session with labels (naming a partial output) writes a run record instead
// (see writeRunRecord).
func (c *Client) beginOffline(ns string, opts SessionOptions) (*Session, error) {
	dir, err := os.MkdirTemp("", RunDirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, fmt.Errorf("create directory for temporary mounts: %w", err)
	}
	s := &Session{c: c, namespace: ns, mountDir: dir}
	s.Record("disk root opened", fmt.Sprintf("%s read-only, without a daemon (temporary mounts under %s)", c.disk.path, dir))
	if len(opts.Labels) == 0 {
		return s, nil
	}
	labels := map[string]string{LabelPurpose: opts.Purpose, LabelPid: strconv.Itoa(os.Getpid()), LabelMountDir: dir}
	for k, v := range opts.Labels {
		labels[k] = v
	}
	if s.runRecord, err = c.writeRunRecord(labels); err != nil {
		os.Remove(dir)
		return nil, err
	}
	s.Record("run recorded", s.runRecord+" (what a killed run leaves, for cleanup; there is no lease without a daemon)")
	return s, nil
}

// UnmountOffline undoes a browsing mount of a disk root at dir. Such a mount
// holds no lease or view, so neither a daemon nor the root is needed.
func UnmountOffline(ctx context.Context, dir, stateDir string) ([]string, error) {
	rec, err := ReadMountRecord(stateDir, dir)
	if err != nil {
		return nil, err
	}
	if rec.Root == "" || rec.Lease != "" || len(rec.Views) > 0 {
		return nil, fmt.Errorf("the mount at %s was made through containerd at %s, not from a disk root", rec.Mountpoint, rec.Address)
	}
	return (&Client{}).undoMount(ctx, rec, stateDir)
}

// defaultNamespace gives content reads made without a namespace the client's,
// as the daemon's client does for every call.
type defaultNamespace struct {
	content.Store
	ns string
}

func (s defaultNamespace) ctx(ctx context.Context) context.Context {
	if _, ok := namespaces.Namespace(ctx); ok {
		return ctx
	}
	return namespaces.WithNamespace(ctx, s.ns)
}

// Info returns a blob's info.
func (s defaultNamespace) Info(ctx context.Context, d digest.Digest) (content.Info, error) {
	return s.Store.Info(s.ctx(ctx), d)
}

// ReaderAt opens a blob.
func (s defaultNamespace) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	return s.Store.ReaderAt(s.ctx(ctx), desc)
}

// Walk calls fn for the namespace's blobs.
func (s defaultNamespace) Walk(ctx context.Context, fn content.WalkFunc, filters ...string) error {
	return s.Store.Walk(s.ctx(ctx), fn, filters...)
}

// dbCopyPrefix starts the name of a run's directory of database copies, in
// the temporary directory; the run's pid follows.
const dbCopyPrefix = "ctrforensics-db-"

// newCopyDir creates a private directory for database copies, named with the
// pid so that cleanup removes what a killed run left.
func newCopyDir() (string, error) {
	dir, err := os.MkdirTemp("", dbCopyPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", fmt.Errorf("create directory for database copies: %w", err)
	}
	return dir, nil
}

// cleanDBCopies removes dir when it holds the database copies of a dead run.
func cleanDBCopies(dir string, rep *CleanupReport) {
	rest, ok := strings.CutPrefix(filepath.Base(dir), dbCopyPrefix)
	pidText, _, _ := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(pidText)
	if !ok || err != nil || alive(pid) {
		return
	}
	if os.RemoveAll(dir) == nil {
		rep.Removed = append(rep.Removed, "database copies "+dir)
	}
}
