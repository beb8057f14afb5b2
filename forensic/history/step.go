package history

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// step is a history entry with its created_by decoded.
type step struct {
	index   int
	kind    string // upper-case instruction; RUN for shell commands
	body    string // text after the instruction; for RUN the script
	raw     string // created_by as recorded
	onbuild bool
	args    []pair // build arguments recorded as "|N NAME=value ..."
	empty   bool
}

// pair is a NAME=value assignment; set is false for "ARG NAME".
type pair struct {
	name, value string
	set         bool
}

// label is how reasons name the step's instruction.
func (s step) label() string {
	if s.onbuild {
		return "ONBUILD " + s.kind
	}
	return s.kind
}

var (
	reShellPrefix = regexp.MustCompile(`^(?:/usr)?(?:/bin/)?(?:ba|a|da|z|k|mk)?sh((?:\s+[-+]o\s+[\w-]+|\s+-[A-Za-z]+)*)(?:\s+|$)`)
	reWinPrefix   = regexp.MustCompile(`(?i)^(?:cmd(?:\.exe)?\s+/S\s+/C|powershell(?:\.exe)?\s+-Command)(?:\s+|$)`)
	reBuildArgs   = regexp.MustCompile(`^\|(\d+)\s`)
)

func parseHistory(hs []ocispec.History) []step {
	out := make([]step, len(hs))
	for i, h := range hs {
		out[i] = parseStep(i, h)
	}
	return out
}

func parseStep(i int, h ocispec.History) step {
	text := strings.TrimSpace(h.CreatedBy)
	text = strings.TrimSpace(strings.TrimSuffix(text, "# buildkit"))
	s := step{index: i, raw: h.CreatedBy, empty: h.EmptyLayer}
	s.kind, s.body, s.args, s.onbuild = splitInstruction(text, 0)
	return s
}

// splitInstruction decodes created_by text into instruction, body and build
// arguments.
func splitInstruction(text string, depth int) (kind, body string, args []pair, onbuild bool) {
	if kw, rest, ok := keyword(text); ok {
		switch {
		case kw == "ONBUILD" && depth == 0:
			kind, body, args, _ = splitInstruction(rest, 1)
			return kind, body, args, true
		case kw == "RUN":
			body, args = runBody(rest)
			return kw, body, args, false
		}
		return kw, rest, nil, false
	}
	rest, args := stripBuildArgs(text)
	rest, _ = stripShell(rest)
	if nop, ok := strings.CutPrefix(rest, "#(nop)"); ok {
		if kw, b, ok := keyword(strings.TrimSpace(nop)); ok && kw != "RUN" {
			return splitInstruction(kw+" "+b, depth)
		}
		return "NOP", strings.TrimSpace(nop), args, false
	}
	return "RUN", execForm(rest), args, false
}

// runBody decodes the text after a BuildKit "RUN".
func runBody(rest string) (string, []pair) {
	rest, args := stripBuildArgs(rest)
	if script, ok := stripShell(rest); ok {
		return script, args
	}
	return execForm(rest), args
}

// execForm turns ["sh","-c","x"] into x and ["a","b"] into "a b"; other
// text is returned as is.
func execForm(s string) string {
	argv, ok := parseArgv(s)
	if !ok {
		return s
	}
	if len(argv) >= 3 && isShell(baseName(argv[0])) && argv[len(argv)-2] == "-c" {
		return argv[len(argv)-1]
	}
	return strings.Join(argv, " ")
}

func keyword(text string) (kw, rest string, ok bool) {
	first, rest, _ := strings.Cut(text, " ")
	switch first {
	case "RUN", "ADD", "COPY", "ENV", "ARG", "USER", "ENTRYPOINT", "CMD", "WORKDIR",
		"LABEL", "EXPOSE", "VOLUME", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "ONBUILD",
		"MAINTAINER", "FROM":
		return first, strings.TrimSpace(rest), true
	}
	return "", "", false
}

// stripShell removes a leading "/bin/sh -c" (any shell, any flags ending in
// c) or "cmd /S /C".
func stripShell(s string) (string, bool) {
	if m := reShellPrefix.FindStringSubmatch(s); m != nil {
		flags := strings.Fields(m[1])
		if len(flags) > 0 && strings.HasPrefix(flags[len(flags)-1], "-") &&
			strings.Contains(flags[len(flags)-1], "c") {
			return s[len(m[0]):], true
		}
	}
	if m := reWinPrefix.FindString(s); m != "" {
		return s[len(m):], true
	}
	return s, false
}

// stripBuildArgs removes the "|N NAME=value ..." prefix the builders record
// for RUN steps that see build arguments. Values containing blanks are
// recorded ambiguously; each of the N arguments is taken as one blank-free
// word.
func stripBuildArgs(s string) (string, []pair) {
	m := reBuildArgs.FindStringSubmatch(s)
	if m == nil {
		return s, nil
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return s, nil
	}
	rest := s[len(m[0]):]
	var args []pair
	for ; n > 0 && rest != ""; n-- {
		tok, r, _ := strings.Cut(strings.TrimLeft(rest, " "), " ")
		name, val, ok := strings.Cut(tok, "=")
		args = append(args, pair{name: name, value: val, set: ok})
		rest = r
	}
	return strings.TrimSpace(rest), args
}

// parseArgv decodes ["a","b"] (JSON) or ["a" "b"] (Go %q, as the classic
// builder and BuildKit record CMD and ENTRYPOINT).
func parseArgv(s string) ([]string, bool) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") {
		return nil, false
	}
	var argv []string
	if json.Unmarshal([]byte(s), &argv) == nil {
		return argv, true
	}
	return parseQuotedList(s[1 : len(s)-1])
}

func parseQuotedList(s string) ([]string, bool) {
	var argv []string
	for {
		s = strings.TrimLeft(s, " ,")
		if s == "" {
			return argv, true
		}
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			return nil, false
		}
		v, err := strconv.Unquote(q)
		if err != nil {
			return nil, false
		}
		argv = append(argv, v)
		s = s[len(q):]
	}
}

// parsePairs decodes the body of ENV or ARG: NAME=value ..., or the classic
// "ENV NAME value" form. Blank-separated words without "=" continue the
// previous value, since the classic builder records values unquoted.
func parsePairs(kind, body string) []pair {
	fields := splitFields(body)
	if len(fields) == 0 {
		return nil
	}
	if kind == "ENV" && !strings.Contains(fields[0], "=") {
		name, value, _ := strings.Cut(strings.TrimSpace(body), " ")
		return []pair{{name: name, value: unquoteValue(strings.TrimSpace(value)), set: true}}
	}
	var out []pair
	for _, f := range fields {
		name, value, ok := strings.Cut(f, "=")
		if (!ok || !isName(name)) && len(out) > 0 && kind == "ENV" {
			out[len(out)-1].value += " " + f
			continue
		}
		out = append(out, pair{name: name, value: value, set: ok})
	}
	return out
}

func unquoteValue(v string) string {
	if f := splitFields(v); len(f) == 1 {
		return f[0]
	}
	return v
}

// argvOf decodes a CMD/ENTRYPOINT step body; a shell-form body is wrapped
// as ["/bin/sh", "-c", body].
func argvOf(body string) []string {
	if argv, ok := parseArgv(body); ok {
		return argv
	}
	if strings.TrimSpace(body) == "" {
		return nil
	}
	return []string{"/bin/sh", "-c", body}
}
