package integration

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ctrforensics/ctrforensics/forensic/bundle"
	"github.com/ctrforensics/ctrforensics/internal/testdaemon"
	"github.com/ctrforensics/ctrforensics/internal/testobjstore"
	"github.com/ctrforensics/ctrforensics/kube"
)

// TestK8sCollector runs a collector pod's own command, as the kubelet would
// run it on the node (its $(VAR)s expanded from the downward API), against
// the harness's containerd with CRI pods: each target's bag is sealed,
// verifies, carries the run's Bag-Group-Identifier and the orchestration
// record naming the collector pod; a target that is not there fails alone;
// the results are on stdout and in the termination message. The bags go to
// the test S3 server, with the credentials a pod gets from its --s3-secret.
func TestK8sCollector(t *testing.T) {
	var dir string
	t.Cleanup(func() {
		if left := mountsUnder(t, dir); dir != "" && left > 0 {
			t.Errorf("%d mounts left under %s", left, dir)
		}
	})
	ch := startCRI(t)
	dir = ch.daemon.Dir
	srv := startS3(t)
	out := "s3://plain/ir-e2e"
	group := "20261129t083000z-e2e"
	node := "node-a"
	target := func(container, id string) kube.Target {
		return kube.Target{Namespace: "shop", Pod: "web-1", PodUID: "0b5c4a5e-web-1", Container: container, ContainerID: id, Node: node}
	}
	targets := []kube.Target{target("php", ch.ids["web-1/php"]), target("sidecar", ch.ids["web-1/sidecar"]), target("gone", "deadbeef00")}
	run := bundle.Orchestration{System: bundle.OrchestrationKubernetes, Group: group, Started: "2026-11-29T08:30:00Z",
		Context: "e2e", User: "alice", Namespace: kube.DefaultNamespace, Image: "ctrforensics:test", Nodes: []string{node},
		CollectorPods: []string{kube.PodName(group, 0)}, Targets: len(targets)}
	pod, err := kube.CollectorPod(run, 0, node, targets, kube.CollectorOptions{Image: "ctrforensics:test", Binary: h.bin,
		ContainerdAddress: ch.daemon.Address, ContainerdNamespace: testdaemon.CRINamespace, To: out, NodeParallel: 2,
		CollectArgs: []string{"--examiner=alice", "--s3-path-style"}})
	if err != nil {
		t.Fatal(err)
	}
	termLog := filepath.Join(t.TempDir(), "termination-log")
	env := kube.DownwardEnv(pod.Namespace, pod.Name, "uid-collector-e2e", node, pod.Spec.ServiceAccountName)
	var argv []string
	for _, a := range pod.Spec.Containers[0].Command {
		argv = append(argv, kube.Expand(a, env))
	}
	argv[slices.Index(argv, kube.TerminationLog)] = termLog
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(append(os.Environ(), srv.Env()...), "TMPDIR="+t.TempDir()) // the pod's /tmp is an emptyDir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Fatalf("collector: %v (want exit 1: one target is not there)\nstdout: %s\nstderr: %s", err, stdout, stderr.String())
	}
	results := kube.ParseResults(stdout)
	msg, err := os.ReadFile(termLog)
	if err != nil {
		t.Fatal(err)
	}
	if fromMsg := kube.ParseResults(msg); len(fromMsg) != 3 || len(results) != 3 {
		t.Errorf("results: %d on stdout, %d in the termination message, want 3:\n%s\n%s", len(results), len(fromMsg), stdout, msg)
	}
	if r := results["shop/web-1/gone"]; r.OK() || r.Exit != 2 || !strings.Contains(r.Error, "deadbeef00") {
		t.Errorf("missing container's result: %+v", r)
	}
	for _, tg := range targets[:2] {
		r := results[tg.Name()]
		if !r.OK() || !strings.HasPrefix(r.CustodyHead, "sha256:") || r.Output != kube.Output(out, group, tg) {
			t.Errorf("%s: %+v\nstderr: %s", tg.Name(), r, stderr.String())
			continue
		}
		checkK8sBag(t, srv, r, tg, group, pod.Name)
	}
}

// checkK8sBag verifies a collector's bag and checks its group and
// orchestration record.
func checkK8sBag(t *testing.T, srv *testobjstore.Server, r kube.Result, tg kube.Target, group, podName string) {
	t.Helper()
	tmp := t.TempDir()
	if v := s3CLI(t, srv, tmp, nil, "verify", "--s3-path-style", r.Output); v.code != 0 || !strings.Contains(v.stdout, "VALID") {
		t.Errorf("verify %s: exit %d\n%s%s", r.Output, v.code, v.stdout, v.stderr)
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.Output, "s3://"), "/")
	obj, err := srv.Client().GetObject(h.ctx(t), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Body.Close()
	dir := t.TempDir()
	untar := exec.Command("tar", "-xzf", "-", "-C", dir)
	untar.Stdin = obj.Body
	if b, err := untar.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, b)
	}
	bags, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(bags) != 1 {
		t.Fatalf("archive holds %v", bags)
	}
	info, err := os.ReadFile(filepath.Join(bags[0], bundle.BagInfo))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(info), "\nBag-Group-Identifier: "+group+"\n") {
		t.Errorf("bag-info.txt lacks the group:\n%s", info)
	}
	b, err := os.ReadFile(filepath.Join(bags[0], bundle.AcquisitionFile))
	if err != nil {
		t.Fatal(err)
	}
	var acq bundle.Acquisition
	if err := json.Unmarshal(b, &acq); err != nil {
		t.Fatal(err)
	}
	o := acq.Orchestration
	if acq.BagGroup != group || o == nil || o.Group != group || o.Target.ContainerID != tg.ContainerID || o.Target.Container != tg.Container ||
		o.Collector != (bundle.CollectorPod{Namespace: kube.DefaultNamespace, Name: podName, UID: "uid-collector-e2e", Node: "node-a",
			ServiceAccount: kube.DefaultServiceAccount}) || o.Context != "e2e" || o.User != "alice" || !slices.Equal(o.Nodes, []string{"node-a"}) {
		t.Errorf("acquisition bag group %q, orchestration %+v", acq.BagGroup, o)
	}
	if acq.Container.ID != tg.ContainerID || acq.Pod == nil || acq.Pod.Container != tg.Container || acq.Examiner != "alice" {
		t.Errorf("acquisition container %+v pod %+v examiner %q", acq.Container, acq.Pod, acq.Examiner)
	}
}
