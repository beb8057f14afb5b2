package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/image-spec/identity"

	"github.com/ctrforensics/ctrforensics/mountutil"
)

// DefaultStateDir is where `mount` records what `umount` must undo, and
// where a run on a disk root records what `cleanup` must remove if it is
// killed (see SetStateDir).
const DefaultStateDir = "/run/ctrforensics/mounts"

// MountRecord is what a browsing mount holds on the host. It is written before
// anything is created, so that `umount` can undo a `mount` that was killed.
type MountRecord struct {
	Mountpoint string    `json:"mountpoint"`
	Source     string    `json:"source"`
	Address    string    `json:"address"`
	Namespace  string    `json:"namespace"`
	Lease      string    `json:"lease"`
	Views      []View    `json:"views,omitempty"`
	Created    time.Time `json:"created"`
	// Hidden counts the special files covered (MountTarget.NoSpecial).
	Hidden int `json:"hidden,omitempty"`
	// Root is the disk root of an offline mount, which holds no lease or view.
	Root string `json:"root,omitempty"`
}

// MountTarget says what to mount: a container (optionally its upper layer
// only) or an image already unpacked for a snapshotter.
type MountTarget struct {
	Container   *Container
	UpperOnly   bool
	Image       string
	Snapshotter string
	// NoSpecial hides FIFOs, sockets and devices in the view behind empty
	// read-only files, so that reading everything never blocks.
	NoSpecial bool
}

func (t MountTarget) describe() string {
	switch {
	case t.Container != nil && t.UpperOnly:
		return "container " + t.Container.Info.ID + " (upper layer only)"
	case t.Container != nil:
		return "container " + t.Container.Info.ID
	}
	return "image " + t.Image
}

// Mount mounts the target read-only at dir and leaves it mounted, holding a
// lease (and a view, for an image) until Unmount. dir must be an empty
// directory or not exist yet, and not be inside the container mounted. A failed Mount leaves nothing: no record, lease,
// view or mount, and none of the directories it created.
func (c *Client) Mount(ctx context.Context, t MountTarget, dir, stateDir string) (rec *MountRecord, err error) {
	if err := c.checkTarget(ctx, t); err != nil {
		return nil, err
	}
	if t.Container != nil {
		if err := c.refuseOutputInside(ctx, t.Container, "mount point", dir); err != nil {
			return nil, err
		}
	}
	dir, created, err := prepareMountpoint(dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			removeCreated(created)
		}
	}()
	lease := "ctrforensics-" + randomID()
	rec = &MountRecord{Mountpoint: dir, Source: t.describe(), Address: c.address, Namespace: c.namespace,
		Lease: lease, Created: time.Now().UTC()}
	switch {
	case c.disk != nil:
		rec.Root, rec.Lease = c.disk.path, "" // no daemon: nothing but the mount to undo
	case t.Container == nil:
		rec.Views = []View{{Snapshotter: t.Snapshotter, Key: lease + "-view-0"}}
	}
	if err := writeRecord(stateDir, rec); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_, uerr := c.undoMount(context.WithoutCancel(ctx), rec, stateDir)
			err = errors.Join(err, uerr)
		}
	}()
	s, err := c.beginWithID(ctx, lease, dir)
	if err != nil {
		return rec, err
	}
	mounts, err := s.mountsFor(ctx, t)
	if err != nil {
		return rec, err
	}
	if err := mountutil.Mount(mounts, dir); err != nil {
		return rec, err
	}
	if t.NoSpecial {
		if rec.Hidden, err = hideSpecial(dir, stateDir); err != nil {
			return rec, err
		}
	}
	return rec, nil
}

// hideSpecial covers the special files of the view at dir with a read-only
// empty file kept next to its record.
func hideSpecial(dir, stateDir string) (int, error) {
	cover := coverPath(stateDir, dir)
	if err := os.WriteFile(cover, nil, 0o444); err != nil {
		return 0, fmt.Errorf("create cover for special files: %w", err)
	}
	n, err := mountutil.HideSpecial(dir, cover)
	if err != nil {
		return n, fmt.Errorf("hide special files: %w", err)
	}
	return n, nil
}

