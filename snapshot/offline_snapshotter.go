package snapshot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/core/snapshots/storage"
	"github.com/containerd/errdefs"
)

// offlineSnapshotters are the snapshotters whose directories ctrforensics can
// read without their daemon.
var offlineSnapshotters = []string{"overlayfs", "native"}

// UnsupportedSnapshotterError says a snapshotter's directories cannot be read
// without its daemon.
type UnsupportedSnapshotterError struct{ Snapshotter string }

func (e *UnsupportedSnapshotterError) Error() string {
	return fmt.Sprintf("snapshotter %s is not supported offline (only %s)", e.Snapshotter, strings.Join(offlineSnapshotters, " and "))
}

// diskSnapshotter is a snapshotter read from its directory under a root: its
// metadata.db (opened read-only, or a private copy of it) gives each
// snapshot's ID and parents, and Mounts gives the mounts the snapshotter
// would, computed from them. It never writes: every method that would fails.
type diskSnapshotter struct {
	name string
	dir  string // .../io.containerd.snapshotter.v1.NAME
	// ms is nil when the root has no such snapshotter: it holds no snapshot.
	ms *storage.MetaStore
}

var _ snapshots.Snapshotter = (*diskSnapshotter)(nil)

func (s *diskSnapshotter) read(ctx context.Context, fn func(context.Context) error) error {
	if s.ms == nil {
		return fmt.Errorf("snapshotter %s has no metadata under the root: %w", s.name, errdefs.ErrNotFound)
	}
	ctx, t, err := s.ms.TransactionContext(ctx, false)
	if err != nil {
		return fmt.Errorf("snapshotter %s: %w", s.name, err)
	}
	defer t.Rollback()
	return fn(ctx)
}

// Stat returns a snapshot's info.
func (s *diskSnapshotter) Stat(ctx context.Context, key string) (info snapshots.Info, err error) {
	err = s.read(ctx, func(ctx context.Context) error {
		_, info, _, err = storage.GetInfo(ctx, key)
		return err
	})
	return info, err
}

// Usage returns a snapshot's recorded usage.
func (s *diskSnapshotter) Usage(ctx context.Context, key string) (u snapshots.Usage, err error) {
	err = s.read(ctx, func(ctx context.Context) error {
		_, _, u, err = storage.GetInfo(ctx, key)
		return err
	})
	return u, err
}

// Mounts returns the mounts the snapshotter gives for an active or view
// snapshot: writable for an active one, as containerd gives them (never mount
// them as they are).
func (s *diskSnapshotter) Mounts(ctx context.Context, key string) (m []mount.Mount, err error) {
	err = s.read(ctx, func(ctx context.Context) error {
		sn, err := storage.GetSnapshot(ctx, key)
		if err != nil {
			return err
		}
		m = s.mounts(sn.Kind, sn.ID, sn.ParentIDs)
		return nil
	})
	return m, err
}

// Walk calls fn for every snapshot.
func (s *diskSnapshotter) Walk(ctx context.Context, fn snapshots.WalkFunc, filters ...string) error {
	if s.ms == nil {
		return nil
	}
	return s.read(ctx, func(ctx context.Context) error { return storage.WalkInfo(ctx, fn, filters...) })
}

// viewMounts returns read-only mounts of the committed snapshot key, as a
// view of it would have.
func (s *diskSnapshotter) viewMounts(ctx context.Context, key string) (m []mount.Mount, err error) {
	err = s.read(ctx, func(ctx context.Context) error {
		var ids []string // key's ID first, then its parents'
		for k := key; k != ""; {
			id, info, _, err := storage.GetInfo(ctx, k)
			if err != nil {
				return fmt.Errorf("snapshot %s: %w", k, err)
			}
			ids, k = append(ids, id), info.Parent
		}
		m = s.mounts(snapshots.KindView, "", ids)
		return nil
	})
	return m, err
}

// mounts are containerd's mounts for a snapshot of kind with its own ID (""
// for a view, which has no directory of its own) and its parents' IDs,
// nearest first.
func (s *diskSnapshotter) mounts(kind snapshots.Kind, id string, parents []string) []mount.Mount {
	ro := "rw"
	if kind == snapshots.KindView {
		ro = "ro"
	}
	if s.name == "native" {
		dir := s.snapshotDir(id)
		if id == "" {
			dir = s.snapshotDir(parents[0])
		}
		return []mount.Mount{{Type: "bind", Source: dir, Options: []string{ro, "rbind"}}}
	}
	switch {
	case len(parents) == 0:
		return []mount.Mount{{Type: "bind", Source: s.upperDir(id), Options: []string{ro, "rbind"}}}
	case kind != snapshots.KindActive && len(parents) == 1:
		return []mount.Mount{{Type: "bind", Source: s.upperDir(parents[0]), Options: []string{ro, "rbind"}}}
	}
	options := []string{"index=off"}
	if kind == snapshots.KindActive {
		options = append(options, "workdir="+filepath.Join(s.snapshotDir(id), "work"), "upperdir="+s.upperDir(id))
	}
	lowers := make([]string, len(parents))
	for i, p := range parents {
		lowers[i] = s.upperDir(p)
	}
	options = append(options, "lowerdir="+strings.Join(lowers, ":"))
	return []mount.Mount{{Type: "overlay", Source: "overlay", Options: options}}
}

func (s *diskSnapshotter) snapshotDir(id string) string {
	return filepath.Join(s.dir, "snapshots", id)
}

func (s *diskSnapshotter) upperDir(id string) string {
	return filepath.Join(s.snapshotDir(id), "fs")
}

// Update is refused: a disk root is read-only.
func (s *diskSnapshotter) Update(context.Context, snapshots.Info, ...string) (snapshots.Info, error) {
	return snapshots.Info{}, errReadOnly
}

// Prepare is refused: a disk root is read-only.
func (s *diskSnapshotter) Prepare(context.Context, string, string, ...snapshots.Opt) ([]mount.Mount, error) {
	return nil, errReadOnly
}

// View is refused: a disk root is read-only (viewMounts gives a view's mounts).
func (s *diskSnapshotter) View(context.Context, string, string, ...snapshots.Opt) ([]mount.Mount, error) {
	return nil, errReadOnly
}

// Commit is refused: a disk root is read-only.
func (s *diskSnapshotter) Commit(context.Context, string, string, ...snapshots.Opt) error {
	return errReadOnly
}

// Remove is refused: a disk root is read-only.
func (s *diskSnapshotter) Remove(context.Context, string) error { return errReadOnly }

// Close closes the snapshotter's database.
func (s *diskSnapshotter) Close() error {
	if s.ms == nil {
		return nil
	}
	return s.ms.Close()
}

// exists tells whether the snapshotter has a directory under the root.
func (s *diskSnapshotter) exists() bool {
	_, err := os.Stat(filepath.Join(s.dir, "metadata.db"))
	return err == nil
}
