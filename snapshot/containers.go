package snapshot

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The CRI labels that name a Kubernetes container's pod.
const (
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodName       = "io.kubernetes.pod.name"
	labelContainerName = "io.kubernetes.container.name"
)

// Task states reported for a container; the others are containerd's own
// (running, paused, pausing, created, stopped).
const (
	StatusNoTask  = "no task"
	StatusUnknown = "unknown"
)

// NotFoundError says a container or image does not exist in a namespace.
type NotFoundError struct {
	Kind, Name, Namespace string
}

func (e *NotFoundError) Error() string {
	list := "ls -A"
	if e.Kind == "image" {
		list = "image ls"
	}
	return fmt.Sprintf("%s %q not found in namespace %q (list them with `ctrforensics %s`, or pick the namespace with -n)",
		e.Kind, e.Name, e.Namespace, list)
}

// Container is what containerd records about a container, with its task state.
type Container struct {
	Namespace string
	Info      containers.Container
	// Spec is the container's OCI runtime spec; nil when it cannot be decoded.
	Spec *specs.Spec
	// Status is the task state, or StatusNoTask.
	Status string
	// Pid is the task's init process on the host, 0 without a running task.
	Pid uint32
}

// ReadOnlyRootfs tells whether the OCI spec mounts the root filesystem read-only.
func (c *Container) ReadOnlyRootfs() bool {
	return c.Spec != nil && c.Spec.Root != nil && c.Spec.Root.Readonly
}

// Pod returns the Kubernetes pod namespace, pod and container name from the CRI
// labels; empty strings for a container not created by a CRI plugin.
func (c *Container) Pod() (namespace, pod, name string) {
	l := c.Info.Labels
	return l[labelPodNamespace], l[labelPodName], l[labelContainerName]
}

// Mountpoints lists the destinations of the mounts in the OCI spec: the paths
// the runtime creates in the root filesystem when the image lacks them.
func (c *Container) Mountpoints() []string {
	if c.Spec == nil {
		return nil
	}
	out := make([]string, 0, len(c.Spec.Mounts))
	for _, m := range c.Spec.Mounts {
		out = append(out, m.Destination)
	}
	return out
}

func (c *Client) nsctx(ctx context.Context, ns string) context.Context {
	if ns == "" {
		ns = c.namespace
	}
	return namespaces.WithNamespace(ctx, ns)
}

// Namespaces lists the daemon's namespaces, sorted.
func (c *Client) Namespaces(ctx context.Context) ([]string, error) {
	nss, err := c.c.NamespaceService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	sort.Strings(nss)
	return nss, nil
}

// Containers lists the containers of the client's namespace, or of every
// namespace when all is true, sorted by namespace and ID.
func (c *Client) Containers(ctx context.Context, all bool) ([]*Container, error) {
	nss := []string{c.namespace}
	if all {
		var err error
		if nss, err = c.Namespaces(ctx); err != nil {
			return nil, err
		}
	}
	var out []*Container
	for _, ns := range nss {
		infos, err := c.c.ContainerService().List(c.nsctx(ctx, ns))
		if err != nil {
			return nil, fmt.Errorf("list containers in namespace %s: %w", ns, err)
		}
		sort.Slice(infos, func(i, j int) bool { return infos[i].ID < infos[j].ID })
		for _, info := range infos {
			out = append(out, c.describe(ctx, ns, info))
		}
	}
	return out, nil
}

// LoadContainer returns the container id of the client's namespace.
func (c *Client) LoadContainer(ctx context.Context, id string) (*Container, error) {
	info, err := c.c.ContainerService().Get(c.nsctx(ctx, ""), id)
	if errdefs.IsNotFound(err) {
		return nil, &NotFoundError{Kind: "container", Name: id, Namespace: c.namespace}
	}
	if err != nil {
		return nil, fmt.Errorf("load container %s: %w", id, err)
	}
	return c.describe(ctx, c.namespace, info), nil
}

// describe adds the spec and the task state to a container record. Neither is
// essential: a spec that does not decode or a task service error leave them
// empty rather than hiding the container.
func (c *Client) describe(ctx context.Context, ns string, info containers.Container) *Container {
	ctr := &Container{Namespace: ns, Info: info, Status: StatusUnknown}
	if info.Spec != nil {
		var spec specs.Spec
		if err := typeurl.UnmarshalTo(info.Spec, &spec); err == nil {
			ctr.Spec = &spec
		}
	}
	loaded, err := c.c.LoadContainer(c.nsctx(ctx, ns), info.ID)
	if err != nil {
		return ctr
	}
	task, err := loaded.Task(c.nsctx(ctx, ns), nil)
	switch {
	case errdefs.IsNotFound(err):
		ctr.Status = StatusNoTask
	case err == nil:
		if st, err := task.Status(c.nsctx(ctx, ns)); err == nil {
			ctr.Status = string(st.Status)
			if st.Status != "stopped" {
				ctr.Pid = task.Pid()
			}
		}
	}
	return ctr
}

// Created is when the container was created, in UTC.
func (c *Container) Created() time.Time { return c.Info.CreatedAt.UTC() }

// ActiveSnapshot returns the container's snapshot: its info and the mounts the
// snapshotter gives for it (writable, as the runtime uses them; never mount them
// as they are).
func (c *Client) ActiveSnapshot(ctx context.Context, ctr *Container) (snapshots.Info, []mount.Mount, error) {
	if ctr.Info.SnapshotKey == "" || ctr.Info.Snapshotter == "" {
		return snapshots.Info{}, nil, fmt.Errorf("container %s has no root filesystem snapshot (created without one?)", ctr.Info.ID)
	}
	ctx = c.nsctx(ctx, ctr.Namespace)
	sn := c.c.SnapshotService(ctr.Info.Snapshotter)
	info, err := sn.Stat(ctx, ctr.Info.SnapshotKey)
	if errdefs.IsNotFound(err) {
		return info, nil, fmt.Errorf("snapshot %s of container %s is gone from snapshotter %s", ctr.Info.SnapshotKey, ctr.Info.ID, ctr.Info.Snapshotter)
	}
	if err != nil {
		return info, nil, fmt.Errorf("stat snapshot %s: %w", ctr.Info.SnapshotKey, err)
	}
	if info.Kind != snapshots.KindActive {
		return info, nil, fmt.Errorf("snapshot %s of container %s is %s, not active", ctr.Info.SnapshotKey, ctr.Info.ID, info.Kind)
	}
	mounts, err := sn.Mounts(ctx, ctr.Info.SnapshotKey)
	if err != nil {
		return info, nil, fmt.Errorf("mounts of snapshot %s: %w", ctr.Info.SnapshotKey, err)
	}
	if len(mounts) == 0 {
		return info, nil, errors.New("snapshotter returned no mount for " + ctr.Info.SnapshotKey)
	}
	return info, mounts, nil
}
