package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"

	"github.com/ctrforensics/ctrforensics/forensic/bundle"
	"github.com/ctrforensics/ctrforensics/mountutil"
)

// Labels ctrforensics puts on the leases it creates, so that `umount` and
// `cleanup` can find what an interrupted run left behind.
const (
	LabelPurpose    = "ctrforensics.io/purpose"
	LabelPid        = "ctrforensics.io/pid"
	LabelMountpoint = "ctrforensics.io/mountpoint"
	// LabelMountDir names the directory holding a run's temporary mounts,
	// wherever its TMPDIR was, so that cleanup finds them from any other.
	LabelMountDir = "ctrforensics.io/mountdir"
)

// RunDirPrefix starts the name of the directory, in the temporary directory,
// that holds one run's temporary mounts; the run's pid follows.
const RunDirPrefix = "ctrforensics-run-"

// defaultLeaseExpiry bounds how long a lease outlives a killed run: containerd
// then drops it and collects the views it held.
const defaultLeaseExpiry = time.Hour

// SideEffect is one change ctrforensics made on the host, for the acquisition
// log; its schema is the bundle's.
type SideEffect = bundle.SideEffect

// SessionOptions tune Begin.
type SessionOptions struct {
	// Purpose labels the lease: diff, mount, collect...
	Purpose string
	// Expiry is how long containerd keeps the lease if it is never released;
	// 0 means an hour, a negative value never.
	Expiry time.Duration
	// Labels are added to the lease.
	Labels map[string]string
}

// Session holds a containerd lease for one operation and remembers every view
// snapshot and mount it made, so that Close undoes them all.
type Session struct {
	c         *Client
	namespace string
	lease     leases.Lease
	views     []View
	effects   []SideEffect
	// releases undo mounts held until Close, newest last.
	releases []func() error
	// resume resumes the task Pause paused; Close calls it first.
	resume func(context.Context) error
	// mountDir holds the session's temporary mounts; named on the lease.
	mountDir string
	// runRecord stands in for the lease of a session on a disk root that
	// has labels (see writeRunRecord); removed by Close.
	runRecord string
}

// View names a view snapshot a session created.
type View struct {
	Snapshotter string `json:"snapshotter"`
	Key         string `json:"key"`
}

// Begin starts a session in namespace ns ("" for the client's) with a new lease.
func (c *Client) Begin(ctx context.Context, ns string, opts SessionOptions) (*Session, error) {
	if ns == "" {
		ns = c.namespace
	}
	if c.disk != nil {
		return c.beginOffline(ns, opts)
	}
	expiry := opts.Expiry
	if expiry == 0 {
		expiry = defaultLeaseExpiry
	}
	dir, err := os.MkdirTemp("", RunDirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, fmt.Errorf("create directory for temporary mounts: %w", err)
	}
	labels := map[string]string{LabelPurpose: opts.Purpose, LabelPid: strconv.Itoa(os.Getpid()), LabelMountDir: dir}
	for k, v := range opts.Labels {
		labels[k] = v
	}
	lopts := []leases.Opt{leases.WithID("ctrforensics-" + randomID()), leases.WithLabels(labels)}
	if expiry > 0 {
		lopts = append(lopts, leases.WithExpiration(expiry))
	}
	// Not cancellable: an interrupted call could leave a lease that containerd
	// created and this run never heard of. Cancellation is checked once the
	// session exists and can remove it.
	l, err := c.c.LeasesService().Create(namespaces.WithNamespace(context.WithoutCancel(ctx), ns), lopts...)
	if err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("create lease: %w", err)
	}
	s := &Session{c: c, namespace: ns, lease: l, mountDir: dir}
	s.Record("lease created", fmt.Sprintf("%s in namespace %s (expires after %s; temporary mounts under %s)",
		l.ID, ns, expiryText(expiry), dir))
	if err := ctx.Err(); err != nil {
		return nil, errors.Join(err, s.Close(ctx))
	}
	return s, nil
}

