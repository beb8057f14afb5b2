package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/kube"
)

func k8sCommand() *cli.Command {
	return &cli.Command{
		Name:  "k8s",
		Usage: "collect pods' containers across a Kubernetes cluster (also the kubectl plugin kubectl-ctrforensics)",
		Description: "Installed as kubectl-ctrforensics on PATH (a link to this binary), it is the kubectl plugin\n" +
			"`kubectl ctrforensics collect POD -n NS --to s3://BUCKET/PREFIX --image IMAGE`.",
		Commands: []*cli.Command{k8sCollectCommand(kubeFlags()...), k8sManifestCommand(), k8sCollectorCommand()},
	}
}

// kubeFlags are kubectl's flags for the cluster and namespace.
func kubeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "kubeconfig", Usage: "kubeconfig `FILE` (default: KUBECONFIG, else ~/.kube/config)"},
		&cli.StringFlag{Name: "context", Usage: "kubeconfig context (default: its current context)"},
		&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Usage: "Kubernetes namespace of the pods (default: the context's)"},
	}
}

// collectorFlags shape the collector pods (collect and manifest).
func collectorFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "image", Usage: "`IMAGE` holding this ctrforensics binary, which the collector pods run"},
		&cli.StringFlag{Name: "image-binary", Value: kube.DefaultBinary, Usage: "path of ctrforensics in the image"},
		&cli.StringFlag{Name: "image-pull-policy", Value: string(corev1.PullIfNotPresent), Usage: "Always, IfNotPresent or Never"},
		&cli.StringFlag{Name: "collector-namespace", Value: kube.DefaultNamespace, Usage: "namespace of the collector pods; it must allow privileged pods (the manifest command prints one that does)"},
		&cli.StringFlag{Name: "service-account", Value: kube.DefaultServiceAccount, Usage: "service account of the collector pods"},
		&cli.StringFlag{Name: "s3-secret", Usage: "Secret of the collector namespace whose keys become the collectors' environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL...)"},
		&cli.StringFlag{Name: "containerd-address", Value: kube.DefaultContainerdAddress, Usage: "containerd's socket on the nodes (k3s: /run/k3s/containerd/containerd.sock)"},
		&cli.StringFlag{Name: "containerd-root", Value: kube.DefaultContainerdRoot, Usage: "containerd's root on the nodes"},
		&cli.StringFlag{Name: "containerd-state", Value: kube.DefaultContainerdState, Usage: "containerd's state directory on the nodes (its tasks)"},
		&cli.StringFlag{Name: "containerd-namespace", Value: kube.DefaultContainerdNamespace, Usage: "containerd namespace of the pods' containers"},
		&cli.StringFlag{Name: "kubelet-pods", Value: kube.DefaultKubeletPods, Usage: "the kubelet's pod directory on the nodes (volumes, /etc/hosts)"},
		&cli.IntFlag{Name: "node-parallel", Value: 1, Usage: "targets a collector pod collects at once on its node"},
		&cli.DurationFlag{Name: "timeout", Value: time.Hour, Usage: "how long a collector pod may take, start to end"},
	}
}

// k8sCollectCommand is k8s collect, with the cluster's flags (kubeFlags)
// given, or inherited from the kubectl plugin's root.
func k8sCollectCommand(cluster ...cli.Flag) *cli.Command {
	return &cli.Command{
		Name:      "collect",
		Usage:     "collect pods' containers through one short-lived collector pod per node, into object storage",
		ArgsUsage: "[POD...]",
		Description: "Resolves each pod to its node and containerd container ID (from the pod's status), creates one\n" +
			"privileged collector pod per node (pinned to it, host PID namespace, containerd's socket and root\n" +
			"read-only) running `ctrforensics collect ... -o s3://BUCKET/PREFIX/GROUP/NS/POD/CONTAINER.tar.gz`\n" +
			"for each target there, waits, reports each target, and deletes the collector pods. All bags of the\n" +
			"run share a Bag-Group-Identifier and record the run. Exit 1 when a target failed.",
		Flags: append(append(cluster,
			&cli.StringFlag{Name: "selector", Aliases: []string{"l"}, Usage: "label `SELECTOR` of the pods (instead of names)"},
			&cli.StringFlag{Name: "container", Aliases: []string{"c"}, Usage: "the container of each pod (default: the pod's default container)"},
			&cli.BoolFlag{Name: "all-containers", Usage: "every container of each pod (init and ephemeral ones too)"},
			&cli.StringFlag{Name: "to", Usage: "where the bags go (required): s3://BUCKET/PREFIX"},
			&cli.IntFlag{Name: "parallel", Value: 4, Usage: "collector pods (nodes) at once"},
			&cli.StringFlag{Name: "bag-group", Usage: "Bag-Group-Identifier of the run's bags (default: the UTC time and a random suffix)"},
			&cli.StringFlag{Name: "case", Usage: "case identifier (each bag's External-Identifier)"},
			&cli.StringFlag{Name: "examiner", Value: defaultExaminer(), Usage: "who collects (each bag's first custody event)"},
			&cli.StringFlag{Name: "note", Usage: "free text recorded with each acquisition"},
			&cli.BoolFlag{Name: "pause", Usage: "pause each running task during its capture (recorded; resumed afterwards)"},
			&cli.BoolFlag{Name: "volumes", Usage: "also archive the content of the containers' volumes"},
			&cli.StringSliceFlag{Name: "collect-flag", Usage: "`FLAG` given to every collect as is (repeatable), e.g. --collect-flag=--include-image-layers"},
			formatFlag(),
		), collectorFlags()...),
		Action: runK8sCollect,
	}
}

