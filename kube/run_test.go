package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/ctrforensics/ctrforensics/forensic/bundle"
)

// kubelet plays the nodes for the fake API server: it gives each created pod
// a UID, and ends each pod as its behaviour for the pod's node says, with the
// results a collector would put in its termination message.
type kubelet struct {
	cs *fake.Clientset
	// behave maps a node to what its collector does: "ok", "fail:TARGET"
	// (that target's collect fails), "pull" (the image cannot be pulled),
	// "silent" (ends without results).
	behave map[string]string

	mu      sync.Mutex
	created []*corev1.Pod
	alive   map[string]bool
	maxLive int
}

func newKubelet(behave map[string]string) *kubelet {
	k := &kubelet{cs: fake.NewClientset(), behave: behave, alive: map[string]bool{}}
	k.cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pod := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		pod.UID = types.UID("uid-" + pod.Name)
		k.mu.Lock()
		defer k.mu.Unlock()
		k.created = append(k.created, pod.DeepCopy())
		k.alive[pod.Name] = true
		k.maxLive = max(k.maxLive, len(k.alive))
		return false, nil, nil
	})
	k.cs.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		k.mu.Lock()
		defer k.mu.Unlock()
		delete(k.alive, a.(k8stesting.DeleteAction).GetName())
		return false, nil, nil
	})
	return k
}

