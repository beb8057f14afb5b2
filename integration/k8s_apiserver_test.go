package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"

	"github.com/ctrforensics/ctrforensics/forensic/bundle"
	"github.com/ctrforensics/ctrforensics/internal/testapiserver"
	"github.com/ctrforensics/ctrforensics/kube"
)

// The cluster of TestK8sAPIServer: pods of namespace shop on three nodes
// (node-c tainted), a pod on Docker and one not yet scheduled.
const (
	k8sShop  = "shop"
	k8sImage = "registry.invalid/ctrforensics:e2e"
	k8sTo    = "s3://evidence/ir-42"
)

// k8sPod is a target pod of the test cluster: its node and the containerd
// (or other runtime's) IDs of its containers, in spec order; no node means
// not scheduled.
type k8sPod struct {
	name       string
	node       string
	containers []string
	ids        []string
}

var k8sPods = []k8sPod{
	{"web-1", "node-a", []string{"php", "sidecar"}, []string{"containerd://" + strings.Repeat("a1", 32), "containerd://" + strings.Repeat("a2", 32)}},
	{"web-2", "node-b", []string{"php"}, []string{"containerd://" + strings.Repeat("b1", 32)}},
	{"web-3", "node-c", []string{"php"}, []string{"containerd://" + strings.Repeat("c1", 32)}},
	{"legacy", "node-b", []string{"app"}, []string{"docker://" + strings.Repeat("d1", 32)}},
	{"pending", "", []string{"app"}, nil},
}

// TestK8sAPIServer runs `k8s collect` against a real kube-apiserver and etcd
// (no kubelet: the test plays the nodes' kubelets). The RBAC `k8s manifest`
// prints is applied as is, and the command runs as the responder service
// account it names, through a token the API server issued: the least verbs
// suffice, and the account can do nothing else asked of it. The kubelet
// checks each collector pod the command creates as the API server stored it
// (admission included), ends it as its node's behaviour says, with the
// termination message a collector writes, and finishes the deletion of pods
// that never ran, as a kubelet does. Then the per-target report, the exit
// status, the concurrency limit and the removal of every collector pod are
// checked.
func TestK8sAPIServer(t *testing.T) {
	srv := testapiserver.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cfg, err := srv.Admin()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	manifest := h.cliWith(t, nil, "k8s", "manifest", "--image", k8sImage)
	if manifest.code != 0 {
		t.Fatalf("k8s manifest: exit %d: %s", manifest.code, manifest.stderr)
	}
	applyManifest(ctx, t, admin, []byte(manifest.stdout))
	nodeOf := makeK8sCluster(ctx, t, admin)
	kubeconfig := filepath.Join(t.TempDir(), "responder.kubeconfig")
	responderKubeconfig(ctx, t, admin, srv, kubeconfig)
	checkLeastPrivilege(ctx, t, srv, kubeconfig)

	ok := func(id string) string { return "collected sha256:head-of-" + id }
	id := func(pod string, i int) string {
		for _, p := range k8sPods {
			if p.name == pod {
				return strings.TrimPrefix(p.ids[i], "containerd://")
			}
		}
		return ""
	}
	tests := []struct {
		name string
		// args select the pods; kubeconfigEnv gives the kubeconfig as
		// KUBECONFIG instead of --kubeconfig.
		args          []string
		kubeconfigEnv bool
		behave        map[string]string // node -> what its collector does (see k8sKubelet)
		exit          int
		// parallel is the most collector pods alive at once (--parallel).
		parallel int
		want     map[string]string // target -> "collected HEAD" or "failed ERROR-PART"
		phases   map[string]string // node -> the collector pod's last phase
	}{
		{"two pods, every container, all collected", []string{"web-1", "web-2", "--all-containers"}, false,
			map[string]string{}, 0, 4,
			map[string]string{"shop/web-1/php": ok(id("web-1", 0)), "shop/web-1/sidecar": ok(id("web-1", 1)), "shop/web-2/php": ok(id("web-2", 0))},
			map[string]string{"node-a": "Succeeded", "node-b": "Succeeded"}},
		{"selector, one pod at a time: a failed collect, an image not pulled, Docker, not scheduled", []string{"-l", "app=web", "--parallel", "1"}, true,
			map[string]string{"node-b": "fail:shop/web-2/php", "node-c": "pull"}, 1, 1,
			map[string]string{"shop/web-1/php": ok(id("web-1", 0)), "shop/web-2/php": "failed collect: container not found",
				"shop/web-3/php": "failed cannot start: ImagePullBackOff", "shop/legacy/app": "failed runs on docker",
				"shop/pending/app": "failed has not been created yet"},
			map[string]string{"node-a": "Succeeded", "node-b": "Failed", "node-c": "Pending"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			group := fmt.Sprintf("20261129t120000z-api%d", i)
			kl := startK8sKubelet(ctx, t, admin, tt.behave, nodeOf)
			args := append([]string{"k8s", "collect", "-n", k8sShop, "--to", k8sTo, "--image", k8sImage, "--bag-group", group,
				"--examiner", "alice", "--format", "json"}, tt.args...)
			prepare := func(cmd *exec.Cmd) { cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig) }
			if !tt.kubeconfigEnv {
				args, prepare = append(args, "--kubeconfig", kubeconfig), func(cmd *exec.Cmd) { cmd.Env = append(os.Environ(), "KUBECONFIG=/nonexistent") }
			}
			start := time.Now()
			r := h.cliWith(t, prepare, args...)
			t.Logf("k8s collect took %s", time.Since(start).Round(time.Millisecond))
			pods := kl.stop(t)
			if r.code != tt.exit {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.exit, r.stdout, r.stderr)
			}
			var rep kube.Report
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
				t.Fatalf("report: %v\n%s", err, r.stdout)
			}
			checkK8sReport(t, &rep, group, tt.want, tt.phases, pods)
			if kl.maxLive < 1 || kl.maxLive > tt.parallel {
				t.Errorf("%d collector pods alive at once, want 1 to %d; events:\n%s", kl.maxLive, tt.parallel, strings.Join(kl.events, "\n"))
			}
			for _, p := range pods {
				checkK8sOrchestration(t, srv, p, group, len(tt.want), len(tt.phases))
			}
		})
	}
}

