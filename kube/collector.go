package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ctrforensics/ctrforensics/forensic/bundle"
)

// Defaults of CollectorOptions.
const (
	DefaultNamespace           = "ctrforensics"
	DefaultServiceAccount      = "ctrforensics-collector"
	DefaultBinary              = "/usr/local/bin/ctrforensics"
	DefaultContainerdAddress   = "/run/containerd/containerd.sock"
	DefaultContainerdRoot      = "/var/lib/containerd"
	DefaultContainerdState     = "/run/containerd"
	DefaultKubeletPods         = "/var/lib/kubelet/pods"
	DefaultContainerdNamespace = "k8s.io"
	// TerminationLog is where the collector writes its results for the
	// pod's status (the container's termination message).
	TerminationLog = "/dev/termination-log"
	// TerminationMessageMax is the most the kubelet keeps of a termination
	// message.
	TerminationMessageMax = 4096
)

// Labels and annotations of the collector pods.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelComponent = "app.kubernetes.io/component"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// LabelRun holds a digest of the run's bag group: every collector pod
	// of a run has it (kubectl delete pod -l ctrforensics.io/run=...).
	LabelRun = "ctrforensics.io/run"
	// AnnotationBagGroup holds the run's Bag-Group-Identifier.
	AnnotationBagGroup = "ctrforensics.io/bag-group"
	// AnnotationTargets lists the pod's targets, NAMESPACE/POD/CONTAINER
	// separated by commas.
	AnnotationTargets = "ctrforensics.io/targets"
	// PodSecurityLabel is the Pod Security Admission label a namespace
	// needs for privileged collector pods.
	PodSecurityLabel = "pod-security.kubernetes.io/enforce"
)

// Environment variables the collector container gets from the downward API:
// its own pod as the kubelet runs it, for the orchestration record.
const (
	envPodName        = "CTRFORENSICS_POD_NAME"
	envPodNamespace   = "CTRFORENSICS_POD_NAMESPACE"
	envPodUID         = "CTRFORENSICS_POD_UID"
	envNodeName       = "CTRFORENSICS_NODE_NAME"
	envServiceAccount = "CTRFORENSICS_SERVICE_ACCOUNT"
)

// CollectorOptions shape the collector pods and the collect command each
// runs.
type CollectorOptions struct {
	// Image holds this binary at Binary.
	Image      string
	Binary     string
	PullPolicy corev1.PullPolicy
	// Namespace holds the collector pods; it must allow privileged pods.
	Namespace      string
	ServiceAccount string
	// S3Secret names a Secret of Namespace whose keys become the collector's
	// environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
	// AWS_ENDPOINT_URL...); empty for none (e.g. web identity on EKS).
	S3Secret string
	// Address is containerd's socket on the node, Root and State its
	// directories, Namespace its namespace of the pods; KubeletPods the
	// kubelet's pod directory (volumes, /etc/hosts files).
	ContainerdAddress, ContainerdRoot, ContainerdState, ContainerdNamespace string
	KubeletPods                                                             string
	// To is where bags go: each target's bag is To/GROUP/NAMESPACE/POD/CONTAINER.tar.gz.
	To string
	// NodeParallel is how many targets a collector collects at once.
	NodeParallel int
	// Deadline bounds a collector pod's life (activeDeadlineSeconds), so that
	// a pod an interrupted run could not delete still ends.
	Deadline time.Duration
	// CollectArgs are added to every collect command (--case, --pause...).
	CollectArgs []string
}

// withDefaults fills in the zero fields.
func (o CollectorOptions) withDefaults() CollectorOptions {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.Binary, DefaultBinary)
	def(&o.Namespace, DefaultNamespace)
	def(&o.ServiceAccount, DefaultServiceAccount)
	def(&o.ContainerdAddress, DefaultContainerdAddress)
	def(&o.ContainerdRoot, DefaultContainerdRoot)
	def(&o.ContainerdState, DefaultContainerdState)
	def(&o.ContainerdNamespace, DefaultContainerdNamespace)
	def(&o.KubeletPods, DefaultKubeletPods)
	if o.PullPolicy == "" {
		o.PullPolicy = corev1.PullIfNotPresent
	}
	if o.NodeParallel < 1 {
		o.NodeParallel = 1
	}
	if o.Deadline <= 0 {
		o.Deadline = time.Hour
	}
	return o
}

