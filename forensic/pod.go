package forensic

// Pod is the Kubernetes pod a container belongs to, as the CRI runtime
// recorded it. The zero value means the container was not created through
// the CRI (or its records name no pod).
type Pod struct {
	// Namespace and Name are the pod's Kubernetes namespace and name.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// UID is the pod's Kubernetes UID.
	UID string `json:"uid,omitempty"`
	// Container is the container's name in the pod spec; empty for a
	// sandbox.
	Container string `json:"container,omitempty"`
	// SandboxID is the ID of the pod's sandbox (pause) container.
	SandboxID string `json:"sandbox_id,omitempty"`
	// Sandbox is true for the sandbox (pause) container itself.
	Sandbox bool `json:"sandbox,omitempty"`
	// Labels are the pod's labels.
	Labels map[string]string `json:"labels,omitempty"`
}

// IsZero reports whether p names no pod.
func (p Pod) IsZero() bool {
	return p.Namespace == "" && p.Name == "" && p.Container == "" && p.SandboxID == "" && !p.Sandbox
}