// applyManifest creates the objects of `k8s manifest`'s YAML, decoded by the
// API machinery's universal deserializer, all but the last: the collector
// pod template, for review only.
func applyManifest(ctx context.Context, t *testing.T, cs kubernetes.Interface, y []byte) {
	t.Helper()
	rd := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(y)))
	var objs []any
	for {
		doc, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("decode manifest document: %v\n%s", err, doc)
		}
		objs = append(objs, obj)
	}
	if len(objs) == 0 {
		t.Fatal("empty manifest")
	}
	if _, ok := objs[len(objs)-1].(*corev1.Pod); !ok {
		t.Fatalf("the manifest's last document is a %T, want the collector pod template", objs[len(objs)-1])
	}
	for _, o := range objs[:len(objs)-1] {
		var err error
		opts := metav1.CreateOptions{FieldManager: "ctrforensics-test"}
		switch o := o.(type) {
		case *corev1.Namespace:
			_, err = cs.CoreV1().Namespaces().Create(ctx, o, opts)
		case *corev1.ServiceAccount:
			_, err = cs.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, opts)
		case *rbacv1.ClusterRole:
			_, err = cs.RbacV1().ClusterRoles().Create(ctx, o, opts)
		case *rbacv1.ClusterRoleBinding:
			_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, o, opts)
		case *rbacv1.Role:
			_, err = cs.RbacV1().Roles(o.Namespace).Create(ctx, o, opts)
		case *rbacv1.RoleBinding:
			_, err = cs.RbacV1().RoleBindings(o.Namespace).Create(ctx, o, opts)
		default:
			t.Fatalf("the manifest holds a %T, which the test does not apply", o)
		}
		if err != nil {
			t.Fatalf("apply %T: %v", o, err)
		}
	}
}

