package packages

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/ctrforensics/ctrforensics/internal/schemacheck"
)

// TestSARIF writes one result of each status, hostile paths included, and
// checks the log against the official SARIF 2.1.0 schema: one SARIF result
// per status but ok, each with its rule.
func TestSARIF(t *testing.T) {
	results := []Result{
		{Path: "/usr/bin/ls", Status: Modified, Package: "coreutils", Version: "9.1-1", Algorithm: "md5",
			Expected: "aa", Actual: "bb", Changed: []string{"content", "mode"}},
		{Path: "/var/lib/dpkg/status", Status: DatabaseChanged},
		{Path: "/usr/bin/gone\n\x1b[2J", Status: Missing, Package: "coreutils", Version: "9.1-1"},
		{Path: "/usr/bin/dropper with space#?%", Status: NotOwned},
		{Path: "/etc/ssh/sshd_config", Status: ConfigModified, Package: "openssh-server", Config: true},
		{Path: "/usr/bin/cat", Status: OK, Package: "coreutils"},
	}
	var b bytes.Buffer
	if err := WriteSARIF(&b, "v1", results); err != nil {
		t.Fatal(err)
	}
	schemacheck.ValidateSARIF(t, b.Bytes())
	var log struct {
		Runs []struct {
			Results []struct{ RuleID string }
		}
	}
	if err := json.Unmarshal(b.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	want := []string{"CTRF-PKG-001", "CTRF-PKG-002", "CTRF-PKG-003", "CTRF-PKG-004", "CTRF-PKG-005"}
	if len(log.Runs) != 1 || len(log.Runs[0].Results) != len(want) {
		t.Fatalf("SARIF results: %+v", log)
	}
	for i, r := range log.Runs[0].Results {
		if r.RuleID != want[i] {
			t.Errorf("result %d: rule %s, want %s", i, r.RuleID, want[i])
		}
	}
}
