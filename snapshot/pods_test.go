package snapshot

import (
	"context"
	"reflect"
	"testing"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/sandbox"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/ctrforensics/ctrforensics/forensic"
)

// The CRI plugin's extension values as containerd 1.6.20 and 2.4.2 record
// them (copied from `ctr -n k8s.io c info`, IDs shortened).
const (
	sandboxExt   = `{"Version":"v1","Metadata":{"ID":"sb1","Name":"web-1_shop_uid-1_0","Config":{"metadata":{"name":"web-1","uid":"uid-1","namespace":"shop"},"labels":{"app":"web"},"linux":{"cgroup_parent":"/ctrf-2d56971a","security_context":{"namespace_options":{"network":2}}}},"NetNSPath":"","IP":"","AdditionalIPs":null,"RuntimeHandler":"","CNIResult":null,"ProcessLabel":""}}`
	containerExt = `{"Version":"v1","Metadata":{"ID":"c1","Name":"php_web-1_shop_uid-1_0","SandboxID":"sb1","Config":{"metadata":{"name":"php"},"image":{"image":"docker.io/ctrforensics/demo-web:1"},"command":["sleep","1000"],"linux":{}},"ImageRef":"sha256:53d6","LogPath":"","StopSignal":"","ProcessLabel":""}}`
)

func ext(typ, value string) map[string]typeurl.Any {
	key := extensionSandbox
	if typ == "container" {
		key = extensionContainer
	}
	return map[string]typeurl.Any{key: &anypb.Any{TypeUrl: "github.com/containerd/cri/pkg/store/" + typ + "/Metadata", Value: []byte(value)}}
}