// makeK8sCluster creates the nodes, namespace shop with its default service
// account (no controller manager makes it) and the target pods, each pod's
// status set as its node's kubelet would; it returns each target's node.
func makeK8sCluster(ctx context.Context, t *testing.T, cs kubernetes.Interface) map[string]string {
	t.Helper()
	for _, n := range []string{"node-a", "node-b", "node-c"} {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}
		if n == "node-c" {
			node.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "payments", Effect: corev1.TaintEffectNoSchedule}}
		}
		if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: k8sShop}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ServiceAccounts(k8sShop).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	nodeOf := map[string]string{}
	for _, p := range k8sPods {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.name, Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{NodeName: p.node, AutomountServiceAccountToken: ptr.To(false)}}
		for _, c := range p.containers {
			pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: c, Image: "shop/" + c + ":1"})
			nodeOf[k8sShop+"/"+p.name+"/"+c] = p.node
		}
		created, err := cs.CoreV1().Pods(k8sShop).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.node == "" {
			continue
		}
		created.Status.Phase = corev1.PodRunning
		for i, c := range p.containers {
			created.Status.ContainerStatuses = append(created.Status.ContainerStatuses, corev1.ContainerStatus{Name: c,
				Image: "shop/" + c + ":1", ContainerID: p.ids[i], Ready: true,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}})
		}
		if _, err := cs.CoreV1().Pods(k8sShop).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("set the status of pod %s: %v", p.name, err)
		}
	}
	return nodeOf
}

// responderKubeconfig writes a kubeconfig for the manifest's responder
// service account, with a token the API server issues (TokenRequest).
func responderKubeconfig(ctx context.Context, t *testing.T, cs kubernetes.Interface, srv *testapiserver.Server, path string) {
	t.Helper()
	tok, err := cs.CoreV1().ServiceAccounts(kube.DefaultNamespace).CreateToken(ctx, kube.ResponderServiceAccount,
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.TokenKubeconfig(path, "responder", tok.Status.Token); err != nil {
		t.Fatal(err)
	}
}

// checkLeastPrivilege asks the API server what the responder may do: what
// k8s collect needs, and nothing else of the cluster's pods and secrets.
func checkLeastPrivilege(ctx context.Context, t *testing.T, srv *testapiserver.Server, kubeconfig string) {
	t.Helper()
	cfg, err := srv.RESTConfig(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ns := kube.DefaultNamespace
	for _, tc := range []struct {
		verb, resource, sub, namespace string
		allowed                        bool
	}{
		{"list", "pods", "", k8sShop, true},
		{"get", "pods", "", "kube-system", true},
		{"create", "pods", "", ns, true},
		{"delete", "pods", "", ns, true},
		{"get", "pods", "log", ns, true},
		{"create", "pods", "", k8sShop, false},
		{"delete", "pods", "", k8sShop, false},
		{"update", "pods", "", ns, false},
		{"create", "pods", "exec", ns, false},
		{"get", "secrets", "", ns, false},
		{"list", "nodes", "", "", false},
	} {
		rev, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authzv1.SelfSubjectAccessReview{Spec: authzv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authzv1.ResourceAttributes{Verb: tc.verb, Resource: tc.resource, Subresource: tc.sub, Namespace: tc.namespace}}},
			metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if rev.Status.Allowed != tc.allowed {
			t.Errorf("responder may %s %s/%s in %q: %v, want %v", tc.verb, tc.resource, tc.sub, tc.namespace, rev.Status.Allowed, tc.allowed)
		}
	}
}

// k8sKubelet plays the kubelets of the test cluster for the collector pods:
// it watches them, checks each as the API server stored it, ends it as the
// behaviour of its node says, and confirms the deletion of a pod that was
// deleted before it ended (graceful deletion waits for the kubelet).
type k8sKubelet struct {
	cs     kubernetes.Interface
	behave map[string]string // node -> "ok" (default), "fail:TARGET", "pull"
	nodeOf map[string]string
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	seen    map[string]*corev1.Pod // name -> as created
	alive   map[string]bool
	maxLive int
	errs    []string
	// events are the watch events seen, for a failure's message.
	events []string
}

func startK8sKubelet(ctx context.Context, t *testing.T, cs kubernetes.Interface, behave, nodeOf map[string]string) *k8sKubelet {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	k := &k8sKubelet{cs: cs, behave: behave, nodeOf: nodeOf, cancel: cancel, done: make(chan struct{}),
		seen: map[string]*corev1.Pod{}, alive: map[string]bool{}}
	w, err := cs.CoreV1().Pods(kube.DefaultNamespace).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(k.done)
		defer w.Stop()
		for ev := range w.ResultChan() {
			if err := k.handle(ctx, ev); err != nil {
				k.fail("%v", err)
			}
		}
	}()
	return k
}