// checkTarget refuses, before anything is created, an image that is not
// unpacked for the snapshotter (or a snapshotter containerd does not have).
func (c *Client) checkTarget(ctx context.Context, t MountTarget) error {
	if t.Container != nil {
		return nil
	}
	chain, err := c.ImageChainID(ctx, t.Image)
	if err != nil {
		return err
	}
	ctx = c.nsctx(ctx, "")
	if !c.hasSnapshotter(ctx, t.Snapshotter) {
		return fmt.Errorf("containerd has no snapshotter %q", t.Snapshotter)
	}
	if _, err := c.c.SnapshotService(t.Snapshotter).Stat(ctx, chain); err != nil {
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("image %s is not unpacked for snapshotter %s", t.Image, t.Snapshotter)
		}
		return fmt.Errorf("image %s in snapshotter %s: %w", t.Image, t.Snapshotter, err)
	}
	return nil
}

func (c *Client) beginWithID(ctx context.Context, lease, dir string) (*Session, error) {
	// Not cancellable, as in Begin; the caller's record names the lease, so an
	// interrupted mount removes it.
	if c.disk != nil {
		return &Session{c: c, namespace: c.namespace}, nil // no lease: no daemon
	}
	ctx = namespaces.WithNamespace(context.WithoutCancel(ctx), c.namespace)
	labels := map[string]string{LabelPurpose: "mount", LabelMountpoint: dir}
	l, err := c.c.LeasesService().Create(ctx, leases.WithID(lease), leases.WithLabels(labels))
	if err != nil {
		return nil, fmt.Errorf("create lease: %w", err)
	}
	return &Session{c: c, namespace: c.namespace, lease: l}, nil
}

func (s *Session) mountsFor(ctx context.Context, t MountTarget) ([]mount.Mount, error) {
	if t.Container == nil {
		chain, err := s.c.ImageChainID(ctx, t.Image)
		if err != nil {
			return nil, err
		}
		return s.View(ctx, t.Snapshotter, chain)
	}
	r, err := s.Rootfs(ctx, t.Container)
	if err != nil {
		return nil, err
	}
	if t.UpperOnly {
		return r.UpperOnlyMounts()
	}
	return r.ReadOnlyMounts()
}

// ImageChainID returns the ChainID of an image's layers: the name of the
// committed snapshot that holds its unpacked filesystem.
func (c *Client) ImageChainID(ctx context.Context, ref string) (string, error) {
	ctx = c.nsctx(ctx, "")
	img, err := c.c.GetImage(ctx, ref)
	if errdefs.IsNotFound(err) {
		return "", &NotFoundError{Kind: "image", Name: ref, Namespace: c.namespace}
	}
	if err != nil {
		return "", fmt.Errorf("load image %s: %w", ref, err)
	}
	diffIDs, err := img.RootFS(ctx)
	if err != nil {
		return "", fmt.Errorf("read layers of %s: %w", ref, err)
	}
	return identity.ChainID(diffIDs).String(), nil
}

// Unmount undoes a browsing mount at dir: unmounts it, removes its view and
// lease, and forgets it. It returns what it removed.
func (c *Client) Unmount(ctx context.Context, dir, stateDir string) ([]string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	rec, err := readRecord(stateDir, abs)
	if err != nil {
		return nil, err
	}
	return c.undoMount(ctx, rec, stateDir)
}

