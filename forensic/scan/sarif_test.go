package scan

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/ctrforensics/ctrforensics/forensic/finding"
)

// TestSARIFLocations checks that a result's physical location is the path
// relative to the root filesystem, that a layer's finding names its layer and
// whether it is hidden, and that findings on different layers get different
// fingerprints.
func TestSARIFLocations(t *testing.T) {
	rep := &Report{Findings: []Finding{
		{Rule: RuleHiddenExec, Severity: finding.High, Path: "/usr/lib/. /x", Reason: "r", Evidence: "ELF executable", Layer: 1, Hidden: true},
		{Rule: RuleHiddenExec, Severity: finding.High, Path: "/usr/lib/. /x", Reason: "r", Evidence: "ELF executable", Layer: 2},
	}}
	var b bytes.Buffer
	if err := WriteSARIF(&b, "test", "docker.io/library/x:1", rep, nil); err != nil {
		t.Fatal(err)
	}
	var log struct {
		Runs []struct {
			Results []struct {
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string } `json:"artifactLocation"`
					} `json:"physicalLocation"`
					LogicalLocations []struct{ Name, Kind string } `json:"logicalLocations"`
				} `json:"locations"`
				PartialFingerprints map[string]string `json:"partialFingerprints"`
				Properties          map[string]any    `json:"properties"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(b.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	rs := log.Runs[0].Results
	if len(rs) != 2 {
		t.Fatalf("%d results", len(rs))
	}
	loc := rs[0].Locations[0]
	if loc.PhysicalLocation.ArtifactLocation.URI != "usr/lib/.%20/x" || loc.LogicalLocations[0].Name != "docker.io/library/x:1#layer1:/usr/lib/. /x" || loc.LogicalLocations[0].Kind != "layer" {
		t.Errorf("location %+v", loc)
	}
	if rs[0].Properties["hidden"] != true || rs[0].Properties["layer"] != float64(1) {
		t.Errorf("properties %v", rs[0].Properties)
	}
	if rs[0].PartialFingerprints["ctrforensicsFinding/v1"] == rs[1].PartialFingerprints["ctrforensicsFinding/v1"] {
		t.Error("the same file in two layers has one fingerprint")
	}
}