// stop waits until every collector pod the kubelet saw is gone from the API
// server, stops watching, reports what went wrong, and returns the pods as
// they were created.
func (k *k8sKubelet) stop(t *testing.T) []*corev1.Pod {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := k.cs.CoreV1().Pods(kube.DefaultNamespace).List(ctx, metav1.ListOptions{})
		return err == nil && len(list.Items) == 0, nil
	})
	if err != nil {
		t.Errorf("collector pods left in namespace %s: %v", kube.DefaultNamespace, err)
		// Remove them, so that the next run starts on an empty namespace.
		_ = k.cs.CoreV1().Pods(kube.DefaultNamespace).DeleteCollection(context.Background(),
			metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))}, metav1.ListOptions{})
	}
	k.cancel()
	<-k.done
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, e := range k.errs {
		t.Error(e)
	}
	var pods []*corev1.Pod
	for _, p := range k.seen {
		pods = append(pods, p)
	}
	slices.SortFunc(pods, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return pods
}

func (k *k8sKubelet) fail(format string, args ...any) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.errs = append(k.errs, fmt.Sprintf(format, args...))
}

// handle acts on one watch event of a collector pod.
func (k *k8sKubelet) handle(ctx context.Context, ev watch.Event) error {
	p, ok := ev.Object.(*corev1.Pod)
	if !ok {
		if ev.Type == watch.Error && ctx.Err() == nil {
			return fmt.Errorf("watch: %v", apierrors.FromObject(ev.Object))
		}
		return nil
	}
	k.mu.Lock()
	k.events = append(k.events, fmt.Sprintf("%s %s rv %s phase %s deleting %v", ev.Type, p.Name, p.ResourceVersion, p.Status.Phase, p.DeletionTimestamp != nil))
	_, known := k.seen[p.Name]
	switch ev.Type {
	case watch.Added:
		k.seen[p.Name] = p.DeepCopy()
		k.alive[p.Name] = true
		k.maxLive = max(k.maxLive, len(k.alive))
	case watch.Deleted:
		delete(k.alive, p.Name)
	case watch.Modified:
		if p.DeletionTimestamp != nil {
			// Deleted by the run, ending on its node: no longer one of
			// the run's pods at once (--parallel).
			delete(k.alive, p.Name)
		}
	}
	k.mu.Unlock()
	switch {
	case ev.Type == watch.Added && !known:
		for _, problem := range k.checkSpec(p) {
			k.fail("collector pod %s: %s", p.Name, problem)
		}
		return k.end(ctx, p)
	case ev.Type == watch.Modified && p.DeletionTimestamp != nil:
		// The pod never ran to its end (an image not pulled): the kubelet
		// kills its containers and confirms the deletion.
		err := k.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0)),
			Preconditions: &metav1.Preconditions{UID: ptr.To(p.UID)}})
		if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
			return fmt.Errorf("confirm the deletion of %s: %w", p.Name, err)
		}
	}
	return nil
}