// RunID is the collector pods' LabelRun value of a bag group.
func RunID(group string) string {
	sum := sha256.Sum256([]byte(group))
	return hex.EncodeToString(sum[:])[:12]
}

// PodName is the name of a run's collector pod for the i-th node.
func PodName(group string, i int) string {
	return "ctrforensics-" + RunID(group) + "-" + strconv.Itoa(i)
}

// Key is where a target's bag goes below the destination prefix.
func Key(group string, t Target) string {
	return path.Join(safeKey(group), t.Namespace, t.Pod, t.Container) + ".tar.gz"
}

// safeKey keeps a group identifier's letters, digits, '-', '_' and '.';
// anything else becomes '_' (an identifier is the user's text).
func safeKey(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			b[i] = '_'
		}
	}
	if s := string(b); strings.Trim(s, ".") != "" {
		return s
	}
	return "group"
}

// Output is where a target's bag goes: the destination joined with its key.
func Output(to, group string, t Target) string {
	return strings.TrimRight(to, "/") + "/" + Key(group, t)
}

// Plan is what a collector pod does: collect each target, at most Parallel at
// once. It is the collector's --plan argument, in JSON.
type Plan struct {
	Parallel int          `json:"parallel"`
	Targets  []PlanTarget `json:"targets"`
}

// PlanTarget is one target of a plan and the ctrforensics command line (its
// arguments, without the program name) that collects it.
type PlanTarget struct {
	Target      string   `json:"target"`
	ContainerID string   `json:"container_id"`
	Output      string   `json:"output"`
	Args        []string `json:"args"`
}

// CollectorPod returns the collector pod of node for targets (all on that
// node), the i-th pod of run. run names the run; its Target and Collector are
// filled in per target and by the kubelet.
func CollectorPod(run bundle.Orchestration, i int, node string, targets []Target, opts CollectorOptions) (*corev1.Pod, error) {
	opts = opts.withDefaults()
	plan := Plan{Parallel: opts.NodeParallel}
	var names []string
	for _, t := range targets {
		pt, err := planTarget(run, t, opts)
		if err != nil {
			return nil, err
		}
		plan.Targets = append(plan.Targets, pt)
		names = append(names, t.Name())
	}
	planJSON, err := json.Marshal(plan)
	if err != nil {
		return nil, fmt.Errorf("encode the collector plan: %w", err)
	}
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      PodName(run.Group, i),
			Namespace: opts.Namespace,
			Labels: map[string]string{LabelName: "ctrforensics", LabelComponent: "collector", LabelManagedBy: "ctrforensics",
				LabelRun: RunID(run.Group)},
			Annotations: map[string]string{AnnotationBagGroup: run.Group, AnnotationTargets: strings.Join(names, ",")},
		},
		Spec: collectorSpec(node, opts),
	}
	c := &pod.Spec.Containers[0]
	c.Command = []string{opts.Binary, "k8s", "collector", "--termination-log", TerminationLog, "--plan", string(planJSON)}
	return pod, nil
}

// planTarget returns the plan entry of t: the collect command line, whose
// orchestration record names the collector pod through the downward API's
// variables, which the kubelet expands in a container's command ($(VAR));
// every other '$' is escaped ($$) so that no value of the user's expands.
func planTarget(run bundle.Orchestration, t Target, opts CollectorOptions) (PlanTarget, error) {
	rec := run
	rec.Target = bundle.OrchestratedTarget{Namespace: t.Namespace, Pod: t.Pod, PodUID: t.PodUID, Container: t.Container,
		ContainerID: t.ContainerID, Node: t.Node}
	b, err := json.Marshal(rec)
	if err != nil {
		return PlanTarget{}, fmt.Errorf("encode the orchestration record: %w", err)
	}
	var withPod map[string]any
	if err := json.Unmarshal([]byte(strings.ReplaceAll(string(b), "$", "$$")), &withPod); err != nil {
		return PlanTarget{}, err
	}
	withPod["collector"] = map[string]string{"namespace": "$(" + envPodNamespace + ")", "name": "$(" + envPodName + ")",
		"uid": "$(" + envPodUID + ")", "node": "$(" + envNodeName + ")", "service_account": "$(" + envServiceAccount + ")"}
	orch, err := json.Marshal(withPod)
	if err != nil {
		return PlanTarget{}, err
	}
	out := Output(opts.To, run.Group, t)
	args := []string{"--address", opts.ContainerdAddress, "--namespace", opts.ContainerdNamespace,
		"collect", t.ContainerID, "-o", out, "--bag-group", escapeDollar(run.Group), "--orchestration", string(orch), "--format", "json"}
	for _, a := range opts.CollectArgs {
		args = append(args, escapeDollar(a))
	}
	return PlanTarget{Target: t.Name(), ContainerID: t.ContainerID, Output: out, Args: args}, nil
}

