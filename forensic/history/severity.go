package history

import (
	"fmt"

	"github.com/ctrforensics/ctrforensics/forensic/finding"
)

// Severity ranks a finding; higher is worse (finding.Severity).
type Severity = finding.Severity

// The severities, in increasing order.
const (
	Low    = finding.Low
	Medium = finding.Medium
	High   = finding.High
)

// ParseSeverity parses "low", "medium" or "high", ignoring case and
// surrounding space.
func ParseSeverity(s string) (Severity, error) {
	v, err := finding.ParseSeverity(s)
	if err != nil {
		return 0, fmt.Errorf("history: %w", err)
	}
	return v, nil
}
