package audit

import (
	"fmt"
	"io"

	"github.com/ctrforensics/ctrforensics/forensic/finding"
)

// Report is the audit of one container.
type Report struct {
	Namespace, ID string
	// Pod is "namespace/pod/container" for a Kubernetes container, else "".
	Pod      string
	Findings []Finding
}

// Location is the SARIF logical location of a container's spec:
// container/ID/spec.
func (r *Report) Location() string { return "container/" + r.ID + "/spec" }

// WriteSARIF writes the reports as one SARIF 2.1.0 log: the driver lists the
// whole catalog; each result's logical location is container/ID/spec
// (qualified by namespace and spec field), its artifact container/ID.
func WriteSARIF(w io.Writer, toolVersion string, reports []Report) error {
	var results []finding.Result
	for _, r := range reports {
		for _, f := range r.Findings {
			props := map[string]any{"namespace": r.Namespace, "container": r.ID, "where": f.Where, "evidence": f.Evidence}
			if r.Pod != "" {
				props["pod"] = r.Pod
			}
			results = append(results, finding.Result{Rule: f.Rule, Severity: f.Severity, Message: f.Reason,
				Artifact: finding.ArtifactURI("container/"+r.ID, "container"), Location: r.Location(),
				QualifiedLocation: r.Namespace + "/" + r.Location() + "#" + f.Where, LocationKind: "object",
				Evidence: f.Where + " " + f.Evidence, Properties: props})
		}
	}
	if err := finding.WriteSARIF(w, toolVersion, Rules(), results); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}
