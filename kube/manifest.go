package kube

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
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

// YAML writes objects as one YAML stream, documents separated by "---", as
// an administrator would write them: a struct field left at its zero value
// (`spec: {}`, `status: {}`, `resources: {}`, `creationTimestamp: null`) is
// left out, since decoding gives the same object without it. An empty object
// behind a pointer says something (`emptyDir: {}`) and stays.
func YAML(objs []any) ([]byte, error) {
	var b bytes.Buffer
	for i, o := range objs {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return nil, fmt.Errorf("encode %T: %w", o, err)
		}
		dropZeroStructs(reflect.ValueOf(o), m)
		y, err := yaml.Marshal(m)
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

// dropZeroStructs deletes from m, the unstructured form of v, the members
// that stand for struct fields (not pointers) at their zero value, at every
// depth.
func dropZeroStructs(v reflect.Value, m map[string]any) {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return // a map's values are left as they are
	}
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case !f.IsExported() || name == "-":
			continue
		case name == "" && f.Anonymous: // inlined, as TypeMeta
			dropZeroStructs(fv, m)
			continue
		case name == "":
			name = f.Name
		}
		child, ok := m[name]
		if !ok {
			continue
		}
		if fv.Kind() == reflect.Struct && fv.IsZero() {
			delete(m, name)
			continue
		}
		dropZeroIn(fv, child)
	}
}

// dropZeroIn applies dropZeroStructs to the object or the list elements of
// child, the unstructured form of v.
func dropZeroIn(v reflect.Value, child any) {
	switch c := child.(type) {
	case map[string]any:
		dropZeroStructs(v, c)
	case []any:
		for v.Kind() == reflect.Pointer && !v.IsNil() {
			v = v.Elem()
		}
		if v.Kind() != reflect.Slice && v.Kind() != reflect.Array {
			return
		}
		for i := range min(len(c), v.Len()) {
			dropZeroIn(v.Index(i), c[i])
		}
	}
}