func expiryText(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return d.String()
}

func randomID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

// Lease is the session's lease ID.
func (s *Session) Lease() string { return s.lease.ID }

// Namespace is the namespace the session works in.
func (s *Session) Namespace() string { return s.namespace }

// Context returns ctx bound to the session's namespace and lease: every
// resource containerd creates with it belongs to the lease.
func (s *Session) Context(ctx context.Context) context.Context {
	return leases.WithLease(namespaces.WithNamespace(ctx, s.namespace), s.lease.ID)
}

// Record adds a side effect to the session's log.
func (s *Session) Record(action, detail string) {
	s.effects = append(s.effects, SideEffect{Time: time.Now().UTC(), Action: action, Detail: detail})
}

// Effects returns every side effect recorded so far.
func (s *Session) Effects() []SideEffect { return append([]SideEffect(nil), s.effects...) }

// Views returns the view snapshots the session created and has not removed.
func (s *Session) Views() []View { return append([]View(nil), s.views...) }

// Protect adds a snapshot to the lease, so that containerd keeps it while the
// session runs even if its container is deleted meanwhile.
func (s *Session) Protect(ctx context.Context, snapshotter, key string) error {
	if s.c.disk != nil {
		return nil // nothing runs that could remove it
	}
	r := leases.Resource{ID: key, Type: "snapshots/" + snapshotter}
	if err := s.c.c.LeasesService().AddResource(s.Context(ctx), s.lease, r); err != nil {
		return fmt.Errorf("add snapshot %s to lease: %w", key, err)
	}
	s.Record("snapshot leased", snapshotter+"/"+key)
	return nil
}

// View creates a read-only view snapshot of the committed snapshot parent and
// returns its mounts, made read-only. The view belongs to the lease and is
// removed by Close.
func (s *Session) View(ctx context.Context, snapshotter, parent string) ([]mount.Mount, error) {
	if s.c.disk != nil {
		mounts, err := s.c.disk.view(ctx, s.namespace, snapshotter, parent)
		if err != nil {
			return nil, fmt.Errorf("view of %s: %w", parent, err)
		}
		return mountutil.ReadOnly(mounts)
	}
	key := fmt.Sprintf("%s-view-%d", s.lease.ID, len(s.views))
	// Remembered before it is asked for: an interrupted call may still have
	// created it, and Close removes it (or finds it never existed).
	s.views = append(s.views, View{Snapshotter: snapshotter, Key: key})
	mounts, err := s.c.c.SnapshotService(snapshotter).View(s.Context(ctx), key, parent)
	if err != nil {
		return nil, fmt.Errorf("create view of %s: %w", parent, err)
	}
	s.Record("view created", fmt.Sprintf("%s/%s of %s", snapshotter, key, parent))
	ro, err := mountutil.ReadOnly(mounts)
	if err != nil {
		return nil, fmt.Errorf("view %s: %w", key, err)
	}
	return ro, nil
}

// WithMount mounts mounts read-only on a temporary directory for the duration of
// fn, recording the mount and the unmount.
func (s *Session) WithMount(ctx context.Context, what string, mounts []mount.Mount, fn func(root string) error) (err error) {
	root, undo, err := s.holdMount(ctx, what, mounts)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, undo()) }()
	return fn(root)
}

// holdMount mounts read-only on a temporary directory until the session closes.
func (s *Session) holdMount(ctx context.Context, what string, mounts []mount.Mount) (string, func() error, error) {
	if err := ctx.Err(); err != nil {
		return "", nil, err
	}
	dir, undo, err := mountutil.TempMount(s.mountDir, mounts)
	if err != nil {
		return "", nil, err
	}
	s.Record("mounted read-only", what+" at "+dir)
	return dir, func() error {
		err := undo()
		if err == nil {
			s.Record("unmounted", dir)
		}
		return err
	}, nil
}

