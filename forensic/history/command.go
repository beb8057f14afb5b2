package history

import (
	"path"
	"strings"
)

// command is a stage with its prefixes (sudo, env, VAR=x, exec...) removed.
type command struct {
	path string // the command word as written
	name string // its base name
	args []string
	st   *stage
}

// resolve finds the command a stage runs.
func resolve(st *stage) (command, bool) {
	ws := st.words
	for guard := 0; len(ws) > 0 && guard < 16; guard++ {
		n := prefixLen(ws)
		if n == 0 {
			return command{path: ws[0], name: baseName(ws[0]), args: ws[1:], st: st}, true
		}
		ws = ws[min(n, len(ws)):]
	}
	return command{}, false
}

func baseName(w string) string {
	if strings.HasPrefix(w, "$(") || strings.HasPrefix(w, "`") {
		return w
	}
	return path.Base(w)
}

// prefixLen returns how many leading words are a wrapper around the real
// command, 0 if ws[0] is the command.
func prefixLen(ws []string) int {
	if isAssignment(ws[0]) {
		return 1
	}
	rest := ws[1:]
	switch path.Base(ws[0]) {
	case "if", "then", "else", "elif", "do", "while", "until", "!", "{", "}",
		"time", "exec", "nohup", "command", "builtin", "busybox", "stdbuf", "setsid":
		return 1 + skipFlags(rest, "", 0)
	case "sudo", "doas":
		return 1 + skipFlags(rest, "ugCDhprtUT", 0)
	case "env":
		return 1 + skipFlags(rest, "uCS", 0)
	case "nice", "ionice":
		return 1 + skipFlags(rest, "nct", 0)
	case "timeout":
		return 1 + skipFlags(rest, "sk", 1)
	}
	return 0
}

func isAssignment(w string) bool {
	name, _, ok := strings.Cut(w, "=")
	return ok && isName(name)
}

func isName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '_' && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// skipFlags counts leading flag words (and the values of short flags listed
// in argLetters), then positional more words.
func skipFlags(ws []string, argLetters string, positional int) int {
	i := 0
	for i < len(ws) && len(ws[i]) > 1 && ws[i][0] == '-' {
		w := ws[i]
		i++
		if w == "--" {
			break
		}
		if len(w) == 2 && strings.IndexByte(argLetters, w[1]) >= 0 {
			i++
		}
	}
	return min(i+positional, len(ws))
}

// opt is one parsed command-line option.
type opt struct{ name, value string }

// parseOpts splits args into options and operands. Short options listed in
// shortArg and long options in longArg take a value.
func parseOpts(args []string, shortArg string, longArg []string) (opts []opt, operands []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return opts, append(operands, args[i+1:]...)
		case strings.HasPrefix(a, "--"):
			o, used := longOpt(a[2:], args[i+1:], longArg)
			opts, i = append(opts, o), i+used
		case len(a) > 1 && a[0] == '-':
			os, used := shortOpts(a[1:], args[i+1:], shortArg)
			opts, i = append(opts, os...), i+used
		default:
			operands = append(operands, a)
		}
	}
	return opts, operands
}

func longOpt(a string, next []string, longArg []string) (opt, int) {
	if name, v, ok := strings.Cut(a, "="); ok {
		return opt{name, v}, 0
	}
	for _, l := range longArg {
		if l == a && len(next) > 0 {
			return opt{a, next[0]}, 1
		}
	}
	return opt{name: a}, 0
}

func shortOpts(cluster string, next []string, shortArg string) ([]opt, int) {
	var out []opt
	for j := 0; j < len(cluster); j++ {
		name := cluster[j : j+1]
		if strings.IndexByte(shortArg, cluster[j]) < 0 {
			out = append(out, opt{name: name})
			continue
		}
		if j+1 < len(cluster) {
			return append(out, opt{name, cluster[j+1:]}), 0
		}
		if len(next) > 0 {
			return append(out, opt{name, next[0]}), 1
		}
		return append(out, opt{name: name}), 0
	}
	return out, 0
}

func hasOpt(opts []opt, names ...string) bool {
	for _, o := range opts {
		for _, n := range names {
			if o.name == n {
				return true
			}
		}
	}
	return false
}

func isShell(name string) bool {
	switch name {
	case "sh", "bash", "ash", "dash", "zsh", "ksh", "mksh":
		return true
	}
	return false
}

// interpreter returns the family of a script interpreter (python3.11 ->
// python), or "".
func interpreter(name string) string {
	base := strings.TrimRight(name, "0123456789.")
	switch base {
	case "python", "perl", "ruby", "node", "nodejs", "php":
		return base
	}
	return ""
}

