package history

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

var reAllocator = regexp.MustCompile(`^/(?:usr/)?(?:local/)?lib(?:64)?/(?:[\w.-]+/)?lib(?:jemalloc|tcmalloc(?:_minimal)?|mimalloc)\.so(?:\.[\d.]+)?$`)

// envPair is a variable assignment and where it was made.
type envPair struct {
	pair
	src     string // ENV, ARG, RUN build argument, config Env
	history int
}

// envPairs lists ENV assignments from history and config Env entries not
// explained by them; with args, also ARG defaults and build arguments.
func envPairs(in *input, args bool) []envPair {
	var out []envPair
	seen := make(map[string]bool)
	for _, st := range in.steps {
		switch {
		case st.kind == "ENV":
			for _, p := range parsePairs("ENV", st.body) {
				out = append(out, envPair{p, st.label(), st.index})
				seen[p.name+"="+p.value] = true
			}
		case st.kind == "ARG" && args:
			for _, p := range parsePairs("ARG", st.body) {
				out = append(out, envPair{p, st.label(), st.index})
			}
		}
		for _, p := range st.args {
			if args {
				out = append(out, envPair{p, st.label() + " build argument", st.index})
			}
		}
	}
	for _, kv := range in.cfg.Config.Env {
		name, value, ok := strings.Cut(kv, "=")
		if !seen[kv] {
			out = append(out, envPair{pair{name, value, ok}, "config Env", ConfigIndex})
		}
	}
	return out
}

func checkPreload(in *input) []Finding {
	var out []Finding
	for _, p := range envPairs(in, false) {
		if (p.name == "LD_PRELOAD" || p.name == "LD_AUDIT") && strings.TrimSpace(p.value) != "" {
			reason := fmt.Sprintf("%s sets %s=%s%s", p.src, p.name, cite(p.value), allocatorNote(p.value))
			out = append(out, in.finding(RulePreload, p.history, reason, p.name+"="+p.value))
		}
	}
	for _, st := range in.steps {
		out = append(out, preloadWrites(in, st)...)
	}
	return out
}

func allocatorNote(v string) string {
	for _, lib := range strings.FieldsFunc(v, func(r rune) bool { return r == ':' || r == ' ' }) {
		if !reAllocator.MatchString(lib) {
			return ""
		}
	}
	return " (a known memory allocator)"
}

func preloadWrites(in *input, st step) []Finding {
	var out []Finding
	switch st.kind {
	case "ADD", "COPY":
		if copiesPreload(st.body) {
			out = append(out, in.finding(RulePreload, st.index, st.label()+" installs /etc/ld.so.preload: "+cite(st.body), st.body))
		}
	case "RUN":
		forEachCommand(st.body, func(c command, ev string) {
			if writesPreload(c) {
				out = append(out, in.finding(RulePreload, st.index, st.label()+" writes /etc/ld.so.preload: "+cite(c.st.text), ev))
			}
		})
	}
	return out
}

func checkLibraryPath(in *input) []Finding {
	var out []Finding
	for _, p := range envPairs(in, false) {
		if p.name == "LD_LIBRARY_PATH" && strings.TrimSpace(p.value) != "" {
			reason := fmt.Sprintf("%s sets LD_LIBRARY_PATH=%s", p.src, cite(p.value))
			out = append(out, in.finding(RuleLibraryPath, p.history, reason, p.name+"="+p.value))
		}
	}
	return out
}

func checkSearchPath(in *input) []Finding {
	var out []Finding
	for _, p := range envPairs(in, false) {
		why := ""
		switch {
		case !p.set:
		case p.name == "PATH":
			why = pathShadowing(p.value)
		case p.name == "LD_LIBRARY_PATH" && p.value != "":
			why = libraryShadowing(p.value)
		}
		if why != "" {
			reason := fmt.Sprintf("%s %s %s", p.src, p.name, why)
			out = append(out, in.finding(RuleSearchPath, p.history, reason, p.name+"="+p.value))
		}
	}
	return out
}

// pathShadowing describes the first unusual PATH entry that comes before a
// system directory (or any, if there is none), or returns "".
func pathShadowing(value string) string {
	entries := strings.Split(value, ":")
	last := -1
	for i, e := range entries {
		if isSystemBinDir(e) {
			last = i
		}
	}
	for i, e := range entries {
		if last >= 0 && i > last {
			break
		}
		if why := unusualEntry(e); why != "" {
			return fmt.Sprintf("puts %q (%s) ahead of system directories", e, why)
		}
	}
	return ""
}

func libraryShadowing(value string) string {
	for _, e := range strings.Split(value, ":") {
		if why := unusualEntry(e); why != "" {
			return fmt.Sprintf("puts %q (%s) ahead of system libraries", e, why)
		}
	}
	return ""
}

func isSystemBinDir(e string) bool {
	switch strings.TrimSuffix(e, "/") {
	case "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin", "$PATH", "${PATH}":
		return true
	}
	return false
}

// unusualEntry explains why a search-path entry is dangerous, or returns "".
func unusualEntry(e string) string {
	switch {
	case e == "":
		return "an empty entry, the current directory"
	case strings.HasPrefix(e, "$"):
		return ""
	case !strings.HasPrefix(e, "/"):
		return "a relative entry"
	}
	return pathWhy(e)
}

// pathWhy explains why an absolute path is an unusual place for programs:
// a world-writable temporary directory or a hidden path.
func pathWhy(p string) string {
	p = path.Clean(p)
	for _, d := range []string{"/tmp", "/var/tmp", "/dev/shm", "/run/shm"} {
		if p == d || strings.HasPrefix(p, d+"/") {
			return "a world-writable directory"
		}
	}
	if hiddenPath(p) {
		return "a hidden path"
	}
	return ""
}

func hiddenPath(p string) bool {
	prev := ""
	for _, c := range strings.Split(p, "/") {
		if strings.HasPrefix(c, ".") && c != "." && c != ".." && !toolHome(c, prev) {
			return true
		}
		prev = c
	}
	return false
}

// toolHome reports hidden directories that language tool chains
// conventionally put on PATH.
func toolHome(c, parent string) bool {
	switch c {
	case ".local", ".cargo", ".rustup", ".pyenv", ".rbenv", ".nvm", ".bun", ".deno", ".poetry",
		".sdkman", ".dotnet", ".yarn", ".volta", ".krew", ".npm-global", ".gem", ".composer",
		".venv", ".pixi", ".rye", ".ghcup", ".juliaup", ".asdf", ".nix-profile", ".linuxbrew":
		return true
	}
	return c == ".bin" && parent == "node_modules"
}