func runK8sCollect(ctx context.Context, c *cli.Command) error {
	sel := kube.Selection{Pods: c.Args().Slice(), Selector: c.String("selector"), Container: c.String("container"), AllContainers: c.Bool("all-containers")}
	if err := checkK8sCollect(c, sel); err != nil {
		return err
	}
	copts, err := collectorOptions(c)
	if err != nil {
		return err
	}
	cluster, err := kube.Connect(kube.Config{Kubeconfig: c.String("kubeconfig"), Context: c.String("context"), Namespace: c.String("namespace")})
	if err != nil {
		return err
	}
	sel.Namespace = cluster.Namespace
	targets, err := kube.Resolve(ctx, cluster.Client, sel)
	if err != nil {
		return err
	}
	run := cluster.Describe(ctx)
	run.Started = forensic.FormatTime(time.Now())
	if run.Group = c.String("bag-group"); run.Group == "" {
		run.Group = newBagGroup(time.Now())
	}
	errw := c.Root().ErrWriter
	fmt.Fprintf(errw, "bag group %s: %d target(s)\n", run.Group, len(targets))
	rep, err := kube.Collect(ctx, cluster.Client, targets, kube.RunOptions{Run: run, Collector: copts, Parallel: int(c.Int("parallel")),
		Timeout: c.Duration("timeout"), Progress: func(msg string) { fmt.Fprintln(errw, msg) }})
	if err != nil {
		return err
	}
	if err := printReport(c.Root().Writer, c.String("format"), rep); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err() // interrupted: the collector pods were deleted all the same (listed above)
	}
	if n := rep.Failed(); n > 0 {
		return &findingsError{msg: fmt.Sprintf("%d of %d target(s) not collected", n, len(rep.Results))}
	}
	return nil
}

// checkK8sCollect checks the command line before anything is asked of the
// cluster.
func checkK8sCollect(c *cli.Command, sel kube.Selection) error {
	switch {
	case len(sel.Pods) == 0 && sel.Selector == "":
		return fmt.Errorf("name the pods, or select them with -l (see `%s --help`)", c.FullName())
	case len(sel.Pods) > 0 && sel.Selector != "":
		return errors.New("give pod names or -l, not both")
	case sel.Container != "" && sel.AllContainers:
		return errors.New("give -c or --all-containers, not both")
	}
	if err := required(c, "to", "image"); err != nil {
		return err
	}
	if !strings.HasPrefix(c.String("to"), "s3://") || len(strings.TrimPrefix(c.String("to"), "s3://")) == 0 {
		return fmt.Errorf("--to %q: give s3://BUCKET/PREFIX (a bag written inside a collector pod would go with it)", c.String("to"))
	}
	if f := c.String("format"); f != "table" && f != "json" {
		return fmt.Errorf("--format %q: give table or json", f)
	}
	return checkOneLine(c, "case", "examiner", "note", "bag-group")
}

// collectorOptions reads the collector flags, and the collect flags every
// collector gives collect.
func collectorOptions(c *cli.Command) (kube.CollectorOptions, error) {
	o := kube.CollectorOptions{Image: c.String("image"), Binary: c.String("image-binary"), PullPolicy: corev1.PullPolicy(c.String("image-pull-policy")),
		Namespace: c.String("collector-namespace"), ServiceAccount: c.String("service-account"), S3Secret: c.String("s3-secret"),
		ContainerdAddress: c.String("containerd-address"), ContainerdRoot: c.String("containerd-root"), ContainerdState: c.String("containerd-state"),
		ContainerdNamespace: c.String("containerd-namespace"), KubeletPods: c.String("kubelet-pods"),
		To: c.String("to"), NodeParallel: int(c.Int("node-parallel")), Deadline: c.Duration("timeout")}
	switch o.PullPolicy {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		return o, fmt.Errorf("--image-pull-policy %q: give Always, IfNotPresent or Never", o.PullPolicy)
	}
	for _, f := range []string{"case", "examiner", "note"} {
		if c.IsSet(f) || f == "examiner" {
			if v := c.String(f); v != "" {
				o.CollectArgs = append(o.CollectArgs, "--"+f+"="+v)
			}
		}
	}
	for _, f := range []string{"pause", "volumes"} {
		if c.Bool(f) {
			o.CollectArgs = append(o.CollectArgs, "--"+f)
		}
	}
	o.CollectArgs = append(o.CollectArgs, c.StringSlice("collect-flag")...)
	return o, nil
}

