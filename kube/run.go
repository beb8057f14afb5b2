package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/ctrforensics/ctrforensics/forensic/bundle"
)

// RunOptions configure a cluster-wide collection.
type RunOptions struct {
	// Run is the orchestration record the bags share (Group set; Nodes,
	// CollectorPods, Targets, Namespace and Image are filled in here).
	Run       bundle.Orchestration
	Collector CollectorOptions
	// Parallel bounds the collector pods alive at once.
	Parallel int
	// Timeout bounds each collector pod, from its creation to its end.
	Timeout time.Duration
	// Poll is how often a collector pod's status is read.
	Poll time.Duration
	// Progress, when set, is told of each step (pod created, ended, deleted).
	Progress func(msg string)
}

// PodRecord is a collector pod the run created: what the run changed on the
// cluster.
type PodRecord struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
	Node      string `json:"node"`
	// Phase is the pod's last phase seen; Deleted says the API server
	// accepted its deletion, DeleteError why not.
	Phase       string `json:"phase"`
	Deleted     bool   `json:"deleted"`
	DeleteError string `json:"delete_error,omitempty"`
}

// Report is the outcome of a run: one result per target, in target order,
// and every collector pod created.
type Report struct {
	Group   string      `json:"bag_group"`
	Results []Result    `json:"results"`
	Pods    []PodRecord `json:"pods"`
}

// Failed counts the targets not collected.
func (r *Report) Failed() int {
	n := 0
	for _, res := range r.Results {
		if !res.OK() {
			n++
		}
	}
	return n
}

// terminalWaiting are container waiting reasons a collector never recovers
// from.
var terminalWaiting = []string{"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError",
	"CreateContainerError", "RunContainerError"}

// Collect collects targets through one collector pod per node and deletes
// the pods. Targets with a Problem are reported failed without a pod. It
// returns an error only for options it cannot run with; everything else is a
// per-target result.
func Collect(ctx context.Context, cs Client, targets []Target, opts RunOptions) (*Report, error) {
	if opts.Run.Group == "" || opts.Collector.Image == "" || opts.Collector.To == "" {
		return nil, errors.New("a run needs a bag group, an image and a destination")
	}
	opts = opts.withDefaults()
	nodes, byNode := groupByNode(targets)
	run := opts.Run
	run.System, run.Nodes, run.Targets = bundle.OrchestrationKubernetes, nodes, len(targets)
	run.Namespace, run.Image = opts.Collector.Namespace, opts.Collector.Image
	run.CollectorPods = make([]string, len(nodes))
	for i := range nodes {
		run.CollectorPods[i] = PodName(run.Group, i)
	}
	results := map[string]Result{}
	for _, t := range targets {
		if t.Problem != "" {
			results[t.Name()] = failure(t, t.Problem)
		}
	}
	rep := &Report{Group: run.Group}
	var mu sync.Mutex
	sem := make(chan struct{}, opts.Parallel)
	var wg sync.WaitGroup
	for i, node := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			res, rec := collectNode(ctx, cs, run, i, node, byNode[node], opts)
			mu.Lock()
			defer mu.Unlock()
			for _, r := range res {
				results[r.Target] = r
			}
			if rec != nil {
				rep.Pods = append(rep.Pods, *rec)
			}
		}()
	}
	wg.Wait()
	for _, t := range targets {
		rep.Results = append(rep.Results, results[t.Name()])
	}
	slices.SortFunc(rep.Pods, func(a, b PodRecord) int { return strings.Compare(a.Name, b.Name) })
	return rep, nil
}

