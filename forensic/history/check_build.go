package history

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
)

var (
	reRemoteURL = regexp.MustCompile(`(?i)^(?:https?|ftp)://`)
	reOctalMode = regexp.MustCompile(`^[0-7]{1,5}$`)
	reSymClause = regexp.MustCompile(`^([ugoa]*)((?:[-+=][rwxXstugo]*)+)$`)
	rePlainURL  = regexp.MustCompile(`(?i)\b(?:http|ftp)://`)
)

func checkAddURL(in *input) []Finding {
	var out []Finding
	for _, st := range in.steps {
		if st.kind != "ADD" {
			continue
		}
		srcs, dst := copyOperands(st.body)
		for _, s := range srcs {
			if reRemoteURL.MatchString(s) {
				reason := fmt.Sprintf("%s downloads %s into %s", st.label(), cite(s), cite(dst))
				out = append(out, in.finding(RuleAddURL, st.index, reason, st.body))
			}
		}
	}
	return out
}

// copyOperands splits the body of ADD or COPY into sources and destination,
// dropping --flags and the classic builder's "file:<hash> in <dst>" wording.
func copyOperands(body string) (srcs []string, dst string) {
	ws, ok := parseArgv(body)
	if !ok {
		ws = splitFields(body)
	}
	var ops []string
	for _, w := range ws {
		if !strings.HasPrefix(w, "--") {
			ops = append(ops, w)
		}
	}
	if n := len(ops); n >= 3 && ops[n-2] == "in" {
		ops = append(ops[:n-2], ops[n-1])
	}
	if len(ops) == 0 {
		return nil, ""
	}
	return ops[:len(ops)-1], ops[len(ops)-1]
}

// modeEffect is what a file mode grants.
type modeEffect struct {
	setuid, setgid, worldWritable bool
}

func checkModes(in *input) []Finding {
	var out []Finding
	for _, st := range in.steps {
		if st.kind != "RUN" {
			continue
		}
		forEachCommand(st.body, func(c command, ev string) {
			mode, ok := modeArg(c)
			if !ok {
				return
			}
			eff := parseMode(mode)
			if what := setidWords(eff); what != "" {
				out = append(out, in.finding(RuleSetuid, st.index, st.label()+" sets the "+what+": "+cite(c.st.text), ev))
			}
			if eff.worldWritable {
				out = append(out, in.finding(RuleWorldWritable, st.index, st.label()+" makes files world-writable: "+cite(c.st.text), ev))
			}
		})
	}
	return out
}

func setidWords(e modeEffect) string {
	switch {
	case e.setuid && e.setgid:
		return "setuid and setgid bits"
	case e.setuid:
		return "setuid bit"
	case e.setgid:
		return "setgid bit"
	}
	return ""
}

// modeArg returns the mode given to chmod, install -m or mkdir -m.
func modeArg(c command) (string, bool) {
	switch c.name {
	case "chmod":
		for _, a := range c.args {
			if a == "--" || isChmodFlag(a) {
				continue
			}
			return a, !strings.HasPrefix(a, "--")
		}
	case "install", "mkdir":
		opts, _ := parseOpts(c.args, "mgoStZ", []string{"mode", "group", "owner", "suffix", "target-directory"})
		for _, o := range opts {
			if o.name == "m" || o.name == "mode" {
				return o.value, true
			}
		}
	}
	return "", false
}

// isChmodFlag tells chmod's options (-R, -f, -v, -c, --long) from modes
// such as -x or -rwx.
func isChmodFlag(a string) bool {
	if strings.HasPrefix(a, "--") {
		return !strings.HasPrefix(a, "--reference")
	}
	return len(a) > 1 && a[0] == '-' && strings.Trim(a[1:], "Rfvc") == ""
}

// parseMode interprets an octal or symbolic mode.
func parseMode(m string) modeEffect {
	if reOctalMode.MatchString(m) {
		v, _ := strconv.ParseUint(m, 8, 32)
		return modeEffect{
			setuid:        v&0o4000 != 0,
			setgid:        v&0o2000 != 0,
			worldWritable: v&0o002 != 0 && v&0o1000 == 0,
		}
	}
	var e modeEffect
	sticky := false
	for _, clause := range strings.Split(m, ",") {
		sticky = symbolicClause(clause, &e) || sticky
	}
	e.worldWritable = e.worldWritable && !sticky
	return e
}

// symbolicClause adds the effect of one clause such as u+s or a+rwxt and
// reports whether it sets the sticky bit.
func symbolicClause(clause string, e *modeEffect) (sticky bool) {
	m := reSymClause.FindStringSubmatch(clause)
	if m == nil {
		return false
	}
	who := m[1]
	all := who == "" || strings.Contains(who, "a")
	for _, op := range splitOps(m[2]) {
		if op[0] == '-' {
			continue
		}
		perms := op[1:]
		if strings.Contains(perms, "s") {
			e.setuid = e.setuid || all || strings.Contains(who, "u")
			e.setgid = e.setgid || all || strings.Contains(who, "g")
		}
		if strings.Contains(perms, "w") && (strings.Contains(who, "a") || strings.Contains(who, "o")) {
			e.worldWritable = true
		}
		sticky = sticky || strings.Contains(perms, "t")
	}
	return sticky
}

// splitOps splits "+rwx-w=s" into "+rwx", "-w", "=s".
func splitOps(s string) []string {
	var out []string
	start := 0
	for i := 1; i <= len(s); i++ {
		if i == len(s) || strings.IndexByte("+-=", s[i]) >= 0 {
			out = append(out, s[start:i])
			start = i
		}
	}
	return out
}

func checkInsecurePackages(in *input) []Finding {
	var out []Finding
	for _, st := range in.steps {
		if st.kind != "RUN" {
			continue
		}
		forEachCommand(st.body, func(c command, ev string) {
			if !isPackageManager(c) {
				return
			}
			for _, a := range c.args {
				if rePlainURL.MatchString(a) {
					reason := st.label() + " installs packages over plain HTTP/FTP: " + cite(c.st.text)
					out = append(out, in.finding(RuleInsecurePackage, st.index, reason, ev))
					return
				}
			}
		})
	}
	return out
}

func isPackageManager(c command) bool {
	if interpreter(c.name) == "python" && at(c.args, 0) == "-m" {
		return strings.HasPrefix(at(c.args, 1), "pip")
	}
	switch strings.TrimRight(c.name, "0123456789.") {
	case "pip", "npm", "yarn", "pnpm", "gem", "apk", "yum", "dnf", "microdnf", "rpm",
		"zypper", "easy_install", "conda", "mamba":
		return true
	}
	return false
}

// writesPreload reports a command that writes /etc/ld.so.preload.
func writesPreload(c command) bool {
	for _, o := range c.st.outs {
		if path.Clean(o) == "/etc/ld.so.preload" {
			return true
		}
	}
	switch c.name {
	case "tee", "cp", "mv", "install", "ln", "dd", "sed", "rsync":
		for _, a := range c.args {
			if strings.HasSuffix(a, "/etc/ld.so.preload") {
				return true
			}
		}
	}
	return false
}

// copiesPreload reports an ADD or COPY whose destination is
// /etc/ld.so.preload.
func copiesPreload(body string) bool {
	srcs, dst := copyOperands(body)
	if path.Clean(dst) == "/etc/ld.so.preload" {
		return true
	}
	if path.Clean(dst) != "/etc" {
		return false
	}
	for _, s := range srcs {
		if path.Base(s) == "ld.so.preload" {
			return true
		}
	}
	return false
}
