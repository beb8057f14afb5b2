package history

import (
	"path"
	"strings"
)

// hit is a match inside a script: why, and the text to cite.
type hit struct{ reason, text string }

func checkRemoteExec(in *input) []Finding {
	var out []Finding
	for _, st := range in.steps {
		if st.kind != "RUN" {
			continue
		}
		for _, h := range remoteExecHits(st.body) {
			reason := st.label() + " " + h.reason + ": " + cite(h.text)
			out = append(out, in.finding(RuleRemoteExec, st.index, reason, h.text))
		}
	}
	return out
}

func remoteExecHits(script string) []hit {
	var hits []hit
	walkScripts(script, func(src string, pls []pipeline, ctx string) {
		for _, pl := range pls {
			text := orElse(ctx, pl.text)
			if r := pipeIntoRunner(pl); r != "" {
				hits = append(hits, hit{r, text})
			}
			for _, st := range pl.stages {
				if r := substRun(st); r != "" {
					hits = append(hits, hit{r, text})
				}
			}
		}
		hits = append(hits, downloadThenRun(src, pls, ctx)...)
	})
	return hits
}

// pipeIntoRunner reports a pipeline that feeds a download or decoded data
// to a shell or interpreter reading its program from stdin.
func pipeIntoRunner(pl pipeline) string {
	source := ""
	for _, st := range pl.stages {
		c, ok := resolve(st)
		if !ok {
			continue
		}
		if source == "" {
			source = sourceKind(c)
			continue
		}
		if mode, _ := runnerMode(c); mode == fromStdin {
			return "pipes " + source + " into " + runnerKind(c)
		}
	}
	return ""
}

func sourceKind(c command) string {
	switch {
	case isFetcher(c.name):
		return "a download"
	case isDecoder(c):
		return "base64-decoded data"
	}
	return ""
}

func runnerKind(c command) string {
	if isShell(c.name) {
		return "a shell"
	}
	return "an interpreter (" + interpreter(c.name) + ")"
}

// substRun reports a stage that executes the output of a fetch or decode
// through command or process substitution.
func substRun(st *stage) string {
	c, ok := resolve(st)
	if !ok {
		return ""
	}
	if strings.HasPrefix(c.path, "$(") || strings.HasPrefix(c.path, "`") {
		if k := substSource(c.path); k != "" {
			return "executes " + k + " content via command substitution"
		}
	}
	mode, operand := runnerMode(c)
	if c.name == "source" || c.name == "." {
		mode, operand = fromFile, at(c.args, 0)
	}
	switch {
	case mode == fromFile && strings.HasPrefix(operand, "<("):
		if k := substSource(operand); k != "" {
			return "executes " + k + " content via process substitution"
		}
	case mode == fromInline && interpreter(c.name) != "":
		if k := substSource(operand); k != "" {
			return "executes " + k + " content via command substitution"
		}
	}
	return ""
}

// substSource returns "downloaded" or "decoded" if a substitution in w runs
// a fetcher or decoder.
func substSource(w string) string {
	for _, body := range substBodies(w) {
		kind := ""
		forEachCommand(body, func(c command, _ string) {
			switch {
			case kind != "":
			case isFetcher(c.name):
				kind = "downloaded"
			case isDecoder(c):
				kind = "decoded"
			}
		})
		if kind != "" {
			return kind
		}
	}
	return ""
}

// download is a file a script fetched.
type download struct {
	file     string
	start    int // offset of the fetching pipeline
	verified bool
	ran      bool
}

// downloadThenRun reports files fetched by one command and executed by a
// later one, unless a checksum or signature check came in between.
func downloadThenRun(src string, pls []pipeline, ctx string) []hit {
	var dls []download
	var hits []hit
	for _, pl := range pls {
		fetched := false
		for _, st := range pl.stages {
			c, ok := resolve(st)
			if !ok {
				continue
			}
			if isVerifier(c) {
				for i := range dls {
					dls[i].verified = true
				}
			}
			if d := runsDownloaded(c, dls); d != nil {
				d.ran = true
				text := orElse(ctx, strings.TrimSpace(src[d.start:pl.end]))
				hits = append(hits, hit{"downloads " + d.file + " and executes it", text})
			}
			for _, f := range downloadTargets(c, fetched) {
				dls = append(dls, download{file: f, start: pl.start})
			}
			fetched = fetched || isFetcher(c.name)
		}
	}
	return hits
}