// undoMount removes what a mount record names and then the record, and
// returns what it removed: only what existed.
func (c *Client) undoMount(ctx context.Context, rec *MountRecord, stateDir string) ([]string, error) {
	var removed []string
	unmounted, err := mountutil.UnmountUnder(rec.Mountpoint)
	if covers := len(unmounted) - 1; covers > 0 {
		removed = append(removed, fmt.Sprintf("%d covers of special files", covers))
	}
	if len(unmounted) > 0 {
		removed = append(removed, "mount "+rec.Mountpoint)
	}
	if err != nil {
		return removed, err
	}
	if err := os.Remove(coverPath(stateDir, rec.Mountpoint)); err != nil && !os.IsNotExist(err) {
		return removed, fmt.Errorf("remove cover for special files: %w", err)
	}
	released, err := c.Release(ctx, rec.Namespace, rec.Lease, rec.Views)
	removed = append(removed, released...)
	if err != nil {
		return removed, err
	}
	if err := os.Remove(recordPath(stateDir, rec.Mountpoint)); err != nil && !os.IsNotExist(err) {
		return removed, fmt.Errorf("remove mount record: %w", err)
	}
	return append(removed, "mount record"), nil
}

// prepareMountpoint returns dir as an absolute path, creating it if needed, and
// refuses a directory that is not empty or already a mount point. It returns
// the directories it created, deepest first.
func prepareMountpoint(dir string) (string, []string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, err
	}
	created, err := mkdirAll(abs)
	if err != nil {
		return "", nil, fmt.Errorf("create mount point: %w", err)
	}
	fail := func(err error) (string, []string, error) {
		removeCreated(created)
		return "", nil, err
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return fail(fmt.Errorf("mount point %s: %w", abs, err))
	}
	if len(entries) > 0 {
		return fail(fmt.Errorf("mount point %s is not empty: pick an empty directory", abs))
	}
	if mounted, _ := mountutil.IsMountpoint(abs); mounted {
		return fail(fmt.Errorf("%s is already a mount point: run `ctrforensics umount %s` first", abs, abs))
	}
	return abs, created, nil
}

// mkdirAll is os.MkdirAll returning the directories it created, deepest first.
func mkdirAll(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil || d == filepath.Dir(d) {
			break
		}
		missing = append(missing, d)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		removeCreated(missing)
		return nil, err
	}
	return missing, nil
}

// removeCreated removes directories mkdirAll created, deepest first, as long
// as they are empty.
func removeCreated(dirs []string) {
	for _, d := range dirs {
		if os.Remove(d) != nil {
			return
		}
	}
}

func recordPath(stateDir, mountpoint string) string {
	sum := sha256.Sum256([]byte(mountpoint))
	return filepath.Join(stateDir, hex.EncodeToString(sum[:8])+".json")
}

// coverPath is the empty file that hides the special files of the mount at
// mountpoint.
func coverPath(stateDir, mountpoint string) string {
	return strings.TrimSuffix(recordPath(stateDir, mountpoint), ".json") + ".empty"
}

// recordTempMarker and the writer's pid end the name of a record being
// written, so that cleanup can remove what a killed mount left.
const recordTempMarker = ".tmp-"

func writeRecord(stateDir string, rec *MountRecord) error {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	p := recordPath(stateDir, rec.Mountpoint)
	tmp := p + recordTempMarker + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write mount record: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("write mount record: %w", err)
	}
	return nil
}

// NotMountedError says no ctrforensics mount is recorded for a directory.
type NotMountedError struct{ Dir string }

func (e *NotMountedError) Error() string {
	return fmt.Sprintf("%s is not a ctrforensics mount (nothing recorded for it; `ctrforensics mount` creates one)", e.Dir)
}

func readRecord(stateDir, mountpoint string) (*MountRecord, error) {
	b, err := os.ReadFile(recordPath(stateDir, mountpoint))
	if os.IsNotExist(err) {
		return nil, &NotMountedError{Dir: mountpoint}
	}
	if err != nil {
		return nil, fmt.Errorf("read mount record: %w", err)
	}
	var rec MountRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("mount record of %s is damaged: %w", mountpoint, err)
	}
	return &rec, nil
}

// ReadMountRecord returns what `mount` recorded for dir.
func ReadMountRecord(stateDir, dir string) (*MountRecord, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	return readRecord(stateDir, abs)
}
