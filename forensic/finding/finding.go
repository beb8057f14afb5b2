// Package finding is the shared vocabulary of ctrforensics' rule-based
// checks (image history, runtime spec audit, content scan, package
// integrity): severities, rules with stable IDs, the one shape of a rule
// catalog (a table of Check: a rule and the predicate that fires it, run by
// Run), and one SARIF 2.1.0 writer. It is portable and imports no containerd
// code.
//
// Invariants: a rule ID, once published, keeps its meaning and is never
// reused; every SARIF result names a rule of the catalog it is written with.
package finding

import (
	"fmt"
	"strconv"
	"strings"
)

// Severity ranks a finding; higher is worse.
type Severity int

// The severities, in increasing order.
const (
	Low    Severity = 1
	Medium Severity = 2
	High   Severity = 3
)

// String returns "low", "medium" or "high", or "Severity(N)" for other values.
func (s Severity) String() string {
	switch s {
	case Low:
		return "low"
	case Medium:
		return "medium"
	case High:
		return "high"
	}
	return "Severity(" + strconv.Itoa(int(s)) + ")"
}

// ParseSeverity parses "low", "medium" or "high", ignoring case and
// surrounding space.
func ParseSeverity(s string) (Severity, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "low":
		return Low, nil
	case "medium":
		return Medium, nil
	case "high":
		return High, nil
	}
	return 0, fmt.Errorf("unknown severity %q (want low, medium or high)", s)
}

// MarshalText encodes the severity as its String form.
func (s Severity) MarshalText() ([]byte, error) {
	if s < Low || s > High {
		return nil, fmt.Errorf("invalid severity %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText decodes a severity written by MarshalText.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// SARIFLevel maps a severity to a SARIF result level.
func (s Severity) SARIFLevel() string {
	switch {
	case s >= High:
		return "error"
	case s == Medium:
		return "warning"
	}
	return "note"
}

// SecurityScore is the CVSS-like score GitHub code scanning reads
// (security-severity).
func (s Severity) SecurityScore() string {
	switch s {
	case High:
		return "8.0"
	case Medium:
		return "5.5"
	}
	return "2.0"
}

// Rule describes one check. IDs are stable across releases; a retired rule's
// ID is never reused.
type Rule struct {
	ID       string
	Title    string
	Severity Severity
	Help     string
}