func runsDownloaded(c command, dls []download) *download {
	if isFetcher(c.name) {
		return nil
	}
	targets := []string{c.path}
	if mode, operand := runnerMode(c); mode == fromFile {
		targets = append(targets, operand)
	}
	if c.name == "source" || c.name == "." {
		targets = append(targets, at(c.args, 0))
	}
	for i := range dls {
		d := &dls[i]
		for _, t := range targets {
			if !d.verified && !d.ran && sameFile(t, d.file) {
				return d
			}
		}
	}
	return nil
}

func sameFile(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	base := path.Base(b)
	return path.Base(a) == base && base != "." && base != "/" && base != "-"
}

func isVerifier(c command) bool {
	switch c.name {
	case "sha1sum", "sha224sum", "sha256sum", "sha384sum", "sha512sum", "md5sum", "b2sum", "shasum", "cksum":
		opts, _ := parseOpts(c.args, "a", nil)
		return hasOpt(opts, "c", "check")
	case "gpg", "gpg2":
		return containsWord(c.args, "--verify")
	case "gpgv", "gpgv2":
		return true
	case "cosign":
		return strings.HasPrefix(at(c.args, 0), "verify")
	case "minisign", "signify":
		return containsWord(c.args, "-V")
	case "openssl":
		return containsWord(c.args, "-verify")
	}
	return false
}

// Options of curl and wget that take a value.
const (
	curlShortArg = "oHdAeruxXmwTFbcKECyYzUQPDt"
	wgetShortArg = "OPoaetTwUiBQlARDIX"
)

func curlLongArg() []string {
	return []string{"output", "output-dir", "url", "header", "data", "data-raw", "data-binary",
		"user", "proxy", "request", "user-agent", "max-time", "connect-timeout", "retry",
		"retry-delay", "retry-max-time", "write-out", "cacert", "cert", "key", "config",
		"cookie", "cookie-jar", "referer", "range", "proto", "proto-redir", "resolve", "form",
		"upload-file", "dump-header", "limit-rate"}
}

func wgetLongArg() []string {
	return []string{"output-document", "directory-prefix", "output-file", "append-output",
		"execute", "tries", "timeout", "wait", "user-agent", "input-file", "header", "user",
		"password", "post-data", "base", "quota", "level"}
}

// downloadTargets returns the files a stage writes fetched data to.
func downloadTargets(c command, fetchedEarlier bool) []string {
	var files []string
	switch {
	case c.name == "curl":
		files = curlTargets(c)
	case c.name == "wget":
		files = wgetTargets(c)
	case fetchedEarlier && c.name == "tee":
		_, files = parseOpts(c.args, "", nil)
		files = append(files, c.st.outs...)
	case fetchedEarlier:
		files = c.st.outs
	}
	var out []string
	for _, f := range files {
		switch f {
		case "", "-", "/dev/null", "/dev/stdout", "/dev/stderr":
		default:
			out = append(out, f)
		}
	}
	return out
}

func curlTargets(c command) []string {
	opts, urls := parseOpts(c.args, curlShortArg, curlLongArg())
	var files []string
	dir, remote := "", false
	for _, o := range opts {
		switch o.name {
		case "o", "output":
			files = append(files, o.value)
		case "O", "remote-name", "remote-name-all":
			remote = true
		case "output-dir":
			dir = o.value
		case "url":
			urls = append(urls, o.value)
		}
	}
	for _, u := range urls {
		if b := urlBase(u); remote && b != "" {
			files = append(files, path.Join(dir, b))
		}
	}
	if len(files) == 0 || containsWord(files, "-") {
		files = append(files, c.st.outs...)
	}
	return files
}

func wgetTargets(c command) []string {
	opts, urls := parseOpts(c.args, wgetShortArg, wgetLongArg())
	dir := ""
	for _, o := range opts {
		switch o.name {
		case "O", "output-document":
			if o.value == "-" {
				return c.st.outs
			}
			return []string{o.value}
		case "P", "directory-prefix":
			dir = o.value
		}
	}
	var files []string
	for _, u := range urls {
		if b := urlBase(u); b != "" {
			files = append(files, path.Join(dir, b))
		}
	}
	return files
}

// urlBase returns the last path element of a URL, "" if it has none.
func urlBase(u string) string {
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		return ""
	}
	rest, _, _ = strings.Cut(rest, "?")
	rest, _, _ = strings.Cut(rest, "#")
	_, p, ok := strings.Cut(rest, "/")
	p = strings.TrimRight(p, "/")
	if !ok || p == "" {
		return ""
	}
	return path.Base(p)
}
