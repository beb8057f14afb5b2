package snapshot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/sandbox"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc"

	"github.com/ctrforensics/ctrforensics/forensic"
)

// Kubelet's labels that name a Kubernetes container's pod.
const (
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodName       = "io.kubernetes.pod.name"
	labelContainerName = "io.kubernetes.container.name"
)

// TaskStatus is the state of a container's task: one of containerd's
// (running, paused, pausing, created, stopped), or TaskNone or TaskUnknown.
type TaskStatus string

// Task states. The first five are containerd's own words.
const (
	TaskRunning TaskStatus = "running"
	TaskPaused  TaskStatus = "paused"
	TaskPausing TaskStatus = "pausing"
	TaskCreated TaskStatus = "created"
	TaskStopped TaskStatus = "stopped"
	// TaskNone is a container without a task: created, never started, or
	// whose task was deleted.
	TaskNone TaskStatus = "no task"
	// TaskUnknown is a task whose state the daemon did not report.
	TaskUnknown TaskStatus = "unknown"
)

// NotFoundError says a container or image does not exist in a namespace that
// does. It satisfies errdefs.IsNotFound.
type NotFoundError struct {
	Kind, Name, Namespace string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s %q not found in namespace %q", e.Kind, e.Name, e.Namespace)
}

// Is makes errors.Is(err, errdefs.ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == errdefs.ErrNotFound }

// NamespaceNotFoundError says the namespace does not exist in the daemon;
// Existing lists those that do. It satisfies errdefs.IsNotFound.
type NamespaceNotFoundError struct {
	Namespace string
	Existing  []string
}

func (e *NamespaceNotFoundError) Error() string {
	if len(e.Existing) == 0 {
		return fmt.Sprintf("namespace %q does not exist: the daemon has no namespace", e.Namespace)
	}
	return fmt.Sprintf("namespace %q does not exist (the daemon has: %s)", e.Namespace, strings.Join(e.Existing, ", "))
}

// Is makes errors.Is(err, errdefs.ErrNotFound) true.
func (e *NamespaceNotFoundError) Is(target error) bool { return target == errdefs.ErrNotFound }

// AmbiguousError says an ID prefix matches several containers.
type AmbiguousError struct {
	Prefix, Namespace string
	// Candidates are the matching IDs, sorted.
	Candidates []string
}

// maxCandidates bounds the IDs an AmbiguousError names.
const maxCandidates = 8

func (e *AmbiguousError) Error() string {
	names := e.Candidates
	more := ""
	if len(names) > maxCandidates {
		names, more = names[:maxCandidates], fmt.Sprintf(" and %d more", len(e.Candidates)-maxCandidates)
	}
	return fmt.Sprintf("container ID prefix %q is ambiguous in namespace %q: it matches %s%s",
		e.Prefix, e.Namespace, strings.Join(names, ", "), more)
}

// Is makes errors.Is(err, errdefs.ErrInvalidArgument) true.
func (e *AmbiguousError) Is(target error) bool { return target == errdefs.ErrInvalidArgument }

// Container is what containerd records about a container, with its task state.
type Container struct {
	Namespace string
	Info      containers.Container
	// Spec is the container's OCI runtime spec; nil when it cannot be decoded.
	Spec *specs.Spec
	// Status is the task state.
	Status TaskStatus
	// Pid is the task's init process on the host, 0 without a running task.
	Pid uint32
	// Pod is the Kubernetes pod of a container created through the CRI
	// (see PodOf); zero otherwise.
	Pod forensic.Pod
}

// ReadOnlyRootfs tells whether the OCI spec mounts the root filesystem read-only.
func (c *Container) ReadOnlyRootfs() bool {
	return c.Spec != nil && c.Spec.Root != nil && c.Spec.Root.Readonly
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
	if c.disk != nil {
		return c.disk.namespaces(ctx)
	}
	nss, err := c.c.NamespaceService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	sort.Strings(nss)
	return nss, nil
}

// Containers lists the containers of the client's namespace, or of every
// namespace when all is true, sorted by namespace and ID. A namespace that
// does not exist is a *NamespaceNotFoundError.
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
		described := make([]*Container, 0, len(infos))
		for _, info := range infos {
			described = append(described, c.describe(ctx, ns, info))
		}
		attachSandboxes(described)
		c.attachStoredSandboxes(ctx, ns, described)
		out = append(out, described...)
	}
	if len(out) == 0 && !all {
		return nil, c.CheckNamespace(ctx)
	}
	return out, nil
}

// LoadContainer returns the container of the client's namespace whose ID is
// id, or else whose ID starts with id when only one does, as docker and
// nerdctl accept them. An ambiguous prefix is an *AmbiguousError; no match a
// *NotFoundError, or a *NamespaceNotFoundError when the namespace does not
// exist.
func (c *Client) LoadContainer(ctx context.Context, id string) (*Container, error) {
	cs := c.c.ContainerService()
	info, err := cs.Get(c.nsctx(ctx, ""), id)
	if errdefs.IsNotFound(err) {
		info, err = c.containerByPrefix(ctx, id)
	}
	if err != nil {
		return nil, err
	}
	ctr := c.describe(ctx, c.namespace, info)
	c.attachSandbox(ctx, ctr)
	return ctr, nil
}