func TestPodOf(t *testing.T) {
	criAnnotations := &specs.Spec{Annotations: map[string]string{
		annotationType: "container", annotationSandboxID: "sb1", annotationSandboxName: "web-1",
		annotationSandboxNS: "shop", annotationSandboxUID: "uid-1", annotationContainer: "php",
	}}
	sandboxPod := forensic.Pod{Namespace: "shop", Name: "web-1", UID: "uid-1", SandboxID: "sb1", Sandbox: true, Labels: map[string]string{"app": "web"}}
	tests := []struct {
		name string
		info containers.Container
		spec *specs.Spec
		want forensic.Pod
	}{
		{"plain container", containers.Container{ID: "x", Labels: map[string]string{"a": "b"}}, &specs.Spec{}, forensic.Pod{}},
		{"sandbox, extension only", containers.Container{ID: "sb1", Labels: map[string]string{labelCRIKind: "sandbox", "app": "web"}, Extensions: ext("sandbox", sandboxExt)},
			nil, sandboxPod},
		{"sandbox, labels only (no extension)", containers.Container{ID: "sb1", Labels: map[string]string{labelCRIKind: "sandbox", "app": "web"}},
			&specs.Spec{Annotations: map[string]string{annotationType: "sandbox", annotationSandboxName: "web-1", annotationSandboxNS: "shop", annotationSandboxUID: "uid-1"}},
			sandboxPod},
		{"containerd 1.6 container: annotations and extension, no kubelet labels", containers.Container{ID: "c1", Labels: map[string]string{labelCRIKind: "container"}, Extensions: ext("container", containerExt)},
			criAnnotations, forensic.Pod{Namespace: "shop", Name: "web-1", UID: "uid-1", Container: "php", SandboxID: "sb1"}},
		{"containerd 2.x container: SandboxID field, extension without spec", containers.Container{ID: "c1", SandboxID: "sb1", Extensions: ext("container", containerExt)},
			nil, forensic.Pod{Container: "php", SandboxID: "sb1"}},
		{"kubelet labels only", containers.Container{ID: "k", Labels: map[string]string{labelPodNamespace: "shop", labelPodName: "web-7d9f", labelContainerName: "php", labelPodUID: "u"}},
			nil, forensic.Pod{Namespace: "shop", Name: "web-7d9f", UID: "u", Container: "php"}},
		{"hostile extension that does not decode", containers.Container{ID: "c1", Extensions: ext("container", `{"Metadata":[1,2]}`)},
			nil, forensic.Pod{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PodOf(tt.info, tt.spec); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("PodOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestSandboxPod reads a record of containerd 2.4.2's sandbox store (as `ctr
// sandboxes info` shows it): the CRI metadata is under the key "metadata".
func TestSandboxPod(t *testing.T) {
	sb := sandbox.Sandbox{
		ID:        "sb1",
		Labels:    map[string]string{"app": "web", labelCRIKind: "sandbox", labelRuntimeType: "io.containerd.runc.v2"},
		Sandboxer: "podsandbox",
		Extensions: map[string]typeurl.Any{extensionSandboxStore: &anypb.Any{
			TypeUrl: "github.com/containerd/cri/pkg/store/sandbox/Metadata", Value: []byte(sandboxExt)}},
	}
	want := forensic.Pod{Namespace: "shop", Name: "web-1", UID: "uid-1", SandboxID: "sb1", Sandbox: true, Labels: map[string]string{"app": "web"}}
	if got := SandboxPod(sb); !reflect.DeepEqual(got, want) {
		t.Errorf("SandboxPod = %+v, want %+v", got, want)
	}
	sb.Extensions = nil // labels only: the kind and runtime labels are not the pod's
	want = forensic.Pod{SandboxID: "sb1", Sandbox: true, Labels: map[string]string{"app": "web"}}
	if got := SandboxPod(sb); !reflect.DeepEqual(got, want) {
		t.Errorf("SandboxPod without metadata = %+v, want %+v", got, want)
	}
}

func TestAttachSandboxesAndFilter(t *testing.T) {
	mk := func(id string, p forensic.Pod, labels map[string]string) *Container {
		return &Container{Info: containers.Container{ID: id, Labels: labels}, Pod: p}
	}
	ctrs := []*Container{
		mk("plain", forensic.Pod{}, map[string]string{"tier": "db"}),
		mk("sb1", forensic.Pod{Namespace: "shop", Name: "web-1", SandboxID: "sb1", Sandbox: true, Labels: map[string]string{"app": "web"}}, nil),
		mk("c1", forensic.Pod{Container: "php", SandboxID: "sb1"}, map[string]string{"tier": "front"}),
		mk("sb2", forensic.Pod{Namespace: "kube-system", Name: "kube-proxy-x", SandboxID: "sb2", Sandbox: true, Labels: map[string]string{"app": "proxy"}}, nil),
		mk("c2", forensic.Pod{Namespace: "kube-system", Name: "kube-proxy-x", Container: "kube-proxy", SandboxID: "sb2"}, nil),
		mk("orphan", forensic.Pod{Container: "lost", SandboxID: "gone"}, nil),
	}
	attachSandboxes(ctrs)
	if p := ctrs[2].Pod; p.Namespace != "shop" || p.Name != "web-1" || p.Labels["app"] != "web" {
		t.Fatalf("c1 not completed from its sandbox: %+v", p)
	}
	ids := func(cs []*Container) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Info.ID)
		}
		return out
	}
	tests := []struct {
		name string
		f    ContainerFilter
		want []string
	}{
		{"default hides sandboxes", ContainerFilter{}, []string{"plain", "c1", "c2", "orphan"}},
		{"sandboxes", ContainerFilter{Sandboxes: true}, []string{"plain", "sb1", "c1", "sb2", "c2", "orphan"}},
		{"pod", ContainerFilter{Pod: "web-1"}, []string{"c1"}},
		{"pod with sandboxes", ContainerFilter{Pod: "web-1", Sandboxes: true}, []string{"sb1", "c1"}},
		{"pod namespace", ContainerFilter{PodNamespace: "kube-system"}, []string{"c2"}},
		{"exclude system", ContainerFilter{ExcludeSystem: true}, []string{"plain", "c1", "orphan"}},
		{"pod label", ContainerFilter{Labels: map[string]string{"app": "web"}}, []string{"c1"}},
		{"own label", ContainerFilter{Labels: map[string]string{"tier": "db"}}, []string{"plain"}},
		{"labels are ANDed", ContainerFilter{Labels: map[string]string{"app": "web", "tier": "front"}}, []string{"c1"}},
		{"label value must match", ContainerFilter{Labels: map[string]string{"app": "proxy", "tier": "front"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ids(tt.f.Filter(ctrs)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSandboxStoreWithoutDaemon: a client given its stores directly (a disk
// root) has no connection through which to ask for sandboxes; asking would
// panic on the nil connection.
func TestSandboxStoreWithoutDaemon(t *testing.T) {
	cl, err := client.New("", client.WithServices())
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{c: cl, namespace: "k8s.io"}
	if s := c.sandboxStore(); s != nil {
		t.Errorf("sandbox store %v without a daemon connection", s)
	}
	ctr := &Container{Namespace: "k8s.io", Pod: forensic.Pod{SandboxID: "gone", Container: "php"}}
	c.attachStoredSandboxes(context.Background(), "k8s.io", []*Container{ctr}) // must not panic
	if ctr.Pod.Name != "" {
		t.Errorf("pod %+v", ctr.Pod)
	}
}