// run ends the collector pods as they appear, until ctx is done.
func (k *kubelet) run(ctx context.Context, t *testing.T) {
	done := map[string]bool{}
	for ctx.Err() == nil {
		pods, err := k.cs.CoreV1().Pods(DefaultNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if done[p.Name] {
				continue
			}
			done[p.Name] = true
			k.end(p, planOf(t, p))
			if _, err := k.cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
				t.Errorf("update status: %v", err)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// end sets the status of a collector pod that ran plan.
func (k *kubelet) end(p *corev1.Pod, plan Plan) {
	b := k.behave[p.Spec.NodeName]
	if b == "pull" {
		p.Status.Phase = corev1.PodPending
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "collector", State: corev1.ContainerState{
			Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image"}}}}
		return
	}
	var results []Result
	exit := int32(0)
	for _, pt := range plan.Targets {
		r := Result{Version: ResultVersion, Target: pt.Target, ContainerID: pt.ContainerID, Output: pt.Output,
			Result: Collected, CustodyHead: "sha256:head-of-" + pt.ContainerID}
		if b == "fail:"+pt.Target {
			r.Result, r.CustodyHead, r.Exit, r.Error, exit = Failed, "", 2, "collect: container not found", 1
		}
		results = append(results, r)
	}
	msg := string(TerminationMessage(results))
	if b == "silent" {
		msg, exit = "", 137
	}
	p.Status.Phase = corev1.PodSucceeded
	if exit != 0 {
		p.Status.Phase = corev1.PodFailed
	}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "collector", State: corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{ExitCode: exit, Message: msg}}}}
}

func target(ns, pod, container, id, node string) Target {
	return Target{Namespace: ns, Pod: pod, PodUID: "uid-" + pod, Container: container, ContainerID: id, Node: node}
}

// TestCollectOrchestration runs whole collections against the fake API
// server, the kubelet simulated: one collector pod per node with that node's
// targets, results gathered from the termination messages, every pod
// deleted, failures per target, the overall limit of pods at once.
func TestCollectOrchestration(t *testing.T) {
	a1, a2 := target("shop", "web-1", "php", "aaaa01", "node-a"), target("shop", "web-1", "sidecar", "aaaa02", "node-a")
	b1 := target("shop", "web-2", "php", "bbbb01", "node-b")
	c1 := target("shop", "web-3", "php", "cccc01", "node-c")
	unresolved := Target{Namespace: "shop", Pod: "legacy", Container: "app", Node: "node-d", Problem: "the container runs on docker, not containerd (docker://1)"}
	all := []Target{a1, a2, b1, c1, unresolved}
	ok := func(t Target) string { return "collected sha256:head-of-" + t.ContainerID }
	tests := []struct {
		name     string
		behave   map[string]string
		parallel int
		want     map[string]string // target -> "collected HEAD" or "failed ERROR-PREFIX"
		phases   map[string]string // node -> last phase
	}{
		{"all collected, one pod at a time", map[string]string{}, 1,
			map[string]string{a1.Name(): ok(a1), a2.Name(): ok(a2), b1.Name(): ok(b1), c1.Name(): ok(c1)},
			map[string]string{"node-a": "Succeeded", "node-b": "Succeeded", "node-c": "Succeeded"}},
		{"one target fails, the others do not", map[string]string{"node-a": "fail:" + a2.Name()}, 4,
			map[string]string{a1.Name(): ok(a1), a2.Name(): "failed collect: container not found", b1.Name(): ok(b1), c1.Name(): ok(c1)},
			map[string]string{"node-a": "Failed", "node-b": "Succeeded", "node-c": "Succeeded"}},
		{"image not pulled, pod ended without results", map[string]string{"node-b": "pull", "node-c": "silent"}, 2,
			map[string]string{a1.Name(): ok(a1), a2.Name(): ok(a2),
				b1.Name(): "failed collector pod ctrforensics/" + PodName("g1", 1) + ": cannot start: ImagePullBackOff: Back-off pulling image",
				c1.Name(): "failed the collector pod ended without a result for it (phase Failed, exit 137)"},
			map[string]string{"node-a": "Succeeded", "node-b": "Pending", "node-c": "Failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newKubelet(tt.behave)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			go k.run(ctx, t)
			rep, err := Collect(ctx, k.cs, all, RunOptions{Run: testRunGroup("g1"), Collector: testCollectorOptions(),
				Parallel: tt.parallel, Poll: 5 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			checkResults(t, rep, all, tt.want)
			checkPods(t, k, rep, tt.parallel, tt.phases)
			if left, _ := k.cs.CoreV1().Pods(DefaultNamespace).List(ctx, metav1.ListOptions{}); len(left.Items) != 0 {
				t.Errorf("%d collector pods left", len(left.Items))
			}
		})
	}
}

func testRunGroup(group string) bundle.Orchestration {
	r := testRun()
	r.Group = group
	return r
}

// checkResults checks one result per target, in target order, with its
// node, collector pod and output.
func checkResults(t *testing.T, rep *Report, targets []Target, want map[string]string) {
	t.Helper()
	if len(rep.Results) != len(targets) {
		t.Fatalf("%d results for %d targets", len(rep.Results), len(targets))
	}
	failed := 0
	for i, r := range rep.Results {
		tg := targets[i]
		if r.Target != tg.Name() {
			t.Errorf("result %d is %s, want %s", i, r.Target, tg.Name())
		}
		w, ok := want[tg.Name()]
		if tg.Problem != "" {
			w, ok = "failed "+tg.Problem, true
		}
		got := r.Result + " " + r.CustodyHead + r.Error
		if !ok || !strings.HasPrefix(got, w) {
			t.Errorf("%s: %q, want %q", tg.Name(), got, w)
		}
		if !r.OK() {
			failed++
			continue
		}
		if r.Node != tg.Node || r.CollectorPod == "" || r.CollectorUID != "uid-"+strings.TrimPrefix(r.CollectorPod, DefaultNamespace+"/") ||
			r.Output != Output("s3://evidence/ir-42/", "g1", tg) {
			t.Errorf("%s: node %s pod %s uid %s output %s", tg.Name(), r.Node, r.CollectorPod, r.CollectorUID, r.Output)
		}
	}
	if rep.Failed() != failed {
		t.Errorf("Failed() = %d, want %d", rep.Failed(), failed)
	}
}

// checkPods checks the collector pods: one per node with targets (none for
// an unresolved target), each with its node's targets only, each deleted,
// never more alive at once than allowed.
func checkPods(t *testing.T, k *kubelet, rep *Report, parallel int, phases map[string]string) {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.maxLive > parallel {
		t.Errorf("%d collector pods alive at once, limit %d", k.maxLive, parallel)
	}
	var nodes []string
	for _, p := range k.created {
		nodes = append(nodes, p.Spec.NodeName)
		want := map[string]int{"node-a": 2, "node-b": 1, "node-c": 1}[p.Spec.NodeName]
		checkCollectorPod(t, p, p.Spec.NodeName, want)
		for _, pt := range planOf(t, p).Targets {
			if !strings.Contains(p.Annotations[AnnotationTargets], pt.Target) {
				t.Errorf("pod %s runs %s, not in its annotation", p.Name, pt.Target)
			}
		}
	}
	slices.Sort(nodes)
	if !slices.Equal(nodes, []string{"node-a", "node-b", "node-c"}) {
		t.Errorf("collector pods on %v", nodes)
	}
	if len(rep.Pods) != 3 {
		t.Fatalf("report lists %d pods", len(rep.Pods))
	}
	for _, p := range rep.Pods {
		if !p.Deleted || p.UID != "uid-"+p.Name || p.Phase != phases[p.Node] {
			t.Errorf("pod record %+v (want phase %s)", p, phases[p.Node])
		}
	}
}

// TestCollectCancelled: an interrupted run still deletes the pods it
// created and reports every target failed.
func TestCollectCancelled(t *testing.T) {
	k := newKubelet(nil) // no kubelet: pods never end
	ctx, cancel := context.WithCancel(context.Background())
	k.cs.PrependReactor("get", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		cancel()
		return false, nil, nil
	})
	targets := []Target{target("shop", "web-1", "php", "aaaa01", "node-a")}
	rep, err := Collect(ctx, k.cs, targets, RunOptions{Run: testRunGroup("g2"), Collector: testCollectorOptions(), Poll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed() != 1 || len(rep.Pods) != 1 || !rep.Pods[0].Deleted {
		t.Errorf("report %+v", rep)
	}
	if left, _ := k.cs.CoreV1().Pods(DefaultNamespace).List(context.Background(), metav1.ListOptions{}); len(left.Items) != 0 {
		t.Errorf("%d collector pods left", len(left.Items))
	}
}

// TestRunPlan: a collector runs at most Parallel collects at once, reads
// each one's JSON summary, and reports a failing one with its last error
// line.
func TestRunPlan(t *testing.T) {
	var mu sync.Mutex
	live, maxLive := 0, 0
	exec := func(_ context.Context, args []string) ([]byte, []byte, int, error) {
		mu.Lock()
		live++
		maxLive = max(maxLive, live)
		mu.Unlock()
		time.Sleep(10 * time.Millisecond)
		mu.Lock()
		live--
		mu.Unlock()
		id := args[slices.Index(args, "collect")+1]
		if id == "bad" {
			return nil, []byte("note: x\nctrforensics: collect bad: not found\n"), 2, nil
		}
		out, _ := json.Marshal(map[string]any{"output": "s3://b/" + id, "custody_head": "sha256:" + id})
		return out, nil, 0, nil
	}
	plan := Plan{Parallel: 2}
	for _, id := range []string{"a", "b", "bad", "c"} {
		plan.Targets = append(plan.Targets, PlanTarget{Target: "ns/p/" + id, ContainerID: id, Args: []string{"collect", id}})
	}
	var emitted []string
	res := RunPlan(context.Background(), plan, exec, func(r Result) { emitted = append(emitted, r.Target) })
	if maxLive != 2 || len(emitted) != 4 {
		t.Errorf("max %d at once, %d emitted", maxLive, len(emitted))
	}
	got := fmt.Sprint(res[0].Result, res[0].CustodyHead, res[0].Output, " ", res[2].Result, res[2].Exit, res[2].Error)
	if want := "collectedsha256:as3://b/a failed2ctrforensics: collect bad: not found"; got != want {
		t.Errorf("results %q, want %q", got, want)
	}
}

// TestTerminationMessage: only whole result lines, within the kubelet's
// limit, and they parse back.
func TestTerminationMessage(t *testing.T) {
	var results []Result
	for i := range 40 {
		results = append(results, Result{Version: ResultVersion, Target: fmt.Sprintf("ns/pod-%d/c", i), Result: Collected,
			CustodyHead: "sha256:" + strings.Repeat("0", 64)})
	}
	msg := TerminationMessage(results)
	if len(msg) > TerminationMessageMax || len(msg) == 0 || msg[len(msg)-1] != '\n' {
		t.Fatalf("message of %d bytes", len(msg))
	}
	parsed := ParseResults(append([]byte("collect 1234: note: a log line\n{\"not\":\"a result\"}\n"), msg...))
	if n := strings.Count(string(msg), "\n"); len(parsed) != n || n >= 40 {
		t.Errorf("%d results parsed from %d lines", len(parsed), n)
	}
}
