package kube

import (
	"bytes"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/ctrforensics/ctrforensics/forensic/bundle"
)

// Names of the RBAC objects of Manifest.
const (
	// ResponderServiceAccount is the identity a responder can run
	// `k8s collect` as; ReaderRole and CollectorRole are what it may do.
	ResponderServiceAccount = "ctrforensics"
	ReaderRole              = "ctrforensics-pod-reader"
	CollectorRole           = "ctrforensics-collector-pods"
)

// Manifest returns what an administrator applies once so that responders can
// run `k8s collect`: the collector namespace (labelled for privileged pods),
// the collector pods' service account (no permissions, no token), the
// responder's service account, and the least RBAC `k8s collect` needs:
// reading pods in every namespace (resolution), and creating, reading,
// deleting collector pods and reading their logs in the collector namespace
// only. Last comes the collector pod template, with placeholders.
func Manifest(opts CollectorOptions) ([]any, error) {
	opts = opts.withDefaults()
	if opts.Image == "" {
		opts.Image = "IMAGE"
	}
	if opts.To == "" {
		opts.To = "s3://BUCKET/PREFIX"
	}
	ns, sa := opts.Namespace, opts.ServiceAccount
	meta := func(name, namespace string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{LabelName: "ctrforensics", LabelManagedBy: "ctrforensics"}}
	}
	nsMeta := meta(ns, "")
	for _, mode := range []string{"enforce", "audit", "warn"} {
		nsMeta.Labels["pod-security.kubernetes.io/"+mode] = "privileged"
	}
	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: ResponderServiceAccount, Namespace: ns}}
	objs := []any{
		&corev1.Namespace{TypeMeta: typeMeta("v1", "Namespace"), ObjectMeta: nsMeta},
		&corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: meta(sa, ns), AutomountServiceAccountToken: new(bool)},
		&corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: meta(ResponderServiceAccount, ns)},
		&rbacv1.ClusterRole{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "ClusterRole"), ObjectMeta: meta(ReaderRole, ""),
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}}},
		&rbacv1.ClusterRoleBinding{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"), ObjectMeta: meta(ReaderRole, ""),
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: ReaderRole},
			Subjects: subject},
		&rbacv1.Role{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "Role"), ObjectMeta: meta(CollectorRole, ns),
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create", "get", "delete"}},
				{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}},
			}},
		&rbacv1.RoleBinding{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "RoleBinding"), ObjectMeta: meta(CollectorRole, ns),
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: CollectorRole},
			Subjects: subject},
	}
	run := bundle.Orchestration{System: bundle.OrchestrationKubernetes, Group: "BAG_GROUP", Started: "STARTED",
		Context: "CONTEXT", Cluster: "CLUSTER", Server: "SERVER", User: "USER",
		Namespace: ns, Image: opts.Image, Nodes: []string{"NODE"}, CollectorPods: []string{PodName("BAG_GROUP", 0)}, Targets: 1}
	example := Target{Namespace: "NAMESPACE", Pod: "POD", PodUID: "POD_UID", Container: "CONTAINER", ContainerID: "0123456789abcdef", Node: "NODE"}
	pod, err := CollectorPod(run, 0, "NODE", []Target{example}, opts)
	if err != nil {
		return nil, err
	}
	return append(objs, pod), nil
}

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

// YAML writes objects as one YAML stream, documents separated by "---".
func YAML(objs []any) ([]byte, error) {
	var b bytes.Buffer
	for i, o := range objs {
		y, err := yaml.Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("encode %T: %w", o, err)
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}