// checkSpec returns what is wrong with a collector pod as the API server
// stored it.
func (k *k8sKubelet) checkSpec(p *corev1.Pod) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	s := p.Spec
	for _, tg := range strings.Split(p.Annotations[kube.AnnotationTargets], ",") {
		if k.nodeOf[tg] != s.NodeName {
			bad("target %s is on node %q, the pod on %q", tg, k.nodeOf[tg], s.NodeName)
		}
	}
	if s.NodeName == "" || !s.HostPID || s.RestartPolicy != corev1.RestartPolicyNever || s.ServiceAccountName != kube.DefaultServiceAccount {
		bad("node %q, hostPID %v, restart %s, service account %q", s.NodeName, s.HostPID, s.RestartPolicy, s.ServiceAccountName)
	}
	if !slices.ContainsFunc(s.Tolerations, func(tl corev1.Toleration) bool { return tl.Operator == corev1.TolerationOpExists && tl.Key == "" }) {
		bad("does not tolerate every taint: %+v", s.Tolerations)
	}
	if s.AutomountServiceAccountToken == nil || *s.AutomountServiceAccountToken {
		bad("a service account token is mounted")
	}
	hostPaths := map[string]string{}
	for _, v := range s.Volumes {
		if v.Projected != nil || v.Secret != nil {
			bad("volume %s carries credentials", v.Name)
		}
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	for _, want := range []string{kube.DefaultContainerdRoot, kube.DefaultContainerdState} {
		if !slices.Contains(slices.Collect(maps.Values(hostPaths)), want) {
			bad("the node's %s is not mounted", want)
		}
	}
	if len(s.Containers) != 1 {
		return append(problems, fmt.Sprintf("%d containers", len(s.Containers)))
	}
	c := s.Containers[0]
	if c.Image != k8sImage || c.SecurityContext == nil || !ptr.Deref(c.SecurityContext.Privileged, false) {
		bad("image %q, security context %+v", c.Image, c.SecurityContext)
	}
	for _, m := range c.VolumeMounts {
		if _, host := hostPaths[m.Name]; host && !m.ReadOnly {
			bad("the node's %s is mounted writable", hostPaths[m.Name])
		}
	}
	return problems
}

// end sets the status of a collector pod as its node's kubelet would once
// the collector ran its plan: each target's result line in the termination
// message, or a container that cannot start.
func (k *k8sKubelet) end(ctx context.Context, p *corev1.Pod) error {
	plan, err := collectorPlan(p)
	if err != nil {
		return err
	}
	b := k.behave[p.Spec.NodeName]
	now := metav1.Now()
	st := corev1.ContainerStatus{Name: "collector", Image: p.Spec.Containers[0].Image}
	if b == "pull" {
		p.Status.Phase = corev1.PodPending
		st.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image " + k8sImage}
	} else {
		var results []kube.Result
		exit := int32(0)
		for _, pt := range plan.Targets {
			r := kube.Result{Version: kube.ResultVersion, Target: pt.Target, ContainerID: pt.ContainerID, Output: pt.Output,
				Result: kube.Collected, CustodyHead: "sha256:head-of-" + pt.ContainerID}
			if b == "fail:"+pt.Target {
				r.Result, r.CustodyHead, r.Exit, r.Error, exit = kube.Failed, "", 2, "collect: container not found", 1
			}
			results = append(results, r)
		}
		p.Status.Phase = corev1.PodSucceeded
		if exit != 0 {
			p.Status.Phase = corev1.PodFailed
		}
		st.ContainerID = "containerd://" + strings.Repeat("f", 64)
		st.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: exit, StartedAt: now, FinishedAt: now,
			Reason: map[bool]string{true: "Completed", false: "Error"}[exit == 0], Message: string(kube.TerminationMessage(results))}
	}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{st}
	if _, err := k.cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
		return fmt.Errorf("set the status of %s: %w", p.Name, err)
	}
	return nil
}

