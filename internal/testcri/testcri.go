// Package testcri drives containerd's CRI plugin the way kubelet does, for
// tests: pod sandboxes and their containers are created, started, stopped
// and removed through the Kubernetes CRI v1 API (k8s.io/cri-api) over the
// daemon's gRPC socket, never through containerd's own API.
//
// Pods are hostNetwork pods (NamespaceMode NODE for the network, POD for IPC
// and PID), so no CNI plugin is needed. Every pod is given the Client's
// cgroup parent, which lets the caller remove the cgroups the pods leave.
package testcri

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Kubelet's labels on pod sandboxes and containers (pkg/kubelet/types).
const (
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name"
)

// callTimeout bounds every CRI call but ExecSync (which has its own).
const callTimeout = 60 * time.Second

// Client is a CRI client connected to one containerd.
type Client struct {
	close func() error
	// Runtime is the CRI runtime service (pods, containers, exec).
	Runtime runtimeapi.RuntimeServiceClient
	// Images is the CRI image service.
	Images runtimeapi.ImageServiceClient
	// CgroupParent is the cgroup parent of every pod RunPod creates, e.g.
	// "/ctrf-1a2b3c4d" (cgroupfs driver).
	CgroupParent string
}

// New returns a CRI client on conn, a connection to containerd's gRPC
// socket (the one a containerd client holds: the CRI plugin serves on the
// same socket). Close calls closeConn, which owns conn.
func New(conn grpc.ClientConnInterface, cgroupParent string, closeConn func() error) *Client {
	return &Client{
		close:        closeConn,
		Runtime:      runtimeapi.NewRuntimeServiceClient(conn),
		Images:       runtimeapi.NewImageServiceClient(conn),
		CgroupParent: cgroupParent,
	}
}

// Close closes the connection.
func (c *Client) Close() error { return c.close() }

// Ready waits until the runtime answers Status and reports RuntimeReady
// (NetworkReady is not needed: pods use the node's network).
func (c *Client) Ready(ctx context.Context) error {
	var last error
	for {
		st, err := c.status(ctx)
		if err == nil {
			for _, cond := range st.GetStatus().GetConditions() {
				if cond.Type == runtimeapi.RuntimeReady && cond.Status {
					return nil
				}
			}
			err = errors.New("runtime not ready")
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for CRI runtime: %w (last: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Client) status(ctx context.Context) (*runtimeapi.StatusResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return c.Runtime.Status(ctx, &runtimeapi.StatusRequest{})
}

// WaitImage waits until the CRI image service knows ref, as kubelet would
// find it: an image imported into the k8s.io namespace reaches the CRI
// plugin's image store through an event, a moment after the import.
func (c *Client) WaitImage(ctx context.Context, ref string) error {
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := c.Images.ImageStatus(cctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		cancel()
		if err == nil && resp.GetImage() != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for image %s in the CRI image store: %w (last error: %v)", ref, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// PodSpec describes a pod sandbox.
type PodSpec struct {
	Namespace, Name, UID string
	// Labels are the pod's labels.
	Labels map[string]string
	// KubeletLabels adds the io.kubernetes.pod.* labels kubelet puts on every
	// sandbox and container; without them only the CRI metadata names the pod.
	KubeletLabels bool
}

// Pod is a pod sandbox that RunPod started.
type Pod struct {
	ID     string
	Spec   PodSpec
	Config *runtimeapi.PodSandboxConfig
}

// RunPod creates and starts a pod sandbox on the node's network, as kubelet
// does for a hostNetwork pod.
func (c *Client) RunPod(ctx context.Context, spec PodSpec) (*Pod, error) {
	labels := copyMap(spec.Labels)
	if spec.KubeletLabels {
		labels[LabelPodName], labels[LabelPodNamespace], labels[LabelPodUID] = spec.Name, spec.Namespace, spec.UID
	}
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: spec.Name, Namespace: spec.Namespace, Uid: spec.UID},
		Labels:   labels,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: c.CgroupParent,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
			},
		},
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return nil, fmt.Errorf("run pod sandbox %s/%s: %w", spec.Namespace, spec.Name, err)
	}
	return &Pod{ID: resp.PodSandboxId, Spec: spec, Config: cfg}, nil
}

// ContainerSpec describes a container of a pod.
type ContainerSpec struct {
	Name, Image string
	// Command replaces the image's entrypoint when set.
	Command []string
	// Labels are the container's labels (kubelet's are added when the pod
	// has KubeletLabels).
	Labels map[string]string
}

// RunContainer creates and starts a container in pod and returns its ID. A
// container that fails to start is removed.
func (c *Client) RunContainer(ctx context.Context, pod *Pod, spec ContainerSpec) (string, error) {
	labels := copyMap(spec.Labels)
	if pod.Spec.KubeletLabels {
		labels[LabelContainerName] = spec.Name
		labels[LabelPodName], labels[LabelPodNamespace], labels[LabelPodUID] = pod.Spec.Name, pod.Spec.Namespace, pod.Spec.UID
	}
	cfg := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: spec.Name},
		Image:    &runtimeapi.ImageSpec{Image: spec.Image},
		Command:  spec.Command,
		Labels:   labels,
		Linux:    &runtimeapi.LinuxContainerConfig{},
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	created, err := c.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: pod.ID, Config: cfg, SandboxConfig: pod.Config,
	})
	if err != nil {
		return "", fmt.Errorf("create container %s in pod %s: %w", spec.Name, pod.Spec.Name, err)
	}
	id := created.ContainerId
	if _, err := c.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		_, rmErr := c.Runtime.RemoveContainer(context.WithoutCancel(ctx), &runtimeapi.RemoveContainerRequest{ContainerId: id})
		return "", errors.Join(fmt.Errorf("start container %s in pod %s: %w", spec.Name, pod.Spec.Name, err), rmErr)
	}
	return id, nil
}

