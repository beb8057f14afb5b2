package kube

import (
	"context"
	"errors"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

const (
	idPHP     = "3f9a6c0e21d4aa01"
	idSidecar = "5b2e77aa01c3bb02"
	idInit    = "9c0d1e2f3a4b5c6d"
	idDebug   = "0a1b2c3d4e5f6a7b"
)

// testPod is a pod scheduled on node with containers name=status ID.
func testPod(ns, name, node string, labels map[string]string, containers ...[2]string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), Labels: labels},
		Spec: corev1.PodSpec{NodeName: node}}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c[0]})
		if c[1] != "" {
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: c[0], ContainerID: c[1]})
		}
	}
	return p
}

func resolveCluster() *fake.Clientset {
	web := testPod("shop", "web-1", "node-a", map[string]string{"app": "web"},
		[2]string{"php", "containerd://" + idPHP}, [2]string{"sidecar", "containerd://" + idSidecar})
	web.Spec.InitContainers = []corev1.Container{{Name: "init"}}
	web.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "init", ContainerID: "containerd://" + idInit}}
	web.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger"}}}
	web.Status.EphemeralContainerStatuses = []corev1.ContainerStatus{{Name: "debugger", ContainerID: "containerd://" + idDebug}}
	web2 := testPod("shop", "web-2", "node-b", map[string]string{"app": "web"}, [2]string{"php", "containerd://abcdef0123456789"})
	web2.Annotations = map[string]string{DefaultContainerAnnotation: "php"}
	web2.Spec.Containers = append([]corev1.Container{{Name: "istio-proxy"}}, web2.Spec.Containers...)
	docker := testPod("shop", "legacy", "node-c", nil, [2]string{"app", "docker://1234"})
	pending := testPod("shop", "pending", "", nil, [2]string{"app", ""})
	creating := testPod("shop", "creating", "node-a", nil, [2]string{"app", ""})
	forged := testPod("shop", "forged", "node-a", nil, [2]string{"app", "containerd://abc; rm -rf /"})
	other := testPod("prod", "web-1", "node-a", map[string]string{"app": "web"}, [2]string{"php", "containerd://ffff"})
	return fake.NewClientset([]runtime.Object{web, web2, docker, pending, creating, forged, other}...)
}

// TestResolve resolves pods to containerd container IDs and nodes from
// their status, through the fake API server.
func TestResolve(t *testing.T) {
	php := Target{Namespace: "shop", Pod: "web-1", PodUID: "uid-web-1", Container: "php", ContainerID: idPHP, Node: "node-a"}
	at := func(t Target, container, id string) Target { t.Container, t.ContainerID = container, id; return t }
	web2 := Target{Namespace: "shop", Pod: "web-2", PodUID: "uid-web-2", Container: "php", ContainerID: "abcdef0123456789", Node: "node-b"}
	problem := func(pod, container, node, msg string) Target {
		return Target{Namespace: "shop", Pod: pod, PodUID: "uid-" + pod, Container: container, Node: node, Problem: msg}
	}
	tests := []struct {
		name string
		sel  Selection
		want []Target
	}{
		{"default container is the first", Selection{Namespace: "shop", Pods: []string{"web-1"}}, []Target{php}},
		{"default container from the annotation", Selection{Namespace: "shop", Pods: []string{"web-2"}}, []Target{web2}},
		{"-c", Selection{Namespace: "shop", Pods: []string{"web-1"}, Container: "sidecar"}, []Target{at(php, "sidecar", idSidecar)}},
		{"-c ephemeral", Selection{Namespace: "shop", Pods: []string{"web-1"}, Container: "debugger"}, []Target{at(php, "debugger", idDebug)}},
		{"--all-containers: init, regular, ephemeral", Selection{Namespace: "shop", Pods: []string{"web-1"}, AllContainers: true},
			[]Target{at(php, "init", idInit), php, at(php, "sidecar", idSidecar), at(php, "debugger", idDebug)}},
		{"-l in one namespace, by pod name", Selection{Namespace: "shop", Selector: "app=web"}, []Target{php, web2}},
		{"-c missing", Selection{Namespace: "shop", Pods: []string{"web-1"}, Container: "nginx"},
			[]Target{problem("web-1", "nginx", "node-a", `the pod has no container "nginx" (it has init, php, sidecar, debugger)`)}},
		{"docker", Selection{Namespace: "shop", Pods: []string{"legacy"}},
			[]Target{problem("legacy", "app", "node-c", "the container runs on docker, not containerd (docker://1234)")}},
		{"not scheduled", Selection{Namespace: "shop", Pods: []string{"pending"}},
			[]Target{problem("pending", "app", "", "the container has not been created yet (no container ID in the pod's status)")}},
		{"no ID yet", Selection{Namespace: "shop", Pods: []string{"creating"}},
			[]Target{problem("creating", "app", "node-a", "the container has not been created yet (no container ID in the pod's status)")}},
		{"not an ID", Selection{Namespace: "shop", Pods: []string{"forged"}},
			[]Target{problem("forged", "app", "node-a", "the container ID in the pod's status is not a hex ID: abc; rm -rf /")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(context.Background(), resolveCluster(), tt.sel)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestResolveErrors: a pod named but absent, and a selector matching
// nothing, are errors of their own types (the CLI's hints), not targets.
func TestResolveErrors(t *testing.T) {
	_, err := Resolve(context.Background(), resolveCluster(), Selection{Namespace: "shop", Pods: []string{"web-1", "web-9"}})
	var nf *PodNotFoundError
	if !errors.As(err, &nf) || nf.Name != "web-9" || nf.Namespace != "shop" {
		t.Errorf("missing pod: %v", err)
	}
	_, err = Resolve(context.Background(), resolveCluster(), Selection{Namespace: "shop", Selector: "app=db"})
	var none *NoPodsError
	if !errors.As(err, &none) || none.Selector != "app=db" {
		t.Errorf("selector matching nothing: %v", err)
	}
}