// inlineLetters are the options that make an interpreter run code given on
// the command line instead of stdin or a file.
func inlineLetters(family string) string {
	switch family {
	case "python":
		return "cm"
	case "perl":
		return "eE"
	case "ruby":
		return "e"
	case "node", "nodejs":
		return "ep"
	case "php":
		return "r"
	}
	return "c" // shells
}

func isFetcher(name string) bool {
	switch name {
	case "curl", "wget", "fetch", "aria2c", "nc", "ncat", "netcat", "socat":
		return true
	}
	return false
}

// isDecoder reports base64 -d, openssl base64 -d and xxd -r.
func isDecoder(c command) bool {
	opts, _ := parseOpts(c.args, "", nil)
	switch c.name {
	case "base64":
		return hasOpt(opts, "d", "D", "decode")
	case "openssl":
		return hasOpt(opts, "d") && (containsWord(c.args, "base64") || hasOpt(opts, "a", "base64"))
	case "xxd":
		return hasOpt(opts, "r")
	}
	return false
}

func containsWord(ws []string, w string) bool {
	for _, x := range ws {
		if x == w {
			return true
		}
	}
	return false
}

// scriptRunner reports whether c is a shell or interpreter and, if so, how it
// gets its program.
type scriptMode int

const (
	notRunner scriptMode = iota
	fromStdin
	fromInline
	fromFile
)

// runnerMode classifies an interpreter invocation; operand is the inline
// code or script file.
func runnerMode(c command) (mode scriptMode, operand string) {
	family := interpreter(c.name)
	if family == "" && !isShell(c.name) {
		return notRunner, ""
	}
	inline := inlineLetters(family)
	for i := 0; i < len(c.args); i++ {
		a := c.args[i]
		switch {
		case a == "-":
			return fromStdin, ""
		case a == "-o" || a == "+o":
			i++
		case a == "--eval" || a == "--command":
			return fromInline, at(c.args, i+1)
		case strings.HasPrefix(a, "--") || len(a) < 2 || (a[0] != '-' && a[0] != '+'):
			if len(a) > 0 && a[0] != '-' {
				return fromFile, a
			}
		case strings.ContainsAny(a[1:], inline):
			return fromInline, inlineArg(c.args, i, inline, family != "")
		case family == "" && strings.ContainsRune(a[1:], 's'):
			return fromStdin, ""
		}
	}
	return fromStdin, ""
}

// inlineArg returns the code following an inline option such as -c, -e or
// -pe 'code'; interpreters also accept it attached (-e'code').
func inlineArg(args []string, i int, letters string, attached bool) string {
	a := args[i]
	j := strings.IndexAny(a[1:], letters) + 1
	if attached && j+1 < len(a) {
		return a[j+1:]
	}
	for _, w := range args[i+1:] {
		if w != "--" && (len(w) == 0 || w[0] != '-') {
			return w
		}
	}
	return ""
}

func at(ws []string, i int) string {
	if i < len(ws) {
		return ws[i]
	}
	return ""
}

// inlineScript returns the shell code a command runs: sh -c CODE, or the
// arguments of eval.
func inlineScript(c command) (string, bool) {
	if c.name == "eval" {
		return strings.Join(c.args, " "), len(c.args) > 0
	}
	if !isShell(c.name) {
		return "", false
	}
	mode, code := runnerMode(c)
	return code, mode == fromInline && code != ""
}

// walkScripts calls fn for a script and for every shell script nested in it
// through sh -c or eval, up to a fixed depth. ctx is the top-level pipeline
// that contains a nested script ("" at the top level).
func walkScripts(src string, fn func(src string, pls []pipeline, ctx string)) {
	walkDepth(src, "", 0, fn)
}

const maxNesting = 4

func walkDepth(src, ctx string, depth int, fn func(src string, pls []pipeline, ctx string)) {
	if depth > maxNesting {
		return
	}
	pls := parseScript(src)
	fn(src, pls, ctx)
	for _, pl := range pls {
		outer := orElse(ctx, pl.text)
		for _, st := range pl.stages {
			if c, ok := resolve(st); ok {
				if code, ok := inlineScript(c); ok {
					walkDepth(code, outer, depth+1, fn)
				}
			}
		}
	}
}

// forEachCommand calls fn for every command of a script, nested ones included,
// with the text to cite as evidence.
func forEachCommand(src string, fn func(c command, evidence string)) {
	walkScripts(src, func(_ string, pls []pipeline, ctx string) {
		for _, pl := range pls {
			for _, st := range pl.stages {
				if c, ok := resolve(st); ok {
					fn(c, orElse(ctx, st.text))
				}
			}
		}
	})
}

func orElse(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
