package finding

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode"
)

// SARIF constants.
const (
	SARIFSchema    = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
	SARIFVersion   = "2.1.0"
	ToolName       = "ctrforensics"
	InformationURI = "https://github.com/ctrforensics/ctrforensics"
)

// Result is one finding as SARIF carries it.
type Result struct {
	Rule     string
	Severity Severity
	Message  string
	// Artifact is the physical artifact, a relative URI (see ArtifactURI):
	// GitHub code scanning rejects results whose locations are only logical.
	Artifact string
	// Location is the logical location: its name (e.g. "config",
	// "history[3]", "spec"), fully qualified name and kind.
	Location, QualifiedLocation, LocationKind string
	// Evidence is the matched text; with Rule and Location (its name) it makes the
	// result's fingerprint.
	Evidence string
	// Properties are added to the result's properties, beside "severity".
	Properties map[string]any
}

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name"`
	ShortDescription     sarifText      `json:"shortDescription"`
	FullDescription      sarifText      `json:"fullDescription"`
	Help                 sarifText      `json:"help"`
	DefaultConfiguration sarifConfig    `json:"defaultConfiguration"`
	Properties           map[string]any `json:"properties"`
}

type sarifConfig struct {
	Level string `json:"level"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifText         `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Properties          map[string]any    `json:"properties"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical  `json:"physicalLocation"`
	LogicalLocations []sarifLogical `json:"logicalLocations"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           sarifRegion   `json:"region"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

type sarifLogical struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

// WriteSARIF writes results as a SARIF 2.1.0 log with one run whose driver
// lists the rules (the whole catalog, in the order given). A result whose
// rule is not among rules is rejected.
func WriteSARIF(w io.Writer, toolVersion string, rules []Rule, results []Result) error {
	index := make(map[string]int, len(rules))
	for i, r := range rules {
		index[r.ID] = i
	}
	out := make([]sarifResult, 0, len(results))
	for _, r := range results {
		i, ok := index[r.Rule]
		if !ok {
			return fmt.Errorf("finding has unknown rule %q", r.Rule)
		}
		out = append(out, sarifResultOf(r, i))
	}
	log := sarifLog{Schema: SARIFSchema, Version: SARIFVersion, Runs: []sarifRun{{
		Tool:    sarifTool{Driver: sarifDriver{Name: ToolName, Version: toolVersion, InformationURI: InformationURI, Rules: sarifRules(rules)}},
		Results: out,
	}}}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(log)
}

func sarifRules(rules []Rule) []sarifRule {
	out := make([]sarifRule, len(rules))
	for i, r := range rules {
		out[i] = sarifRule{
			ID:                   r.ID,
			Name:                 pascalCase(r.Title),
			ShortDescription:     sarifText{r.Title},
			FullDescription:      sarifText{r.Help},
			Help:                 sarifText{r.Help},
			DefaultConfiguration: sarifConfig{r.Severity.SARIFLevel()},
			Properties: map[string]any{
				"tags":              []string{"security", "container", "forensics"},
				"security-severity": r.Severity.SecurityScore(),
				"severity":          r.Severity.String(),
			},
		}
	}
	return out
}

func sarifResultOf(r Result, ruleIndex int) sarifResult {
	sum := sha256.Sum256([]byte(r.Rule + "\x00" + r.Location + "\x00" + r.Evidence))
	props := map[string]any{"severity": r.Severity.String()}
	for k, v := range r.Properties {
		props[k] = v
	}
	return sarifResult{
		RuleID:    r.Rule,
		RuleIndex: ruleIndex,
		Level:     r.Severity.SARIFLevel(),
		Message:   sarifText{r.Message},
		Locations: []sarifLocation{{
			PhysicalLocation: sarifPhysical{sarifArtifact{r.Artifact}, sarifRegion{1}},
			LogicalLocations: []sarifLogical{{Name: r.Location, FullyQualifiedName: r.QualifiedLocation, Kind: r.LocationKind}},
		}},
		PartialFingerprints: map[string]string{"ctrforensicsFinding/v1": hex.EncodeToString(sum[:16])},
		Properties:          props,
	}
}

// ArtifactURI turns a name (an image reference, "container/ID") into a
// relative URI reference, percent-encoding everything but unreserved
// characters and "/", so that "alpine:3.19" is not read as a URI with scheme
// "alpine". An empty name gives fallback.
func ArtifactURI(name, fallback string) string {
	if name == "" {
		return fallback
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '/' || c == '-' || c == '.' || c == '_' || c == '~' ||
			(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return strings.TrimLeft(b.String(), "/")
}

// pascalCase turns a title into a SARIF rule name: "RUN downloads code" ->
// "RunDownloadsCode".
func pascalCase(title string) string {
	var b strings.Builder
	for _, w := range strings.FieldsFunc(title, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		w = strings.ToLower(w)
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}
