package history

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"
)

func checkEntrypoint(in *input) []Finding {
	c := in.cfg.Config
	argv := append(append([]string(nil), c.Entrypoint...), c.Cmd...)
	if len(argv) == 0 {
		return nil
	}
	why := argvWhy(argv, c.WorkingDir)
	if why == "" {
		return nil
	}
	text := strings.Join(argv, " ")
	return []Finding{in.finding(RuleEntrypoint, ConfigIndex, "container command "+why+": "+cite(text), text)}
}

// argvWhy explains what is suspicious about a container command, or
// returns "".
func argvWhy(argv []string, wd string) string {
	joined := strings.Join(argv, " ")
	if strings.Contains(joined, "/dev/tcp/") || strings.Contains(joined, "/dev/udp/") {
		return "opens a network socket through /dev/tcp"
	}
	c, ok := resolve(&stage{words: argv, text: joined})
	if !ok {
		return ""
	}
	if why := commandWhy(c, wd); why != "" {
		return why
	}
	code, ok := inlineScript(c)
	if !ok {
		return ""
	}
	why := ""
	forEachCommand(code, func(c command, _ string) {
		switch {
		case why != "":
		case isFetcher(c.name):
			why = "is a shell one-liner that runs " + c.name
		default:
			why = commandWhy(c, wd)
		}
	})
	return why
}

// commandWhy reports a program or script run from an unusual place, or a
// netcat/socat that spawns a shell.
func commandWhy(c command, wd string) string {
	if w := execWhy(c.path, wd); w != "" {
		return "runs " + c.path + " from " + w
	}
	if mode, operand := runnerMode(c); mode == fromFile {
		if w := execWhy(operand, wd); w != "" {
			return "runs script " + operand + " from " + w
		}
	}
	switch c.name {
	case "nc", "ncat", "netcat":
		if containsWord(c.args, "-e") || containsWord(c.args, "-c") {
			return "spawns a program over the network with " + c.name + " -e"
		}
	case "socat":
		if l := strings.ToLower(strings.Join(c.args, " ")); strings.Contains(l, "exec:") || strings.Contains(l, "system:") {
			return "spawns a program over the network with socat"
		}
	}
	return ""
}

// execWhy applies pathWhy to a program path, resolving a relative one
// against the working directory. Bare names are looked up in PATH, which
// CTRF-IMG-007 covers.
func execWhy(p, wd string) string {
	if !strings.Contains(p, "/") || strings.HasPrefix(p, "$") {
		return ""
	}
	if !path.IsAbs(p) {
		p = path.Join("/", wd, p)
	}
	return pathWhy(p)
}

func checkRootUser(in *input) []Finding {
	u := in.cfg.Config.User
	if !isRoot(u) {
		return nil
	}
	reason := fmt.Sprintf("config User is %q, so the container runs as root", u)
	if u == "" {
		reason = "config User is empty, so the container runs as root"
	}
	return []Finding{in.finding(RuleRootUser, ConfigIndex, reason, "User="+u)}
}

// isRoot reports user specs naming uid 0, whatever the group.
func isRoot(spec string) bool {
	u, _, _ := strings.Cut(strings.TrimSpace(spec), ":")
	u = strings.TrimSpace(u)
	return u == "" || u == "0" || u == "root"
}

// userOf decodes a USER step body ("app", or "[app]" from old builders).
func userOf(body string) string {
	return strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(body), "["), "]"))
}

func checkBackToRoot(in *input) []Finding {
	nonRoot, last := "", -1
	for _, st := range in.steps {
		if st.kind != "USER" || st.onbuild {
			continue
		}
		switch u := userOf(st.body); {
		case !isRoot(u):
			nonRoot, last = u, -1
		case nonRoot != "":
			last = st.index
		}
	}
	if last < 0 {
		return nil
	}
	reason := fmt.Sprintf("USER switches back to root after %s and never leaves it", nonRoot)
	return []Finding{in.finding(RuleBackToRoot, last, reason, in.steps[last].raw)}
}

func checkUnrecordedConfig(in *input) []Finding {
	lastEP, lastCmd := -1, -1
	for _, st := range in.steps {
		switch {
		case st.onbuild:
		case st.kind == "ENTRYPOINT":
			lastEP = st.index
		case st.kind == "CMD":
			lastCmd = st.index
		}
	}
	var out []Finding
	c := in.cfg.Config
	if lastEP >= 0 {
		out = append(out, in.unrecorded("Entrypoint", c.Entrypoint, lastEP)...)
	}
	if lastCmd > lastEP {
		out = append(out, in.unrecorded("Cmd", c.Cmd, lastCmd)...)
	}
	return out
}

func (in *input) unrecorded(field string, got []string, idx int) []Finding {
	want := argvOf(in.steps[idx].body)
	if equalArgv(want, got) {
		return nil
	}
	reason := fmt.Sprintf("config %s %s differs from %s recorded in history[%d]: %s",
		field, jsonArgv(got), in.steps[idx].kind, idx, jsonArgv(want))
	return []Finding{in.finding(RuleUnrecordedConfig, ConfigIndex, reason, field+"="+jsonArgv(got))}
}

func equalArgv(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func jsonArgv(a []string) string {
	if a == nil {
		a = []string{}
	}
	b, _ := json.Marshal(a)
	return string(b)
}
