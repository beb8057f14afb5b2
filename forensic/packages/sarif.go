package packages

import (
	"fmt"
	"io"

	"github.com/ctrforensics/ctrforensics/forensic/finding"
)

// integrityChecks are the SARIF rules of the integrity results, one per
// status but ok, each firing on a result of its status. IDs are stable.
var integrityChecks = []finding.Check[Result]{
	{Rule: finding.Rule{ID: "CTRF-PKG-001", Title: "Package file modified", Severity: finding.High,
		Help: "A file a package installed no longer matches the package manager's record in the image (content, mode or owner)."}, Fire: ofStatus(Modified)},
	{Rule: finding.Rule{ID: "CTRF-PKG-002", Title: "Package database changed", Severity: finding.High,
		Help: "A package database or record file changed in the container: packages were installed, removed or their records edited."}, Fire: ofStatus(DatabaseChanged)},
	{Rule: finding.Rule{ID: "CTRF-PKG-003", Title: "Package file missing", Severity: finding.Medium,
		Help: "A file a package installed was deleted or replaced by another type."}, Fire: ofStatus(Missing)},
	{Rule: finding.Rule{ID: "CTRF-PKG-004", Title: "File not owned by any package", Severity: finding.Medium,
		Help: "A new file in a directory that holds package files (such as /usr/bin) that no package installed."}, Fire: ofStatus(NotOwned)},
	{Rule: finding.Rule{ID: "CTRF-PKG-005", Title: "Package configuration file modified", Severity: finding.Low,
		Help: "A configuration file differs from the package's record; expected on a configured system, worth a look."}, Fire: ofStatus(ConfigModified)},
}

// ofStatus fires on a result of status st; the reason names the package
// and the digests. The rule's title goes before it in the SARIF message.
func ofStatus(st Status) func(Result) []finding.Hit {
	return func(r Result) []finding.Hit {
		if r.Status != st {
			return nil
		}
		msg := esc(r.Path)
		if r.Package != "" {
			msg += fmt.Sprintf(" (package %s %s", r.Package, r.Version)
			if r.Expected != "" {
				msg += fmt.Sprintf(", %s expected %s, found %s", r.Algorithm, r.Expected, r.Actual)
			}
			msg += ")"
		}
		return []finding.Hit{{Reason: msg, Where: r.Path, Evidence: r.Expected + ">" + r.Actual}}
	}
}

// Rules returns the SARIF rules of the integrity results.
func Rules() []finding.Rule { return finding.Catalog(integrityChecks) }

// WriteSARIF writes the results that are not ok as a SARIF 2.1.0 log, each
// located at the file's path (a relative URI).
func WriteSARIF(w io.Writer, toolVersion string, results []Result) error {
	var out []finding.Result
	for _, r := range results {
		finding.Run(integrityChecks, r, func(rule *finding.Rule, h finding.Hit) {
			out = append(out, finding.Result{Rule: rule.ID, Severity: h.Severity, Message: rule.Title + ": " + h.Reason,
				Artifact: finding.ArtifactURI(r.Path, "rootfs"), Location: h.Where, LocationKind: "file",
				Evidence:   h.Evidence,
				Properties: map[string]any{"package": r.Package, "status": string(r.Status), "changed": r.Changed}})
		})
	}
	if err := finding.WriteSARIF(w, toolVersion, Rules(), out); err != nil {
		return fmt.Errorf("write SARIF: %w", err)
	}
	return nil
}
