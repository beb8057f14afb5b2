package scan

import (
	"io"
	"strconv"

	"github.com/ctrforensics/ctrforensics/forensic/finding"
)

// WriteSARIF writes the findings of a scan of target (a container's
// "container/ID" or an image reference) as SARIF 2.1.0: each result's
// physical location is the file's path relative to the scanned root
// filesystem; its logical location names the target, and the layer for an
// image. extra lists the rules of opts.Matchers beside the built-in catalog.
func WriteSARIF(w io.Writer, toolVersion, target string, rep *Report, extra []finding.Rule) error {
	rules := append(Rules(), extra...)
	results := make([]finding.Result, 0, len(rep.Findings))
	for _, f := range rep.Findings {
		loc, kind := target, "container"
		props := map[string]any{"path": f.Path}
		if f.Layer >= 0 {
			loc, kind = target+"#layer"+strconv.Itoa(f.Layer), "layer"
			props["layer"] = f.Layer
			props["hidden"] = f.Hidden
		}
		results = append(results, finding.Result{Rule: f.Rule, Severity: f.Severity, Message: f.Path + ": " + f.Reason,
			Artifact: finding.ArtifactURI(f.Path, "."), Location: loc + ":" + f.Path, QualifiedLocation: loc + ":" + f.Path,
			LocationKind: kind, Evidence: f.Evidence, Properties: props})
	}
	return finding.WriteSARIF(w, toolVersion, rules, results)
}