// attachSandbox completes the pod of a CRI container from its sandbox's
// record, when the daemon still has it.
func (c *Client) attachSandbox(ctx context.Context, ctr *Container) {
	if ctr.Pod.Sandbox || ctr.Pod.SandboxID == "" {
		return
	}
	ctx = c.nsctx(ctx, ctr.Namespace)
	if info, err := c.c.ContainerService().Get(ctx, ctr.Pod.SandboxID); err == nil {
		AttachSandbox(ctr, PodOf(info, decodeSpec(info)))
		return
	}
	if store := c.sandboxStore(); store != nil {
		if sb, err := store.Get(ctx, ctr.Pod.SandboxID); err == nil { // containerd 2.x
			AttachSandbox(ctr, SandboxPod(sb))
		}
	}
}

// sandboxStore returns containerd's sandbox store (2.x), or nil when the
// client has no daemon connection to ask it through (a client given its
// stores directly, whose sandbox store, if any, is not known here).
func (c *Client) sandboxStore() sandbox.Store {
	if c.disk != nil {
		return c.c.SandboxStore() // meta.db's, given to the client
	}
	if conn, ok := c.c.Conn().(*grpc.ClientConn); ok && conn == nil {
		return nil
	}
	return c.c.SandboxStore()
}

// attachStoredSandboxes completes, from containerd 2.x's sandbox store, the
// pods of containers whose sandbox has no container record in ctrs. A daemon
// without a sandbox store (1.x) leaves them as they are.
func (c *Client) attachStoredSandboxes(ctx context.Context, ns string, ctrs []*Container) {
	have := map[string]bool{}
	for _, ctr := range ctrs {
		have[ctr.Info.ID] = true
	}
	var stored map[string]forensic.Pod
	for _, ctr := range ctrs {
		p := ctr.Pod
		if p.Sandbox || p.SandboxID == "" || have[p.SandboxID] {
			continue
		}
		if stored == nil {
			stored = map[string]forensic.Pod{}
			var sbs []sandbox.Sandbox
			if store := c.sandboxStore(); store != nil {
				sbs, _ = store.List(c.nsctx(ctx, ns))
			}
			for _, sb := range sbs {
				stored[sb.ID] = SandboxPod(sb)
			}
		}
		if sb, ok := stored[p.SandboxID]; ok {
			AttachSandbox(ctr, sb)
		}
	}
}

// decodeSpec returns the OCI spec of a container record, or nil when it has
// none or it does not decode.
func decodeSpec(info containers.Container) *specs.Spec {
	if info.Spec == nil {
		return nil
	}
	var spec specs.Spec
	if err := typeurl.UnmarshalTo(info.Spec, &spec); err != nil {
		return nil
	}
	return &spec
}

// containerByPrefix finds the one container whose ID starts with prefix.
func (c *Client) containerByPrefix(ctx context.Context, prefix string) (containers.Container, error) {
	var none containers.Container
	if prefix == "" {
		return none, c.notFound(ctx, "container", prefix)
	}
	all, err := c.c.ContainerService().List(c.nsctx(ctx, ""))
	if err != nil {
		return none, fmt.Errorf("list containers in namespace %s: %w", c.namespace, err)
	}
	var matches []containers.Container
	for _, info := range all {
		if strings.HasPrefix(info.ID, prefix) {
			matches = append(matches, info)
		}
	}
	switch len(matches) {
	case 0:
		return none, c.notFound(ctx, "container", prefix)
	case 1:
		return matches[0], nil
	}
	ids := make([]string, len(matches))
	for i, m := range matches {
		ids[i] = m.ID
	}
	sort.Strings(ids)
	return none, &AmbiguousError{Prefix: prefix, Namespace: c.namespace, Candidates: ids}
}

// notFound is the error for a kind named name missing from the client's
// namespace: a *NamespaceNotFoundError when the namespace itself does not
// exist, else a *NotFoundError.
func (c *Client) notFound(ctx context.Context, kind, name string) error {
	if err := c.CheckNamespace(ctx); err != nil {
		return err
	}
	return &NotFoundError{Kind: kind, Name: name, Namespace: c.namespace}
}

// CheckNamespace returns a *NamespaceNotFoundError when the client's
// namespace does not exist in the daemon. An empty namespace that exists is
// fine.
func (c *Client) CheckNamespace(ctx context.Context) error {
	nss, err := c.Namespaces(ctx)
	if err != nil {
		return err
	}
	if slices.Contains(nss, c.namespace) {
		return nil
	}
	return &NamespaceNotFoundError{Namespace: c.namespace, Existing: nss}
}

// describe adds the spec and the task state to a container record. Neither is
// essential: a spec that does not decode or a task service error leave them
// empty rather than hiding the container.
func (c *Client) describe(ctx context.Context, ns string, info containers.Container) *Container {
	ctr := &Container{Namespace: ns, Info: info, Status: TaskUnknown}
	if info.Spec != nil {
		var spec specs.Spec
		if err := typeurl.UnmarshalTo(info.Spec, &spec); err == nil {
			ctr.Spec = &spec
		}
	}
	ctr.Pod = PodOf(info, ctr.Spec)
	if c.disk != nil {
		ctr.Status = TaskOffline
		return ctr
	}
	loaded, err := c.c.LoadContainer(c.nsctx(ctx, ns), info.ID)
	if err != nil {
		return ctr
	}
	task, err := loaded.Task(c.nsctx(ctx, ns), nil)
	switch {
	case errdefs.IsNotFound(err):
		ctr.Status = TaskNone
	case err == nil:
		if st, err := task.Status(c.nsctx(ctx, ns)); err == nil {
			ctr.Status = TaskStatus(st.Status)
			if ctr.Status != TaskStopped {
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
	if c.disk != nil {
		if _, err := c.disk.snapshotter(ctr.Info.Snapshotter); err != nil {
			return snapshots.Info{}, nil, err
		}
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
