package kube

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultContainerAnnotation names a pod's default container, as kubectl
// reads it.
const DefaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// containerdScheme prefixes the container IDs of containerd in a pod's status.
const containerdScheme = "containerd://"

// Selection names the pods and containers to collect.
type Selection struct {
	// Namespace holds the pods.
	Namespace string
	// Pods are pod names; Selector a label selector. One of them is given.
	Pods     []string
	Selector string
	// Container picks one container by name; AllContainers every container
	// of each pod (init and ephemeral ones included). Without either, the
	// pod's default container is collected, as kubectl picks it.
	Container     string
	AllContainers bool
}

// Target is one container of a pod, as the API server lists it.
type Target struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	PodUID    string `json:"pod_uid"`
	Container string `json:"container"`
	// ContainerID is containerd's ID of the container (without the
	// containerd:// scheme).
	ContainerID string `json:"container_id"`
	Node        string `json:"node"`
	// Problem says why the target cannot be collected (not scheduled, not
	// started, not on containerd); empty when it can.
	Problem string `json:"problem,omitempty"`
}

// Name is NAMESPACE/POD/CONTAINER.
func (t Target) Name() string { return t.Namespace + "/" + t.Pod + "/" + t.Container }

// PodNotFoundError is a named pod the API server does not have.
type PodNotFoundError struct{ Namespace, Name string }

func (e *PodNotFoundError) Error() string {
	return fmt.Sprintf("pod %s not found in namespace %s", e.Name, e.Namespace)
}

// NoPodsError is a selector that matches no pod.
type NoPodsError struct{ Namespace, Selector string }

func (e *NoPodsError) Error() string {
	return fmt.Sprintf("no pod in namespace %s matches %q", e.Namespace, e.Selector)
}

// Resolve returns the targets sel names, in pod then container order. A pod
// named but absent is an error; a container that cannot be collected is a
// target with a Problem.
func Resolve(ctx context.Context, cs Client, sel Selection) ([]Target, error) {
	pods, err := selectPods(ctx, cs, sel)
	if err != nil {
		return nil, err
	}
	var out []Target
	for i := range pods {
		out = append(out, podTargets(&pods[i], sel)...)
	}
	return out, nil
}

// selectPods gets the named pods, or lists those the selector matches.
func selectPods(ctx context.Context, cs Client, sel Selection) ([]corev1.Pod, error) {
	api := cs.CoreV1().Pods(sel.Namespace)
	if sel.Selector != "" {
		list, err := api.List(ctx, metav1.ListOptions{LabelSelector: sel.Selector})
		if err != nil {
			return nil, fmt.Errorf("list pods in namespace %s: %w", sel.Namespace, err)
		}
		if len(list.Items) == 0 {
			return nil, &NoPodsError{Namespace: sel.Namespace, Selector: sel.Selector}
		}
		slices.SortFunc(list.Items, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
		return list.Items, nil
	}
	var pods []corev1.Pod
	for _, name := range sel.Pods {
		p, err := api.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, &PodNotFoundError{Namespace: sel.Namespace, Name: name}
		}
		if err != nil {
			return nil, fmt.Errorf("get pod %s/%s: %w", sel.Namespace, name, err)
		}
		pods = append(pods, *p)
	}
	return pods, nil
}

// podTargets returns the containers of pod that sel picks.
func podTargets(pod *corev1.Pod, sel Selection) []Target {
	names := containerNames(pod)
	var picked []string
	switch {
	case sel.AllContainers:
		picked = names
	case sel.Container != "":
		picked = []string{sel.Container}
	default:
		picked = []string{defaultContainer(pod)}
	}
	out := make([]Target, 0, len(picked))
	for _, name := range picked {
		t := Target{Namespace: pod.Namespace, Pod: pod.Name, PodUID: string(pod.UID), Container: name, Node: pod.Spec.NodeName}
		t.ContainerID, t.Problem = containerID(pod, name, names)
		if t.Problem == "" && t.Node == "" {
			t.Problem = "the pod is not scheduled on a node"
		}
		out = append(out, t)
	}
	return out
}

// containerNames lists the pod's init, regular and ephemeral containers.
func containerNames(pod *corev1.Pod) []string {
	var names []string
	for _, c := range pod.Spec.InitContainers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		names = append(names, c.Name)
	}
	return names
}

// defaultContainer is the container kubectl picks: the one the annotation
// names, or the first.
func defaultContainer(pod *corev1.Pod) string {
	if n := pod.Annotations[DefaultContainerAnnotation]; n != "" {
		return n
	}
	if len(pod.Spec.Containers) > 0 {
		return pod.Spec.Containers[0].Name
	}
	return ""
}

// containerID returns containerd's ID of the pod's container name from the
// pod's status, or why there is none.
func containerID(pod *corev1.Pod, name string, names []string) (id, problem string) {
	if !slices.Contains(names, name) {
		return "", fmt.Sprintf("the pod has no container %q (it has %s)", name, strings.Join(names, ", "))
	}
	st := containerStatus(pod, name)
	if st == nil || st.ContainerID == "" {
		return "", "the container has not been created yet (no container ID in the pod's status)"
	}
	id, ok := strings.CutPrefix(st.ContainerID, containerdScheme)
	if !ok {
		scheme, _, _ := strings.Cut(st.ContainerID, "://")
		return "", fmt.Sprintf("the container runs on %s, not containerd (%s)", scheme, st.ContainerID)
	}
	if err := checkContainerID(id); err != nil {
		return "", err.Error()
	}
	return id, ""
}

// checkContainerID refuses an ID that is not containerd's hex ID: it goes on
// a command line and into an object key.
func checkContainerID(id string) error {
	if len(id) == 0 || len(id) > 128 || strings.Trim(id, "0123456789abcdef") != "" {
		return errors.New("the container ID in the pod's status is not a hex ID: " + id)
	}
	return nil
}

func containerStatus(pod *corev1.Pod, name string) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}
