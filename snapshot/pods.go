package snapshot

import (
	"encoding/json"
	"maps"
	"slices"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/sandbox"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ctrforensics/ctrforensics/forensic"
)

// What containerd's CRI plugin records about a pod, in every version from 1.6
// to 2.x: a label on the container record, annotations in the OCI spec, and
// its own metadata (JSON) as a container extension. Kubelet's labels
// (io.kubernetes.pod.*) come from the caller and may be missing (crictl,
// other CRI clients), so they are only the last resort.
const (
	labelCRIKind          = "io.cri-containerd.kind"
	annotationType        = "io.kubernetes.cri.container-type"
	annotationSandboxID   = "io.kubernetes.cri.sandbox-id"
	annotationSandboxName = "io.kubernetes.cri.sandbox-name"
	annotationSandboxNS   = "io.kubernetes.cri.sandbox-namespace"
	annotationSandboxUID  = "io.kubernetes.cri.sandbox-uid"
	annotationContainer   = "io.kubernetes.cri.container-name"
	extensionSandbox      = "io.cri-containerd.sandbox.metadata"
	extensionContainer    = "io.cri-containerd.container.metadata"
	kindSandbox           = "sandbox"
	labelRuntimeType      = "oci_runtime_type" // on 2.x sandbox store records
	labelPodUID           = "io.kubernetes.pod.uid"
	// extensionSandboxStore is the key of the same sandbox metadata in
	// containerd 2.x's sandbox store.
	extensionSandboxStore = "metadata"
)

