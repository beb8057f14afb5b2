package kube

import (
	"bytes"
	"encoding/json"
	"flag"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/ctrforensics/ctrforensics/forensic/bundle"
	"github.com/ctrforensics/ctrforensics/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testutil.Golden(t, filepath.Join("testdata", name), got, *update)
}

func testRun() bundle.Orchestration {
	return bundle.Orchestration{System: bundle.OrchestrationKubernetes, Group: "20261129t083000z-3f9a6c", Started: "2026-11-29T08:30:00Z",
		Context: "prod-$(CTRFORENSICS_POD_UID)", Cluster: "prod", Server: "https://10.0.0.1:6443", KubeconfigUser: "alice",
		User: "alice@example.com", Namespace: DefaultNamespace, Image: "registry.example/ctrforensics:1",
		Nodes: []string{"node-a", "node-b"}, CollectorPods: []string{PodName("20261129t083000z-3f9a6c", 0), PodName("20261129t083000z-3f9a6c", 1)}, Targets: 3}
}

func testCollectorOptions() CollectorOptions {
	return CollectorOptions{Image: "registry.example/ctrforensics:1", To: "s3://evidence/ir-42/", S3Secret: "s3-creds",
		CollectArgs: []string{"--examiner=alice", "--case=IR-42 $HOME"}}
}

// TestCollectorPodGolden: the collector pod of a node, as the API server
// gets it.
func TestCollectorPodGolden(t *testing.T) {
	targets := []Target{
		{Namespace: "shop", Pod: "web-1", PodUID: "uid-web-1", Container: "php", ContainerID: idPHP, Node: "node-a"},
		{Namespace: "shop", Pod: "web-1", PodUID: "uid-web-1", Container: "sidecar", ContainerID: idSidecar, Node: "node-a"},
	}
	pod, err := CollectorPod(testRun(), 0, "node-a", targets, testCollectorOptions())
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "collector-pod.yaml", y)
	checkCollectorPod(t, pod, "node-a", 2)
}

// checkCollectorPod checks what the soundness of a collector pod rests on,
// whatever the golden file says.
func checkCollectorPod(t *testing.T, pod *corev1.Pod, node string, targets int) {
	t.Helper()
	s := pod.Spec
	if s.NodeName != node || !s.HostPID || s.RestartPolicy != corev1.RestartPolicyNever || s.AutomountServiceAccountToken == nil || *s.AutomountServiceAccountToken {
		t.Errorf("pod spec: node %q hostPID %v restart %s automount %v", s.NodeName, s.HostPID, s.RestartPolicy, s.AutomountServiceAccountToken)
	}
	if len(s.Tolerations) != 1 || s.Tolerations[0].Operator != corev1.TolerationOpExists || s.Tolerations[0].Key != "" {
		t.Errorf("tolerations %+v: want every taint tolerated", s.Tolerations)
	}
	c := s.Containers[0]
	if c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
		t.Error("collector container is not privileged")
	}
	for _, m := range c.VolumeMounts {
		if m.Name != "scratch" && !m.ReadOnly {
			t.Errorf("host mount %s (%s) is writable", m.Name, m.MountPath)
		}
	}
	for _, v := range s.Volumes {
		if v.HostPath != nil && (v.HostPath.Type == nil || *v.HostPath.Type != corev1.HostPathDirectory) {
			t.Errorf("host path %s may be created on the node", v.HostPath.Path)
		}
	}
	plan := planOf(t, pod)
	if len(plan.Targets) != targets {
		t.Errorf("plan has %d targets, want %d", len(plan.Targets), targets)
	}
}

