//go:build yara

// Package yara runs YARA rules (libyara through github.com/hillu/go-yara)
// as a scan.Matcher, on the bytes scan already read: never by path. It is
// built only with the "yara" build tag, so that the default build stays pure
// Go.
//
// Rules are compiled one file at a time first, so that a file that fails to
// compile is reported by name with its errors and the others still run.
package yara

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	goyara "github.com/hillu/go-yara/v4"

	"github.com/ctrforensics/ctrforensics/forensic/finding"
	"github.com/ctrforensics/ctrforensics/forensic/scan"
)

// RulePrefix starts the SARIF rule ID of every YARA rule: "YARA/NS.RULE".
const RulePrefix = "YARA/"

// CompileError is a rules file that did not compile.
type CompileError struct {
	File   string
	Errors []string
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("%s: %s", e.File, strings.Join(e.Errors, "; "))
}

// Matcher matches compiled YARA rules against a file's content.
type Matcher struct {
	rules   *goyara.Rules
	timeout time.Duration
	catalog []finding.Rule
}

// Load compiles the rules files named by paths (a directory: its .yar and
// .yara files, recursively, in name order), each in a namespace named after
// the file. Files that fail to compile are returned as CompileErrors; err is
// set only when no rule could be compiled or a path cannot be read.
func Load(paths []string, timeout time.Duration) (*Matcher, []*CompileError, error) {
	files, err := ruleFiles(paths)
	if err != nil {
		return nil, nil, err
	}
	comp, err := goyara.NewCompiler()
	if err != nil {
		return nil, nil, fmt.Errorf("yara compiler: %w", err)
	}
	var bad []*CompileError
	added := 0
	for _, f := range files {
		ns := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
		if ce := tryCompile(f, ns); ce != nil {
			bad = append(bad, ce)
			continue
		}
		if err := addFile(comp, f, ns); err != nil {
			return nil, bad, err
		}
		added++
	}
	if added == 0 {
		return nil, bad, fmt.Errorf("no YARA rules compiled from %s", strings.Join(paths, ", "))
	}
	rules, err := comp.GetRules()
	if err != nil {
		return nil, bad, fmt.Errorf("yara rules: %w", err)
	}
	return &Matcher{rules: rules, timeout: timeout, catalog: catalog(rules)}, bad, nil
}

// ruleFiles expands directories into their .yar and .yara files.
func ruleFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if ext := strings.ToLower(filepath.Ext(q)); !d.IsDir() && (ext == ".yar" || ext == ".yara") {
				found = append(found, q)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s holds no .yar or .yara file", p)
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}

// tryCompile compiles one file alone: a compiler that failed cannot be used
// any more, so a bad file must not reach the shared one.
func tryCompile(file, ns string) *CompileError {
	comp, err := goyara.NewCompiler()
	if err != nil {
		return &CompileError{File: file, Errors: []string{err.Error()}}
	}
	defer comp.Destroy()
	if err := addFile(comp, file, ns); err != nil {
		ce := &CompileError{File: file}
		for _, m := range comp.Errors {
			ce.Errors = append(ce.Errors, fmt.Sprintf("line %d: %s", m.Line, m.Text))
		}
		if len(ce.Errors) == 0 {
			ce.Errors = []string{err.Error()}
		}
		return ce
	}
	return nil
}

func addFile(comp *goyara.Compiler, file, ns string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := comp.AddFile(f, ns); err != nil {
		return fmt.Errorf("compile %s: %w", file, err)
	}
	return nil
}

// catalog lists every compiled rule as a finding.Rule.
func catalog(rules *goyara.Rules) []finding.Rule {
	var out []finding.Rule
	for _, r := range rules.GetRules() {
		sev, desc := metaOf(r.Metas())
		out = append(out, finding.Rule{ID: RulePrefix + r.Namespace() + "." + r.Identifier(), Title: "YARA rule " + r.Identifier(),
			Severity: sev, Help: desc})
	}
	return out
}

// metaOf reads the severity (meta "severity": low, medium, high, critical;
// medium when absent) and the description of a rule.
func metaOf(metas []goyara.Meta) (finding.Severity, string) {
	sev, desc := finding.Medium, "a YARA rule given with --rules"
	for _, m := range metas {
		s, ok := m.Value.(string)
		if !ok {
			continue
		}
		switch m.Identifier {
		case "severity":
			if strings.EqualFold(s, "critical") {
				sev = finding.High
			} else if v, err := finding.ParseSeverity(s); err == nil {
				sev = v
			}
		case "description":
			desc = s
		}
	}
	return sev, desc
}

// Rules returns the catalog of the compiled rules, for SARIF.
func (m *Matcher) Rules() []finding.Rule { return m.catalog }

// Match implements scan.Matcher on the bytes already read.
func (m *Matcher) Match(ctx context.Context, f *scan.File, content []byte) ([]scan.Finding, error) {
	var matches goyara.MatchRules
	if err := m.rules.ScanMem(content, 0, m.timeout, &matches); err != nil {
		return nil, fmt.Errorf("yara: %w", err)
	}
	out := make([]scan.Finding, 0, len(matches))
	for _, r := range matches {
		sev, _ := metaOf(r.Metas)
		var ids []string
		for _, s := range r.Strings {
			ids = append(ids, fmt.Sprintf("%s@%d", s.Name, s.Base+s.Offset))
		}
		reason := fmt.Sprintf("YARA rule %s:%s matched", r.Namespace, r.Rule)
		if len(ids) > 0 {
			reason += " (" + strings.Join(first(ids, 5), ", ") + ")"
		}
		out = append(out, scan.Finding{Rule: RulePrefix + r.Namespace + "." + r.Rule, Severity: sev,
			Title: "YARA rule " + r.Rule, Reason: reason, Evidence: strings.Join(first(ids, 5), ", ")})
	}
	return out, nil
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
	}
	return s
}