// criSandboxMetadata is the part of the CRI plugin's sandbox extension
// (store/sandbox.Metadata, version v1) that names the pod.
type criSandboxMetadata struct {
	Metadata struct {
		ID     string
		Config *struct {
			Metadata struct {
				Name      string `json:"name"`
				UID       string `json:"uid"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
			Labels map[string]string `json:"labels"`
		}
	}
}

// criContainerMetadata is the part of the CRI plugin's container extension
// (store/container.Metadata, version v1) that names the container and its
// sandbox.
type criContainerMetadata struct {
	Metadata struct {
		SandboxID string
		Config    *struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
	}
}

// PodOf returns the pod of a container from its containerd record and OCI
// spec (which may be nil), without the labels of a container's pod, which
// only its sandbox's record holds (see AttachSandbox). Records that do not
// decode are skipped: they are hostile input like any other.
func PodOf(info containers.Container, spec *specs.Spec) forensic.Pod {
	var ann map[string]string
	if spec != nil {
		ann = spec.Annotations
	}
	var sb criSandboxMetadata
	hasSandboxExt := decodeExtension(info, extensionSandbox, &sb)
	var cm criContainerMetadata
	decodeExtension(info, extensionContainer, &cm)

	p := forensic.Pod{
		Sandbox: info.Labels[labelCRIKind] == kindSandbox || ann[annotationType] == kindSandbox || hasSandboxExt,
	}
	if p.Sandbox {
		p.SandboxID = info.ID
	} else {
		p.SandboxID = first(info.SandboxID, ann[annotationSandboxID], cm.Metadata.SandboxID)
	}
	p.Namespace = first(ann[annotationSandboxNS], info.Labels[labelPodNamespace])
	p.Name = first(ann[annotationSandboxName], info.Labels[labelPodName])
	p.UID = first(ann[annotationSandboxUID], info.Labels[labelPodUID])
	if cfg := sb.Metadata.Config; cfg != nil {
		p.Namespace = first(p.Namespace, cfg.Metadata.Namespace)
		p.Name = first(p.Name, cfg.Metadata.Name)
		p.UID = first(p.UID, cfg.Metadata.UID)
		p.Labels = maps.Clone(cfg.Labels)
	} else if p.Sandbox {
		p.Labels = maps.Clone(info.Labels)
		delete(p.Labels, labelCRIKind)
	}
	if !p.Sandbox {
		var name string
		if cfg := cm.Metadata.Config; cfg != nil {
			name = cfg.Metadata.Name
		}
		p.Container = first(ann[annotationContainer], name, info.Labels[labelContainerName])
	}
	return p
}

// SandboxPod returns the pod of a record of containerd 2.x's sandbox store,
// which holds the same labels, spec annotations and CRI metadata as the
// sandbox's container record. It names the pod of containers whose sandbox
// has no container record (a sandboxer other than the pause container).
func SandboxPod(sb sandbox.Sandbox) forensic.Pod {
	info := containers.Container{ID: sb.ID, Labels: sb.Labels, Spec: sb.Spec}
	if ext, ok := sb.Extensions[extensionSandboxStore]; ok {
		info.Extensions = map[string]typeurl.Any{extensionSandbox: ext}
	}
	p := PodOf(info, decodeSpec(info))
	p.Sandbox, p.SandboxID = true, sb.ID
	delete(p.Labels, labelRuntimeType)
	return p
}

// AttachSandbox completes the pod of ctr from the pod of its sandbox: the
// pod's labels, and its names where ctr's records lack them.
func AttachSandbox(ctr *Container, sandbox forensic.Pod) {
	p := &ctr.Pod
	p.Namespace = first(p.Namespace, sandbox.Namespace)
	p.Name = first(p.Name, sandbox.Name)
	p.UID = first(p.UID, sandbox.UID)
	if p.Labels == nil {
		p.Labels = maps.Clone(sandbox.Labels)
	}
}

// attachSandboxes completes every container's pod from the sandboxes among
// ctrs (all of one namespace).
func attachSandboxes(ctrs []*Container) {
	sandboxes := map[string]forensic.Pod{}
	for _, c := range ctrs {
		if c.Pod.Sandbox {
			sandboxes[c.Info.ID] = c.Pod
		}
	}
	for _, c := range ctrs {
		if sb, ok := sandboxes[c.Pod.SandboxID]; ok && !c.Pod.Sandbox {
			AttachSandbox(c, sb)
		}
	}
}

// decodeExtension decodes the JSON value of the extension named key into v,
// and reports whether it did.
func decodeExtension(info containers.Container, key string, v any) bool {
	ext, ok := info.Extensions[key]
	if !ok || ext == nil {
		return false
	}
	return json.Unmarshal(ext.GetValue(), v) == nil
}

// first returns the first non-empty string.
func first(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// SystemPodNamespaces returns the Kubernetes namespaces whose pods are the
// cluster's own machinery rather than workloads: the control plane
// (kube-system, kube-public, kube-node-lease) and the usual node agents'
// namespaces (CNI: kube-flannel, calico-system, calico-apiserver,
// tigera-operator, cilium; load balancer: metallb-system; storage:
// local-path-storage). ContainerFilter.ExcludeSystem leaves them out.
func SystemPodNamespaces() []string {
	return []string{
		"kube-system", "kube-public", "kube-node-lease",
		"kube-flannel", "calico-system", "calico-apiserver", "tigera-operator", "cilium",
		"metallb-system", "local-path-storage",
	}
}

// ContainerFilter selects containers from a listing. The zero value keeps
// every container but pod sandboxes.
type ContainerFilter struct {
	// Sandboxes keeps pod sandbox (pause) containers.
	Sandboxes bool
	// Pod and PodNamespace, when set, keep only containers of pods of that
	// name and Kubernetes namespace.
	Pod, PodNamespace string
	// Labels keeps only containers that have every label, with that value,
	// on their own record or on their pod.
	Labels map[string]string
	// ExcludeSystem leaves out the pods of SystemPodNamespaces.
	ExcludeSystem bool
}

// Match reports whether ctr passes the filter.
func (f ContainerFilter) Match(ctr *Container) bool {
	p := ctr.Pod
	switch {
	case p.Sandbox && !f.Sandboxes,
		f.Pod != "" && p.Name != f.Pod,
		f.PodNamespace != "" && p.Namespace != f.PodNamespace,
		f.ExcludeSystem && p.Namespace != "" && slices.Contains(SystemPodNamespaces(), p.Namespace):
		return false
	}
	for k, v := range f.Labels {
		own, ok := ctr.Info.Labels[k]
		if ok && own == v {
			continue
		}
		if pv, ok := p.Labels[k]; !ok || pv != v {
			return false
		}
	}
	return true
}

// Filter returns the containers of ctrs that pass f, in order.
func (f ContainerFilter) Filter(ctrs []*Container) []*Container {
	var out []*Container
	for _, c := range ctrs {
		if f.Match(c) {
			out = append(out, c)
		}
	}
	return out
}