// ExecSync runs cmd in the container (kubectl exec without a terminal) and
// returns its stdout. A non-zero exit status is an error carrying stderr.
func (c *Client) ExecSync(ctx context.Context, containerID string, cmd ...string) (string, error) {
	const timeout = 30 * time.Second
	ctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	defer cancel()
	resp, err := c.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: containerID, Cmd: cmd, Timeout: int64(timeout / time.Second)})
	if err != nil {
		return "", fmt.Errorf("exec %q in %s: %w", cmd, containerID, err)
	}
	if resp.ExitCode != 0 {
		return string(resp.Stdout), fmt.Errorf("exec %q in %s: exit status %d: %s", cmd, containerID, resp.ExitCode, resp.Stderr)
	}
	return string(resp.Stdout), nil
}

// RemovePod stops and removes a pod sandbox with its containers, as kubelet
// does when a pod is deleted.
func (c *Client) RemovePod(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := c.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("stop pod sandbox %s: %w", id, err)
	}
	if _, err := c.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("remove pod sandbox %s: %w", id, err)
	}
	return nil
}

// RemoveAllPods removes every pod sandbox the runtime knows, and returns the
// IDs of the sandboxes and containers it saw.
func (c *Client) RemoveAllPods(ctx context.Context) (ids []string, err error) {
	lctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	ctrs, err := c.Runtime.ListContainers(lctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	for _, ctr := range ctrs.Containers {
		ids = append(ids, ctr.Id)
	}
	pods, err := c.Runtime.ListPodSandbox(lctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return ids, fmt.Errorf("list pod sandboxes: %w", err)
	}
	var errs []error
	for _, p := range pods.Items {
		ids = append(ids, p.Id)
		errs = append(errs, c.RemovePod(ctx, p.Id))
	}
	return ids, errors.Join(errs...)
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+4)
	for k, v := range m {
		out[k] = v
	}
	return out
}
