package snapshot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/core/snapshots/storage"
	"github.com/opencontainers/image-spec/identity"
	bolt "go.etcd.io/bbolt"
)

// Ownership says which snapshot a path on the host belongs to and who uses
// that snapshot: the container whose writable layer it is, or, for a
// committed image layer, every image that has the layer and every container
// built on it.
type Ownership struct {
	// Path is the path asked about; Within is where it is inside the
	// snapshot's filesystem ("" for a path outside it, such as overlay's
	// work directory).
	Path, Within string
	Snapshotter  string
	// SnapshotID is the snapshotter's directory name; Namespace and Snapshot
	// name the snapshot in containerd; Kind is active, view or committed.
	SnapshotID, Namespace, Snapshot, Kind string
	// Images have the snapshot as one of their layers (Layer counts from 1).
	Images []ImageLayer
	// Containers use the snapshot: as their own writable layer, or below it.
	Containers []*OwningContainer
}

// ImageLayer is an image that has a snapshot as one of its layers.
type ImageLayer struct {
	Name          string
	Layer, Layers int
}

// OwningContainer is a container that uses a snapshot.
type OwningContainer struct {
	*Container
	// Own says the snapshot is the container's writable layer; otherwise it
	// is one of the image layers below it.
	Own bool
}

// Shared tells whether the snapshot is used by more than one container, or is
// an image layer: a file in it belongs to each of them.
func (o *Ownership) Shared() bool {
	return len(o.Containers) > 1 || o.Kind == "committed"
}

// NotSnapshotPathError says a path is not inside a snapshot directory of a
// containerd snapshotter.
type NotSnapshotPathError struct{ Path string }

func (e *NotSnapshotPathError) Error() string {
	return fmt.Sprintf("%s is not inside a snapshot directory (.../%sNAME/snapshots/ID/...)", e.Path, snapshotterDirPrefix)
}

// Owner finds the snapshot that holds path, a path inside a snapshot
// directory such as .../io.containerd.snapshotter.v1.overlayfs/snapshots/12/fs/etc/passwd,
// and the containers and images that use it. The snapshotter's metadata.db
// is read as on a disk root: read-only, or a private copy when the live
// daemon holds it.
func (c *Client) Owner(ctx context.Context, path string) (*Ownership, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	o, snDir, err := parseSnapshotPath(abs)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(offlineSnapshotters, o.Snapshotter) {
		return nil, &UnsupportedSnapshotterError{Snapshotter: o.Snapshotter}
	}
	bkey, kind, err := snapshotByID(ctx, snDir, o.SnapshotID)
	if err != nil {
		return nil, err
	}
	o.Kind = strings.ToLower(kind.String())
	// The snapshotter names it "NAMESPACE/N/NAME" (core/metadata's createKey).
	parts := strings.SplitN(bkey, "/", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("snapshot %s of %s is %q: not a snapshot containerd created", o.SnapshotID, snDir, bkey)
	}
	o.Namespace, o.Snapshot = parts[0], parts[2]
	if err := c.owningImages(ctx, o); err != nil {
		return nil, err
	}
	return o, c.owningContainers(ctx, o)
}

// parseSnapshotPath splits a path inside a snapshot directory.
func parseSnapshotPath(abs string) (*Ownership, string, error) {
	segs := strings.Split(abs, "/")
	for i, s := range segs {
		name, ok := strings.CutPrefix(s, snapshotterDirPrefix)
		if !ok || i+2 >= len(segs) || segs[i+1] != "snapshots" || segs[i+2] == "" {
			continue
		}
		o := &Ownership{Path: abs, Snapshotter: name, SnapshotID: segs[i+2]}
		rest := segs[i+3:]
		switch {
		case name == "native":
			o.Within = "/" + strings.Join(rest, "/")
		case len(rest) > 0 && rest[0] == "fs":
			o.Within = "/" + strings.Join(rest[1:], "/")
		}
		return o, strings.Join(segs[:i+1], "/"), nil
	}
	return nil, "", &NotSnapshotPathError{Path: abs}
}

// snapshotByID reads the snapshotter's metadata.db under snDir and returns
// the name and kind of the snapshot whose directory is id.
func snapshotByID(ctx context.Context, snDir, id string) (string, snapshots.Kind, error) {
	copyDir, err := newCopyDir()
	if err != nil {
		return "", 0, err
	}
	defer os.RemoveAll(copyDir)
	src, _, err := dbSource(filepath.Join(snDir, "metadata.db"), copyDir, !onReadOnlyMount(snDir))
	if err != nil {
		return "", 0, err
	}
	ms, err := storage.NewMetaStore(src, func(o *bolt.Options) error { boltReadOnly(o); return nil })
	if err != nil {
		return "", 0, err
	}
	defer ms.Close()
	ctx, t, err := ms.TransactionContext(ctx, false)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", src, err)
	}
	defer t.Rollback()
	ids, err := storage.IDMap(ctx)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", src, err)
	}
	key, ok := ids[id]
	if !ok {
		return "", 0, fmt.Errorf("snapshotter %s has no snapshot %s (removed?)", snDir, id)
	}
	_, info, _, err := storage.GetInfo(ctx, key)
	if err != nil {
		return "", 0, fmt.Errorf("snapshot %s: %w", key, err)
	}
	return key, info.Kind, nil
}

// owningImages finds the images of the namespace that have the snapshot as
// a layer: its name is the ChainID of their layers up to it.
func (c *Client) owningImages(ctx context.Context, o *Ownership) error {
	ctx = c.nsctx(ctx, o.Namespace)
	imgs, err := c.c.ImageService().List(ctx)
	if err != nil {
		return fmt.Errorf("list images of namespace %s: %w", o.Namespace, err)
	}
	for _, img := range imgs {
		diffIDs, err := client.NewImage(c.c, img).RootFS(ctx)
		if err != nil {
			continue // blobs gone: it cannot be unpacked from either
		}
		for i, chain := range identity.ChainIDs(diffIDs) {
			if chain.String() == o.Snapshot {
				o.Images = append(o.Images, ImageLayer{Name: img.Name, Layer: i + 1, Layers: len(diffIDs)})
			}
		}
	}
	slices.SortFunc(o.Images, func(a, b ImageLayer) int { return strings.Compare(a.Name, b.Name) })
	return nil
}

// owningContainers finds the containers of the namespace whose snapshot is
// the one, or has it among its parents.
func (c *Client) owningContainers(ctx context.Context, o *Ownership) error {
	ctrs, err := c.Containers(ctx, true)
	if err != nil {
		return err
	}
	sn := c.c.SnapshotService(o.Snapshotter)
	nsctx := c.nsctx(ctx, o.Namespace)
	for _, ctr := range ctrs {
		if ctr.Namespace != o.Namespace || ctr.Info.Snapshotter != o.Snapshotter || ctr.Info.SnapshotKey == "" {
			continue
		}
		if ctr.Info.SnapshotKey == o.Snapshot {
			o.Containers = append(o.Containers, &OwningContainer{Container: ctr, Own: true})
			continue
		}
		if o.Kind != "committed" {
			continue
		}
		for key := ctr.Info.SnapshotKey; key != ""; {
			info, err := sn.Stat(nsctx, key)
			if err != nil {
				break // gone: it holds nothing
			}
			if info.Parent == o.Snapshot {
				o.Containers = append(o.Containers, &OwningContainer{Container: ctr})
				break
			}
			key = info.Parent
		}
	}
	return nil
}
