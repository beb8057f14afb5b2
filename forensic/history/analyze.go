package history

import (
	"sort"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Finding is one match of a rule.
type Finding struct {
	Rule     string   // rule ID
	Severity Severity // the rule's severity
	Title    string   // the rule's title
	Reason   string   // one line, naming what matched
	History  int      // index of the history entry, -1 for the config itself
	Evidence string   // the matched text, at most 200 bytes, escaped to one line
}

// Layer is one of the image's layers, in order from the base up.
type Layer struct {
	DiffID digest.Digest
	Size   int64
}

// ConfigIndex is Finding.History for findings about the config itself.
const ConfigIndex = -1

// Limits on the length of Finding text, in bytes.
const (
	MaxEvidence = 200
	MaxReason   = 300
)

// input is what every check sees.
type input struct {
	cfg    ocispec.Image
	layers []Layer
	steps  []step
	rules  map[string]Rule
}

func (in *input) finding(rule string, history int, reason, evidence string) Finding {
	r := in.rules[rule]
	return Finding{Rule: rule, Severity: r.Severity, Title: r.Title, Reason: reason, History: history, Evidence: evidence}
}

// checks lists the rule implementations, apart from the secret scan.
func checks() []func(*input) []Finding {
	return []func(*input) []Finding{
		checkRemoteExec, checkAddURL, checkModes, checkPreload, checkLibraryPath,
		checkSearchPath, checkEntrypoint, checkRootUser, checkBackToRoot,
		checkLayers, checkNoHistory, checkTimestamps, checkInsecurePackages,
		checkUnrecordedConfig,
	}
}

// Analyze reads an image's config and layer list and returns the findings,
// sorted by severity (highest first), then history index (config first),
// then rule ID. layers may be nil, in which case the config's
// rootfs.diff_ids stand for them. Secret values found by the secret rules
// are masked in every Reason and Evidence.
func Analyze(cfg ocispec.Image, layers []Layer) []Finding {
	in := &input{cfg: cfg, layers: layers, steps: parseHistory(cfg.History), rules: ruleIndex()}
	fs, secrets := scanSecrets(in)
	for _, check := range checks() {
		fs = append(fs, check(in)...)
	}
	return finalize(fs, secrets)
}

// AtLeast reports whether any finding has severity s or higher.
func AtLeast(findings []Finding, s Severity) bool {
	for _, f := range findings {
		if f.Severity >= s {
			return true
		}
	}
	return false
}

// finalize masks secrets, escapes and truncates text, removes duplicates
// and sorts.
func finalize(fs []Finding, secrets []string) []Finding {
	out := make([]Finding, 0, len(fs))
	type key struct {
		rule     string
		history  int
		evidence string
	}
	seen := make(map[key]bool)
	for _, f := range fs {
		f.Reason = clip(oneLine(mask(f.Reason, secrets)), MaxReason)
		f.Evidence = clip(oneLine(mask(f.Evidence, secrets)), MaxEvidence)
		k := key{f.Rule, f.History, f.Evidence}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, f)
	}
	sortFindings(out)
	return out
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		switch {
		case a.Severity != b.Severity:
			return a.Severity > b.Severity
		case a.History != b.History:
			return a.History < b.History
		case a.Rule != b.Rule:
			return a.Rule < b.Rule
		}
		return a.Reason < b.Reason
	})
}