func escapeDollar(s string) string { return strings.ReplaceAll(s, "$", "$$") }

// collectorSpec is the collector pod's spec on node, without its command.
func collectorSpec(node string, opts CollectorOptions) corev1.PodSpec {
	vols, mounts := hostVolumes(opts)
	// /tmp holds only the empty directories the snapshots are mounted on
	// (the bag streams to the bucket): in memory, so that nothing of the
	// run is written to the node's disk.
	vols = append(vols, corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
		Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(resource.MustParse("16Mi"))}}})
	mounts = append(mounts, corev1.VolumeMount{Name: "scratch", MountPath: "/tmp"})
	c := corev1.Container{
		Name:                     "collector",
		Image:                    opts.Image,
		ImagePullPolicy:          opts.PullPolicy,
		Env:                      downwardEnv(),
		SecurityContext:          &corev1.SecurityContext{Privileged: ptr.To(true)},
		VolumeMounts:             mounts,
		TerminationMessagePath:   TerminationLog,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	if opts.S3Secret != "" {
		c.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: opts.S3Secret}}}}
	}
	return corev1.PodSpec{
		NodeName:                     node,
		HostPID:                      true,
		RestartPolicy:                corev1.RestartPolicyNever,
		ServiceAccountName:           opts.ServiceAccount,
		AutomountServiceAccountToken: ptr.To(false),
		EnableServiceLinks:           ptr.To(false),
		ActiveDeadlineSeconds:        ptr.To(int64(opts.Deadline / time.Second)),
		Tolerations:                  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
		Containers:                   []corev1.Container{c},
		Volumes:                      vols,
	}
}

// hostVolumes mounts containerd's root and state, its socket's directory
// when outside the state, and the kubelet's pods, each read-only at the same
// path as on the node (collect reads the paths containerd reports), and with
// the mounts the node makes later (a task's rootfs) propagated.
func hostVolumes(opts CollectorOptions) ([]corev1.Volume, []corev1.VolumeMount) {
	dirs := []struct{ name, path string }{
		{"containerd-root", opts.ContainerdRoot},
		{"containerd-state", opts.ContainerdState},
		{"kubelet-pods", opts.KubeletPods},
	}
	if sock := path.Dir(opts.ContainerdAddress); !within(sock, opts.ContainerdState) {
		dirs = append(dirs, struct{ name, path string }{"containerd-socket", sock})
	}
	var vols []corev1.Volume
	var mounts []corev1.VolumeMount
	for _, d := range dirs {
		vols = append(vols, corev1.Volume{Name: d.name, VolumeSource: corev1.VolumeSource{
			HostPath: &corev1.HostPathVolumeSource{Path: d.path, Type: ptr.To(corev1.HostPathDirectory)}}})
		mounts = append(mounts, corev1.VolumeMount{Name: d.name, MountPath: d.path, ReadOnly: true,
			MountPropagation: ptr.To(corev1.MountPropagationHostToContainer)})
	}
	return vols, mounts
}

// within tells whether p is dir or below it.
func within(p, dir string) bool {
	p, dir = path.Clean(p), path.Clean(dir)
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// downwardEnv gives the collector its own pod's identity.
func downwardEnv() []corev1.EnvVar {
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	return []corev1.EnvVar{
		field(envPodName, "metadata.name"),
		field(envPodNamespace, "metadata.namespace"),
		field(envPodUID, "metadata.uid"),
		field(envNodeName, "spec.nodeName"),
		field(envServiceAccount, "spec.serviceAccountName"),
	}
}

// Expand expands the $(VAR) references of a container's command as the
// kubelet does ($$ is a '$'; an unknown VAR stays as written): to run a
// collector's command outside a cluster, e.g. by hand on a node.
func Expand(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := env[name]; ok && name != "" {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// DownwardEnv is the environment the kubelet gives a collector pod's
// container from the downward API, for Expand.
func DownwardEnv(namespace, name, uid, node, serviceAccount string) map[string]string {
	return map[string]string{envPodNamespace: namespace, envPodName: name, envPodUID: uid, envNodeName: node, envServiceAccount: serviceAccount}
}
