package packages

import (
	"fmt"
	"io"

	"github.com/ctrforensics/ctrforensics/forensic/finding"
)

// integrityRules are the SARIF rules of the integrity results, one per
// status but ok. IDs are stable.
var integrityRules = []struct {
	status Status
	rule   finding.Rule
}{
	{Modified, finding.Rule{ID: "CTRF-PKG-001", Title: "Package file modified", Severity: finding.High,
		Help: "A file a package installed no longer matches the package manager's record in the image (content, mode or owner)."}},
	{DatabaseChanged, finding.Rule{ID: "CTRF-PKG-002", Title: "Package database changed", Severity: finding.High,
		Help: "A package database or record file changed in the container: packages were installed, removed or their records edited."}},
	{Missing, finding.Rule{ID: "CTRF-PKG-003", Title: "Package file missing", Severity: finding.Medium,
		Help: "A file a package installed was deleted or replaced by another type."}},
	{NotOwned, finding.Rule{ID: "CTRF-PKG-004", Title: "File not owned by any package", Severity: finding.Medium,
		Help: "A new file in a directory that holds package files (such as /usr/bin) that no package installed."}},
	{ConfigModified, finding.Rule{ID: "CTRF-PKG-005", Title: "Package configuration file modified", Severity: finding.Low,
		Help: "A configuration file differs from the package's record; expected on a configured system, worth a look."}},
}

// Rules returns the SARIF rules of the integrity results.
func Rules() []finding.Rule {
	out := make([]finding.Rule, len(integrityRules))
	for i, r := range integrityRules {
		out[i] = r.rule
	}
	return out
}

// WriteSARIF writes the results that are not ok as a SARIF 2.1.0 log, each
// located at the file's path (a relative URI).
func WriteSARIF(w io.Writer, toolVersion string, results []Result) error {
	var out []finding.Result
	for _, r := range results {
		for _, ir := range integrityRules {
			if ir.status != r.Status {
				continue
			}
			msg := fmt.Sprintf("%s: %s", ir.rule.Title, esc(r.Path))
			if r.Package != "" {
				msg += fmt.Sprintf(" (package %s %s", r.Package, r.Version)
				if r.Expected != "" {
					msg += fmt.Sprintf(", %s expected %s, found %s", r.Algorithm, r.Expected, r.Actual)
				}
				msg += ")"
			}
			out = append(out, finding.Result{Rule: ir.rule.ID, Severity: ir.rule.Severity, Message: msg,
				Artifact: finding.ArtifactURI(r.Path, "rootfs"), Location: r.Path, LocationKind: "file",
				Evidence:   r.Expected + ">" + r.Actual,
				Properties: map[string]any{"package": r.Package, "status": string(r.Status), "changed": r.Changed}})
		}
	}
	if err := finding.WriteSARIF(w, toolVersion, Rules(), out); err != nil {
		return fmt.Errorf("write SARIF: %w", err)
	}
	return nil
}