// Close resumes a task the session paused, then removes the session's views
// and its lease. It works on a context that is not cancelled, so that an
// interrupted operation still cleans up.
func (s *Session) Close(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	var resumeErr error
	if s.resume != nil {
		resumeErr = s.resume(ctx)
		s.resume = nil
	}
	var errs []error
	for i := len(s.releases) - 1; i >= 0; i-- {
		errs = append(errs, s.releases[i]())
	}
	s.releases = nil
	if err := errors.Join(errs...); err != nil {
		return errors.Join(resumeErr, err) // views stay until their mounts are gone
	}
	if s.mountDir != "" {
		// Remove, never RemoveAll: only an empty directory goes.
		if err := os.Remove(s.mountDir); err != nil && !os.IsNotExist(err) {
			return errors.Join(resumeErr, fmt.Errorf("remove directory of temporary mounts: %w", err))
		}
	}
	removed, err := s.c.Release(ctx, s.namespace, s.lease.ID, s.views)
	s.views = nil
	if s.runRecord != "" {
		if rerr := os.Remove(s.runRecord); rerr != nil && !os.IsNotExist(rerr) {
			err = errors.Join(err, fmt.Errorf("remove run record: %w", rerr))
		} else {
			s.Record("run record removed", s.runRecord)
			s.runRecord = ""
		}
	}
	for _, r := range removed {
		if r == "lease "+s.lease.ID {
			s.Record("lease released", s.lease.ID)
		} else {
			s.Record("removed", r)
		}
	}
	return errors.Join(resumeErr, err)
}

// Release removes view snapshots and then a lease of namespace ns, and returns
// what it removed; those already gone (or never created) are skipped. It is
// how Close, umount and cleanup undo a session.
func (c *Client) Release(ctx context.Context, ns, lease string, views []View) ([]string, error) {
	ctx = namespaces.WithNamespace(ctx, ns)
	var removed []string
	var errs []error
	for i := len(views) - 1; i >= 0; i-- {
		v := views[i]
		gone, err := c.removeView(ctx, v)
		if err != nil {
			errs = append(errs, err)
		} else if gone {
			removed = append(removed, "view "+v.Snapshotter+"/"+v.Key)
		}
	}
	if lease != "" {
		err := c.c.LeasesService().Delete(ctx, leases.Lease{ID: lease})
		switch {
		case err == nil:
			removed = append(removed, "lease "+lease)
		case !errdefs.IsNotFound(err):
			errs = append(errs, fmt.Errorf("delete lease %s: %w", lease, err))
		}
	}
	return removed, errors.Join(errs...)
}

// removeView removes a view snapshot and reports whether it existed. A view of
// a snapshotter containerd does not have cannot exist (a record written by an
// older version may name one).
func (c *Client) removeView(ctx context.Context, v View) (bool, error) {
	sn := c.c.SnapshotService(v.Snapshotter)
	if _, err := sn.Stat(ctx, v.Key); err != nil {
		if errdefs.IsNotFound(err) || !c.hasSnapshotter(ctx, v.Snapshotter) {
			return false, nil
		}
		return false, fmt.Errorf("view %s/%s: %w", v.Snapshotter, v.Key, err)
	}
	err := sn.Remove(ctx, v.Key)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("remove view %s/%s: %w", v.Snapshotter, v.Key, err)
	}
	return true, nil
}

// hasSnapshotter tells whether containerd has the snapshotter plugin name
// loaded; when it cannot tell, it says yes.
func (c *Client) hasSnapshotter(ctx context.Context, name string) bool {
	if c.disk != nil {
		sn, err := c.disk.snapshotter(name)
		return err == nil && sn.exists()
	}
	resp, err := c.c.IntrospectionService().Plugins(ctx, "type=="+snapshotterPlugin+",id=="+name)
	if err != nil {
		return true
	}
	for _, p := range resp.Plugins {
		if p.InitErr == nil {
			return true
		}
	}
	return false
}

// snapshotterPlugin is the plugin type of containerd's snapshotters.
const snapshotterPlugin = "io.containerd.snapshotter.v1"