func (o RunOptions) withDefaults() RunOptions {
	o.Collector = o.Collector.withDefaults()
	if o.Parallel < 1 {
		o.Parallel = 4
	}
	if o.Timeout <= 0 {
		o.Timeout = o.Collector.Deadline
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.Progress == nil {
		o.Progress = func(string) {}
	}
	return o
}

// groupByNode returns the nodes of the collectable targets, sorted, and the
// targets of each.
func groupByNode(targets []Target) ([]string, map[string][]Target) {
	byNode := map[string][]Target{}
	for _, t := range targets {
		if t.Problem == "" {
			byNode[t.Node] = append(byNode[t.Node], t)
		}
	}
	nodes := make([]string, 0, len(byNode))
	for n := range byNode {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	return nodes, byNode
}

// collectNode runs the i-th collector pod, on node, for targets, and deletes
// it. The record is nil when no pod was created.
func collectNode(ctx context.Context, cs Client, run bundle.Orchestration, i int, node string, targets []Target, opts RunOptions) ([]Result, *PodRecord) {
	failAll := func(msg string) []Result {
		out := make([]Result, len(targets))
		for j, t := range targets {
			out[j] = failure(t, msg)
		}
		return out
	}
	pod, err := CollectorPod(run, i, node, targets, opts.Collector)
	if err != nil {
		return failAll(err.Error()), nil
	}
	api := cs.CoreV1().Pods(pod.Namespace)
	created, err := api.Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return failAll(fmt.Sprintf("create collector pod %s/%s: %v", pod.Namespace, pod.Name, err)), nil
	}
	rec := &PodRecord{Namespace: created.Namespace, Name: created.Name, UID: string(created.UID), Node: node}
	opts.Progress(fmt.Sprintf("created collector pod %s/%s (uid %s) on node %s for %d target(s)", rec.Namespace, rec.Name, rec.UID, node, len(targets)))
	defer deletePod(ctx, cs, rec, opts)
	ended, err := waitPod(ctx, cs, created, opts)
	if ended != nil {
		rec.Phase = string(ended.Status.Phase)
	}
	if err != nil {
		return failAll(fmt.Sprintf("collector pod %s/%s: %v", rec.Namespace, rec.Name, err)), rec
	}
	opts.Progress(fmt.Sprintf("collector pod %s/%s ended: %s", rec.Namespace, rec.Name, rec.Phase))
	return podResults(ctx, cs, ended, targets, rec), rec
}

// deletePod deletes a collector pod, also when ctx is done.
func deletePod(ctx context.Context, cs Client, rec *PodRecord, opts RunOptions) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var pre *metav1.Preconditions
	if rec.UID != "" {
		pre = &metav1.Preconditions{UID: ptr.To(types.UID(rec.UID))}
	}
	err := cs.CoreV1().Pods(rec.Namespace).Delete(ctx, rec.Name, metav1.DeleteOptions{Preconditions: pre})
	if err != nil && !apierrors.IsNotFound(err) {
		rec.DeleteError = err.Error()
		opts.Progress(fmt.Sprintf("could not delete collector pod %s/%s: %v", rec.Namespace, rec.Name, err))
		return
	}
	rec.Deleted = true
	opts.Progress(fmt.Sprintf("deleted collector pod %s/%s", rec.Namespace, rec.Name))
}

// waitPod polls the pod until it ends (Succeeded or Failed), cannot start, or
// the timeout passes; it returns the last state seen.
func waitPod(ctx context.Context, cs Client, pod *corev1.Pod, opts RunOptions) (*corev1.Pod, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	tick := time.NewTicker(opts.Poll)
	defer tick.Stop()
	last := pod
	for {
		p, err := cs.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		switch {
		case err == nil:
			last = p
			if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				return p, nil
			}
			if reason, msg := stuck(p); reason != "" {
				return p, fmt.Errorf("cannot start: %s: %s", reason, msg)
			}
		case apierrors.IsNotFound(err):
			return last, errors.New("deleted by someone else before it ended")
		case ctx.Err() != nil:
		default:
			return last, fmt.Errorf("read its status: %w", err)
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return last, fmt.Errorf("did not end within %s (phase %s)", opts.Timeout, last.Status.Phase)
			}
			return last, ctx.Err()
		case <-tick.C:
		}
	}
}

// stuck returns the reason a pod's container waits for, when it will never
// start.
func stuck(p *corev1.Pod) (reason, msg string) {
	for _, st := range p.Status.ContainerStatuses {
		if w := st.State.Waiting; w != nil && slices.Contains(terminalWaiting, w.Reason) {
			return w.Reason, w.Message
		}
	}
	return "", ""
}

// podResults reads the results of an ended collector pod: its termination
// message, then its log for the targets the message had no room for.
func podResults(ctx context.Context, cs Client, pod *corev1.Pod, targets []Target, rec *PodRecord) []Result {
	found := map[string]Result{}
	var term *corev1.ContainerStateTerminated
	for _, st := range pod.Status.ContainerStatuses {
		if st.State.Terminated != nil {
			term = st.State.Terminated
			found = ParseResults([]byte(term.Message))
		}
	}
	end := endState(pod, term)
	if len(found) < len(targets) {
		log, err := podLog(ctx, cs, pod)
		if err != nil {
			end += "; its log could not be read: " + err.Error()
		}
		for k, v := range ParseResults(log) {
			found[k] = v
		}
	}
	out := make([]Result, len(targets))
	for i, t := range targets {
		r, ok := found[t.Name()]
		if !ok {
			r = failure(t, "the collector pod ended without a result for it ("+end+")")
		}
		r.Node, r.CollectorPod, r.CollectorUID = rec.Node, rec.Namespace+"/"+rec.Name, rec.UID
		out[i] = r
	}
	return out
}

// endState describes how a pod ended.
func endState(pod *corev1.Pod, term *corev1.ContainerStateTerminated) string {
	s := "phase " + string(pod.Status.Phase)
	if term != nil {
		s += fmt.Sprintf(", exit %d", term.ExitCode)
		if term.Reason != "" {
			s += " " + term.Reason
		}
	}
	return s
}

// podLog reads a collector pod's log (its result lines and collect's notes).
func podLog(ctx context.Context, cs Client, pod *corev1.Pod) ([]byte, error) {
	rc, err := cs.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: "collector"}).Stream(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, 16<<20))
}