// planOf decodes the plan of a collector pod's command, as the kubelet
// expands it.
func planOf(t *testing.T, pod *corev1.Pod) Plan {
	t.Helper()
	cmd := pod.Spec.Containers[0].Command
	i := slices.Index(cmd, "--plan")
	if i < 0 {
		t.Fatalf("no --plan in %q", cmd)
	}
	p, err := ParsePlan(Expand(cmd[i+1], DownwardEnv(pod.Namespace, pod.Name, "uid-collector", pod.Spec.NodeName, pod.Spec.ServiceAccountName)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCollectorOrchestrationRecord: the kubelet's expansion of the collect
// command gives each bag the run, its own target and the collector pod
// (downward API), and a '$' of the user's text stays as written.
func TestCollectorOrchestrationRecord(t *testing.T) {
	target := Target{Namespace: "shop", Pod: "web-1", PodUID: "uid-web-1", Container: "php", ContainerID: idPHP, Node: "node-a"}
	pod, err := CollectorPod(testRun(), 0, "node-a", []Target{target}, testCollectorOptions())
	if err != nil {
		t.Fatal(err)
	}
	pt := planOf(t, pod).Targets[0]
	args := pt.Args
	orch := args[slices.Index(args, "--orchestration")+1]
	var got bundle.Orchestration
	dec := json.NewDecoder(bytes.NewReader([]byte(orch)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := testRun()
	want.Target = bundle.OrchestratedTarget{Namespace: "shop", Pod: "web-1", PodUID: "uid-web-1", Container: "php", ContainerID: idPHP, Node: "node-a"}
	want.Collector = bundle.CollectorPod{Namespace: DefaultNamespace, Name: pod.Name, UID: "uid-collector", Node: "node-a", ServiceAccount: DefaultServiceAccount}
	if !equalJSON(t, got, want) {
		t.Errorf("orchestration record\n got %s\nwant %+v", orch, want)
	}
	wantArgs := []string{"--address", DefaultContainerdAddress, "--namespace", DefaultContainerdNamespace, "collect", idPHP,
		"-o", "s3://evidence/ir-42/20261129t083000z-3f9a6c/shop/web-1/php.tar.gz", "--bag-group", "20261129t083000z-3f9a6c",
		"--orchestration", orch, "--format", "json", "--examiner=alice", "--case=IR-42 $HOME"}
	if !slices.Equal(args, wantArgs) {
		t.Errorf("collect args\n got %q\nwant %q", args, wantArgs)
	}
	if pt.Output != wantArgs[7] || pt.ContainerID != idPHP || pt.Target != "shop/web-1/php" {
		t.Errorf("plan target %+v", pt)
	}
}

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	return bytes.Equal(x, y)
}

// defaultManifest is the manifest of the default options, and its YAML.
func defaultManifest(t *testing.T) ([]any, []byte) {
	t.Helper()
	objs, err := Manifest(CollectorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	y, err := YAML(objs)
	if err != nil {
		t.Fatal(err)
	}
	return objs, y
}

// TestManifestGolden: the RBAC and namespace an administrator applies, and
// the pod template, with the least verbs k8s collect uses.
func TestManifestGolden(t *testing.T) {
	objs, y := defaultManifest(t)
	golden(t, "manifest.yaml", y)
	var ns *corev1.Namespace
	verbs := map[string][]string{}
	for _, o := range objs {
		switch o := o.(type) {
		case *corev1.Namespace:
			ns = o
		case *rbacv1.ClusterRole:
			for _, r := range o.Rules {
				verbs["cluster "+r.Resources[0]] = r.Verbs
			}
		case *rbacv1.Role:
			for _, r := range o.Rules {
				verbs[o.Namespace+" "+r.Resources[0]] = r.Verbs
			}
		}
	}
	if ns == nil || ns.Labels[PodSecurityLabel] != "privileged" {
		t.Errorf("namespace %+v not labelled for privileged pods", ns)
	}
	want := map[string][]string{"cluster pods": {"get", "list"}, "ctrforensics pods": {"create", "get", "delete"}, "ctrforensics pods/log": {"get"}}
	if !equalJSON(t, verbs, want) {
		t.Errorf("verbs %v, want %v", verbs, want)
	}
}

// TestManifestYAMLRoundTrip: every document of the manifest decodes, with the
// API types kubectl uses, into the very object Manifest made, and none
// carries the noise of zero-valued structs; an empty object that means
// something (the scratch volume's emptyDir) stays.
func TestManifestYAMLRoundTrip(t *testing.T) {
	objs, y := defaultManifest(t)
	docs := strings.Split(string(y), "\n---\n")
	if len(docs) != len(objs) {
		t.Fatalf("%d documents for %d objects", len(docs), len(objs))
	}
	for i, doc := range docs {
		got, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("document %d: %v\n%s", i, err, doc)
		}
		if !apiequality.Semantic.DeepEqual(got, objs[i]) {
			t.Errorf("document %d decodes to\n%#v\nwant\n%#v", i, got, objs[i])
		}
	}
	text := strings.ReplaceAll(string(y), "emptyDir: {}\n", "")
	for _, noise := range []string{": {}\n", ": null\n", "creationTimestamp"} {
		if strings.Contains(text, noise) {
			t.Errorf("%q in\n%s", noise, y)
		}
	}
	if !strings.Contains(string(y), "- emptyDir:\n      medium: Memory\n      sizeLimit: 16Mi\n    name: scratch\n") {
		t.Errorf("the scratch volume is not an emptyDir in memory:\n%s", y)
	}
}
