package history

import (
	"fmt"
	"io"
	"strconv"

	"github.com/ctrforensics/ctrforensics/forensic/finding"
)

// SARIF constants.
const (
	SARIFSchema    = finding.SARIFSchema
	SARIFVersion   = finding.SARIFVersion
	ToolName       = finding.ToolName
	InformationURI = finding.InformationURI
)

// WriteSARIF writes findings as a SARIF 2.1.0 log with one run. The driver
// lists the whole rule catalog; each result points at a logical location,
// "config" or "history[N]", qualified by imageRef, and at the image itself
// as its physical artifact (imageRef percent-encoded into a relative URI).
// Findings whose rule is not in the catalog are rejected.
func WriteSARIF(w io.Writer, imageRef string, toolVersion string, findings []Finding) error {
	results := make([]finding.Result, 0, len(findings))
	for _, f := range findings {
		name, kind := "config", "object"
		if f.History >= 0 {
			name, kind = "history["+strconv.Itoa(f.History)+"]", "element"
		}
		results = append(results, finding.Result{Rule: f.Rule, Severity: f.Severity, Message: f.Reason,
			Artifact: artifactURI(imageRef), Location: name, QualifiedLocation: imageRef + "#" + name, LocationKind: kind,
			Evidence: f.Evidence, Properties: map[string]any{"history": f.History, "evidence": f.Evidence}})
	}
	var rules []finding.Rule
	for _, r := range Rules() {
		rules = append(rules, finding.Rule{ID: r.ID, Title: r.Title, Severity: r.Severity, Help: r.Help})
	}
	if err := finding.WriteSARIF(w, toolVersion, rules, results); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	return nil
}

// artifactURI names the image as a relative URI reference (see
// finding.ArtifactURI).
func artifactURI(ref string) string { return finding.ArtifactURI(ref, "image") }
