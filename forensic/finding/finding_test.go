package finding

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ctrforensics/ctrforensics/internal/schemacheck"
)

func TestSeverity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Severity
	}{{"low", Low}, {" MEDIUM ", Medium}, {"High", High}} {
		got, err := ParseSeverity(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSeverity(%q) = %v, %v", tc.in, got, err)
		}
		b, _ := got.MarshalText()
		var back Severity
		if err := back.UnmarshalText(b); err != nil || back != got {
			t.Errorf("round trip of %v: %v %v", got, back, err)
		}
	}
	if _, err := ParseSeverity("critical"); err == nil || !strings.Contains(err.Error(), "low, medium or high") {
		t.Errorf("critical: %v", err)
	}
	if _, err := Severity(7).MarshalText(); err == nil {
		t.Error("severity 7 marshals")
	}
	if High.SARIFLevel() != "error" || Medium.SARIFLevel() != "warning" || Low.SARIFLevel() != "note" {
		t.Error("SARIF levels")
	}
}

func TestWriteSARIF(t *testing.T) {
	rules := []Rule{{ID: "X-1", Title: "RUN downloads code", Severity: High, Help: "h"}}
	var b strings.Builder
	res := []Result{{Rule: "X-1", Severity: High, Message: "m", Artifact: ArtifactURI("alpine:3.19", "image"), Location: "config",
		QualifiedLocation: "alpine:3.19#config", LocationKind: "object", Evidence: "e", Properties: map[string]any{"k": 1}}}
	if err := WriteSARIF(&b, "v", rules, res); err != nil {
		t.Fatal(err)
	}
	var log map[string]any
	if err := json.Unmarshal([]byte(b.String()), &log); err != nil {
		t.Fatal(err)
	}
	schemacheck.ValidateSARIF(t, []byte(b.String()))
	for _, want := range []string{`"name": "RunDownloadsCode"`, `"uri": "alpine%3A3.19"`, `"security-severity": "8.0"`, `"k": 1`, `"ctrforensicsFinding/v1"`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("SARIF lacks %s:\n%s", want, b.String())
		}
	}
	if err := WriteSARIF(&b, "v", rules, []Result{{Rule: "Y"}}); err == nil {
		t.Error("a result of an unknown rule was written")
	}
	if ArtifactURI("", "container") != "container" {
		t.Error("empty artifact")
	}
}

// TestRun: checks fire in catalog order, a hit without a severity takes its
// rule's, and Catalog lists the rules in order.
func TestRun(t *testing.T) {
	checks := []Check[int]{
		{Rule: Rule{ID: "X-1", Severity: Medium}, Fire: func(n int) []Hit {
			if n < 0 {
				return nil
			}
			return []Hit{{Reason: "a"}, {Severity: High, Reason: "b"}}
		}},
		{Rule: Rule{ID: "X-2", Severity: Low}, Fire: func(int) []Hit { return []Hit{{Reason: "c", Where: "w"}} }},
	}
	var got []string
	Run(checks, 1, func(r *Rule, h Hit) { got = append(got, r.ID+" "+h.Severity.String()+" "+h.Reason+h.Where) })
	if want := []string{"X-1 medium a", "X-1 high b", "X-2 low cw"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Run: %v, want %v", got, want)
	}
	got = nil
	Run(checks, -1, func(r *Rule, h Hit) { got = append(got, r.ID) })
	if len(got) != 1 || got[0] != "X-2" {
		t.Errorf("Run on -1: %v", got)
	}
	if c := Catalog(checks); len(c) != 2 || c[0].ID != "X-1" || c[1].ID != "X-2" {
		t.Errorf("Catalog: %+v", c)
	}
}
