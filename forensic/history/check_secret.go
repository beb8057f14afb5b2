package history

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
)

var reVarRef = regexp.MustCompile(`^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$`)

// secretPattern is a credential format.
type secretPattern struct {
	what string
	re   *regexp.Regexp
}

// secretPatterns returns the credential formats, compiled on first use
// rather than at package initialization, which every command of the binary
// would pay for.
var secretPatterns = sync.OnceValue(func() []secretPattern {
	return []secretPattern{
		{"an AWS access key ID", regexp.MustCompile(`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b`)},
		{"a private key", regexp.MustCompile(`-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)`)},
		{"a GitHub token", regexp.MustCompile(`\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b`)},
		{"a Slack token", regexp.MustCompile(`\bxox[abposr]-[A-Za-z0-9-]{10,}`)},
		{"a GitLab token", regexp.MustCompile(`\bglpat-[A-Za-z0-9_-]{20,}`)},
		{"a Google API key", regexp.MustCompile(`\bAIza[0-9A-Za-z_-]{35}`)},
		{"a Stripe live key", regexp.MustCompile(`\b[rs]k_live_[0-9A-Za-z]{24,}`)},
		{"an npm token", regexp.MustCompile(`\bnpm_[A-Za-z0-9]{36}\b`)},
	}
})

// secretMatch is one credential found in a text.
type secretMatch struct{ what, text string }

func findCredentials(s string) []secretMatch {
	var out []secretMatch
	for _, p := range secretPatterns() {
		for _, m := range p.re.FindAllString(s, -1) {
			out = append(out, secretMatch{p.what, m})
		}
	}
	return out
}

// secretScan accumulates secret findings and the values to mask.
type secretScan struct {
	in       *input
	findings []Finding
	values   []string
	seen     map[string]bool
}

// scanSecrets runs the secret rules and returns their findings and every
// secret value found, for masking.
func scanSecrets(in *input) ([]Finding, []string) {
	sc := &secretScan{in: in, seen: make(map[string]bool)}
	for _, p := range envPairs(in, true) {
		sc.pair(p)
	}
	for _, st := range in.steps {
		if st.kind != "ENV" && st.kind != "ARG" {
			sc.text(st.label(), st.index, st.body)
		}
	}
	c := in.cfg.Config
	keys := make([]string, 0, len(c.Labels))
	for k := range c.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		sc.text("config label "+k, ConfigIndex, c.Labels[k])
	}
	sc.text("config Entrypoint/Cmd", ConfigIndex, strings.Join(append(append([]string(nil), c.Entrypoint...), c.Cmd...), " "))
	return sc.findings, sc.values
}

func (sc *secretScan) add(rule string, history int, reason, evidence, key string) {
	if sc.seen[rule+"\x00"+key] {
		return
	}
	sc.seen[rule+"\x00"+key] = true
	sc.findings = append(sc.findings, sc.in.finding(rule, history, reason, evidence))
}

// pair checks a variable: its value against credential formats, else its
// name against secret-looking names. The evidence never holds the value.
func (sc *secretScan) pair(p envPair) {
	if !p.set || !literalValue(p.value) {
		return
	}
	masked := p.name + "=" + maskText
	named := secretName(p.name)
	if named {
		sc.values = append(sc.values, p.value)
	}
	if ms := findCredentials(p.value); len(ms) > 0 {
		for _, m := range ms {
			sc.values = append(sc.values, m.text)
			sc.add(RuleSecretValue, p.history, fmt.Sprintf("%s %s holds %s (masked)", p.src, p.name, m.what), masked, m.text)
		}
		return
	}
	if named {
		reason := fmt.Sprintf("%s %s looks like a secret (value masked, %d bytes)", p.src, p.name, len(p.value))
		sc.add(RuleSecretName, p.history, reason, masked, p.name+"="+p.value)
	}
}

// text checks free text (a RUN script, a label) against credential
// formats. The evidence is the text; finalize masks the match.
func (sc *secretScan) text(src string, history int, s string) {
	for _, m := range findCredentials(s) {
		sc.values = append(sc.values, m.text)
		sc.add(RuleSecretValue, history, fmt.Sprintf("%s contains %s (masked)", src, m.what), s, m.text)
	}
}

// literalValue rejects empty values, bare variable references and booleans.
func literalValue(v string) bool {
	v = strings.TrimSpace(v)
	if v == "" || reVarRef.MatchString(v) {
		return false
	}
	switch strings.ToLower(v) {
	case "true", "false", "yes", "no", "on", "off", "none", "null":
		return false
	}
	return true
}

// secretName reports names such as DB_PASSWORD, apiKey, GITHUB_TOKEN or
// AWS_SECRET_ACCESS_KEY, but not TOKEN_URL, PASSWORD_FILE or
// TOKENIZER_PARALLELISM.
func secretName(name string) bool {
	words := strings.FieldsFunc(strings.ToUpper(name), func(r rune) bool {
		return r == '_' || r == '-' || r == '.'
	})
	if len(words) == 0 || referenceWord(words[len(words)-1]) {
		return false
	}
	for i, w := range words {
		if secretWord(w) || (i > 0 && keyPair(words[i-1], w)) {
			return true
		}
	}
	return false
}

func secretWord(w string) bool {
	for _, k := range []string{"PASSWORD", "PASSWD", "SECRET", "TOKEN", "CREDENTIAL", "APIKEY", "ACCESSKEY", "PRIVATEKEY"} {
		if strings.HasSuffix(w, k) || strings.HasSuffix(w, k+"S") {
			return true
		}
	}
	return false
}

func keyPair(prev, w string) bool {
	if w != "KEY" && w != "KEYS" {
		return false
	}
	return strings.HasSuffix(prev, "API") || strings.HasSuffix(prev, "ACCESS") || strings.HasSuffix(prev, "PRIVATE")
}

// referenceWord is a last name word that makes the variable a pointer to a
// secret rather than the secret itself.
func referenceWord(w string) bool {
	switch w {
	case "FILE", "PATH", "DIR", "URL", "URI", "ENDPOINT", "HOST", "PORT", "NAME", "TYPE":
		return true
	}
	return false
}