// collectorPlan is a collector pod's plan, its $(VAR)s expanded as the
// kubelet expands them.
func collectorPlan(p *corev1.Pod) (kube.Plan, error) {
	cmd := p.Spec.Containers[0].Command
	i := slices.Index(cmd, "--plan")
	if i < 0 || i+1 == len(cmd) {
		return kube.Plan{}, fmt.Errorf("collector pod %s: no --plan in %q", p.Name, cmd)
	}
	return kube.ParsePlan(kube.Expand(cmd[i+1], kube.DownwardEnv(p.Namespace, p.Name, string(p.UID), p.Spec.NodeName, p.Spec.ServiceAccountName)))
}

// checkK8sReport checks k8s collect's report against the targets wanted,
// the collector pods' phases by node, and the pods the kubelet saw.
func checkK8sReport(t *testing.T, rep *kube.Report, group string, want, phases map[string]string, pods []*corev1.Pod) {
	t.Helper()
	if rep.Group != group {
		t.Errorf("report group %q, want %q", rep.Group, group)
	}
	got := map[string]string{}
	for _, r := range rep.Results {
		switch {
		case r.OK():
			got[r.Target] = "collected " + r.CustodyHead
			tg := kube.Target{Namespace: k8sShop}
			tg.Pod, tg.Container, _ = strings.Cut(strings.TrimPrefix(r.Target, k8sShop+"/"), "/")
			if r.Output != kube.Output(k8sTo, group, tg) {
				t.Errorf("%s went to %s, want %s", r.Target, r.Output, kube.Output(k8sTo, group, tg))
			}
		default:
			got[r.Target] = "failed " + r.Error
		}
	}
	if len(got) != len(want) {
		t.Errorf("report targets %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	for tg, w := range want {
		g := got[tg]
		if g != w && !(strings.HasPrefix(w, "failed ") && strings.HasPrefix(g, "failed ") && strings.Contains(g, strings.TrimPrefix(w, "failed "))) {
			t.Errorf("%s: %q, want %q", tg, g, w)
		}
	}
	uids := map[string]types.UID{}
	for _, p := range pods {
		uids[p.Name] = p.UID
	}
	gotPhases := map[string]string{}
	for _, p := range rep.Pods {
		gotPhases[p.Node] = p.Phase
		if !p.Deleted || p.DeleteError != "" || p.Namespace != kube.DefaultNamespace || uids[p.Name] != types.UID(p.UID) {
			t.Errorf("collector pod record %+v (the API server's uid %s)", p, uids[p.Name])
		}
	}
	if len(rep.Pods) != len(pods) || fmt.Sprint(gotPhases) != fmt.Sprint(phases) {
		t.Errorf("report: %d collector pods, phases %v; the kubelet saw %d, want phases %v", len(rep.Pods), gotPhases, len(pods), phases)
	}
}

// checkK8sOrchestration checks the orchestration record a collector pod
// gives each collect: the run, who the API server says ran it (the
// responder service account), and the collector pod itself.
func checkK8sOrchestration(t *testing.T, srv *testapiserver.Server, p *corev1.Pod, group string, targets, nodes int) {
	t.Helper()
	plan, err := collectorPlan(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, pt := range plan.Targets {
		i := slices.Index(pt.Args, "--orchestration")
		if i < 0 {
			t.Fatalf("%s: no --orchestration in %q", pt.Target, pt.Args)
		}
		var o bundle.Orchestration
		if err := json.Unmarshal([]byte(pt.Args[i+1]), &o); err != nil {
			t.Fatal(err)
		}
		user := "system:serviceaccount:" + kube.DefaultNamespace + ":" + kube.ResponderServiceAccount
		if o.Group != group || o.User != user || o.Context != "responder" || o.Server != srv.URL || o.Targets != targets || len(o.Nodes) != nodes ||
			!slices.Contains(o.CollectorPods, p.Name) || o.Image != k8sImage || o.Target.Node != p.Spec.NodeName ||
			o.Collector != (bundle.CollectorPod{Namespace: p.Namespace, Name: p.Name, UID: string(p.UID), Node: p.Spec.NodeName, ServiceAccount: kube.DefaultServiceAccount}) {
			t.Errorf("%s: orchestration record %+v", pt.Target, o)
		}
	}
}
