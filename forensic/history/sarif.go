package history

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
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

// sarifPhysical names the image as the artifact: GitHub code scanning
// rejects results whose locations are only logical.
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

// WriteSARIF writes findings as a SARIF 2.1.0 log with one run. The driver
// lists the whole rule catalog; each result points at a logical location,
// "config" or "history[N]", qualified by imageRef, and at the image itself
// as its physical artifact (imageRef percent-encoded into a relative URI).
// Findings whose rule is not in the catalog are rejected.
func WriteSARIF(w io.Writer, imageRef string, toolVersion string, findings []Finding) error {
	rules := Rules()
	index := make(map[string]int, len(rules))
	for i, r := range rules {
		index[r.ID] = i
	}
	results := make([]sarifResult, 0, len(findings))
	for _, f := range findings {
		i, ok := index[f.Rule]
		if !ok {
			return fmt.Errorf("history: finding has unknown rule %q", f.Rule)
		}
		results = append(results, sarifResultOf(f, i, imageRef))
	}
	log := sarifLog{Schema: SARIFSchema, Version: SARIFVersion, Runs: []sarifRun{{
		Tool:    sarifTool{Driver: sarifDriver{Name: ToolName, Version: toolVersion, InformationURI: InformationURI, Rules: sarifRules(rules)}},
		Results: results,
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
			DefaultConfiguration: sarifConfig{r.Severity.sarifLevel()},
			Properties: map[string]any{
				"tags":              []string{"security", "container", "forensics"},
				"security-severity": securitySeverity(r.Severity),
				"severity":          r.Severity.String(),
			},
		}
	}
	return out
}

func sarifResultOf(f Finding, ruleIndex int, imageRef string) sarifResult {
	name, kind := "config", "object"
	if f.History >= 0 {
		name, kind = "history["+strconv.Itoa(f.History)+"]", "element"
	}
	sum := sha256.Sum256([]byte(f.Rule + "\x00" + name + "\x00" + f.Evidence))
	return sarifResult{
		RuleID:    f.Rule,
		RuleIndex: ruleIndex,
		Level:     f.Severity.sarifLevel(),
		Message:   sarifText{f.Reason},
		Locations: []sarifLocation{{
			PhysicalLocation: sarifPhysical{sarifArtifact{artifactURI(imageRef)}, sarifRegion{1}},
			LogicalLocations: []sarifLogical{{Name: name, FullyQualifiedName: imageRef + "#" + name, Kind: kind}},
		}},
		PartialFingerprints: map[string]string{"ctrforensicsFinding/v1": hex.EncodeToString(sum[:16])},
		Properties: map[string]any{
			"severity": f.Severity.String(),
			"history":  f.History,
			"evidence": f.Evidence,
		},
	}
}

// artifactURI turns an image reference into a relative URI reference,
// percent-encoding everything but unreserved characters and "/", so that
// "alpine:3.19" is not read as a URI with scheme "alpine".
func artifactURI(ref string) string {
	if ref == "" {
		return "image"
	}
	var b strings.Builder
	for i := 0; i < len(ref); i++ {
		c := ref[i]
		if c == '/' || c == '-' || c == '.' || c == '_' || c == '~' ||
			(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return strings.TrimLeft(b.String(), "/")
}

// securitySeverity is the CVSS-like score GitHub code scanning reads.
func securitySeverity(s Severity) string {
	switch s {
	case High:
		return "8.0"
	case Medium:
		return "5.5"
	}
	return "2.0"
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