// newBagGroup makes a run's Bag-Group-Identifier: the UTC time, sortable,
// and a random suffix.
func newBagGroup(now time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return now.UTC().Format("20060102t150405z") + "-" + hex.EncodeToString(b)
}

// printReport prints one row per target and the collector pods the run
// created, or the whole report as one JSON object.
func printReport(w io.Writer, format string, rep *kube.Report) error {
	if format == "json" {
		b, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tNODE\tRESULT\tOUTPUT\tCUSTODY-HEAD\tERROR")
	for _, r := range rep.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Target, dash(r.Node), r.Result, dash(r.Output), dash(r.CustodyHead), dash(oneLine(r.Error)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "bag group: %s\n", rep.Group)
	for _, p := range rep.Pods {
		deleted := "deleted"
		if !p.Deleted {
			deleted = "NOT deleted: " + p.DeleteError
		}
		fmt.Fprintf(w, "collector pod %s/%s (uid %s) on %s: %s, %s\n", p.Namespace, p.Name, p.UID, p.Node, p.Phase, deleted)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func k8sManifestCommand() *cli.Command {
	return &cli.Command{
		Name:  "manifest",
		Usage: "print the namespace, service accounts and RBAC that collect needs, and the collector pod template, as YAML",
		Description: "For an administrator to review and apply once, piped to `kubectl apply -f -` (the last\n" +
			"document, the collector pod template with placeholders, is for review: leave it out of apply).",
		Flags: collectorFlags(),
		Action: func(_ context.Context, c *cli.Command) error {
			if _, err := args(c); err != nil {
				return err
			}
			o, err := collectorOptions(c)
			if err != nil {
				return err
			}
			objs, err := kube.Manifest(o)
			if err != nil {
				return err
			}
			y, err := kube.YAML(objs)
			if err != nil {
				return err
			}
			_, err = c.Root().Writer.Write(y)
			return err
		},
	}
}

// k8sCollectorCommand is what a collector pod runs.
func k8sCollectorCommand() *cli.Command {
	return &cli.Command{
		Name:   "collector",
		Usage:  "run a collector pod's plan (what k8s collect starts on each node)",
		Hidden: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "plan", Usage: "the plan, JSON"},
			&cli.StringFlag{Name: "termination-log", Usage: "file for the results (the container's termination message)"},
		},
		Action: runCollector,
	}
}

func runCollector(ctx context.Context, c *cli.Command) error {
	plan, err := kube.ParsePlan(c.String("plan"))
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this binary: %w", err)
	}
	out, errw := c.Root().Writer, c.Root().ErrWriter
	results := kube.RunPlan(ctx, plan, execSelf(self, errw), func(r kube.Result) {
		b, _ := json.Marshal(r)
		fmt.Fprintf(out, "%s\n", b)
	})
	if p := c.String("termination-log"); p != "" {
		if err := os.WriteFile(p, kube.TerminationMessage(results), 0o644); err != nil {
			fmt.Fprintf(errw, "note: termination message: %v (the results are in the log)\n", err)
		}
	}
	failed := 0
	for _, r := range results {
		if !r.OK() {
			failed++
		}
	}
	if failed > 0 {
		return &findingsError{msg: fmt.Sprintf("%d of %d target(s) not collected", failed, len(results))}
	}
	return nil
}

// execSelf runs this binary with a command line: collect in a process of its
// own, so that one target's failure or crash is its own; SIGTERM (the pod's
// deletion) is passed on, and collect cleans up. Its stderr goes to errw
// (the pod's log), each line prefixed with the target's container ID.
func execSelf(self string, errw io.Writer) kube.Exec {
	return func(ctx context.Context, args []string) ([]byte, []byte, int, error) {
		cmd := exec.CommandContext(ctx, self, args...)
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 2 * time.Minute
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		prefix := "collect: "
		if len(args) > 0 {
			prefix = "collect " + truncID(targetOf(args)) + ": "
		}
		for _, l := range strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n") {
			if l != "" {
				fmt.Fprintln(errw, prefix+l)
			}
		}
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return stdout.Bytes(), stderr.Bytes(), exitErr.ExitCode(), nil
		}
		if err != nil {
			return nil, nil, 0, err
		}
		return stdout.Bytes(), stderr.Bytes(), 0, nil
	}
}

// targetOf is the container argument of a collect command line.
func targetOf(args []string) string {
	for i, a := range args {
		if a == "collect" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return "?"
}

// k8sHint is hint's advice for the errors of k8s collect.
func k8sHint(err error) string {
	var (
		noPod  *kube.PodNotFoundError
		noPods *kube.NoPodsError
	)
	switch {
	case errors.As(err, &noPod):
		return "list them with `kubectl get pods -n " + noPod.Namespace + "`, or pick the namespace with -n"
	case errors.As(err, &noPods):
		return "list the pods' labels with `kubectl get pods --show-labels -n " + noPods.Namespace + "`"
	}
	return ""
}
