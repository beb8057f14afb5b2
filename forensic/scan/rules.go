package scan

import (
	"bytes"
	"fmt"
	"path"
	"regexp"
	"strings"
	"sync"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/finding"
	"github.com/ctrforensics/ctrforensics/forensic/packages"
)

// examined is what a built-in check looks at: a file and what was read of
// it.
type examined struct {
	f *File
	c *content
}

// on makes a check of a file and its content a check of the catalog.
func on(check func(f *File, c *content) []finding.Hit) func(examined) []finding.Hit {
	return func(x examined) []finding.Hit { return check(x.f, x.c) }
}

// The rule IDs. They are stable: a retired ID is never reused.
const (
	RuleWebShell     = "CTRF-FS-001"
	RuleHiddenExec   = "CTRF-FS-002"
	RuleSetuidAdded  = "CTRF-FS-003"
	RuleCapAdded     = "CTRF-FS-004"
	RuleSetuidShell  = "CTRF-FS-005"
	RulePersistence  = "CTRF-FS-006"
	RuleUID0         = "CTRF-FS-007"
	RuleEmptyPass    = "CTRF-FS-008"
	RuleReverseShell = "CTRF-FS-009"
	RuleMiner        = "CTRF-FS-010"
	RulePackageFile  = "CTRF-FS-011"
)

// builtins is the catalog, in ID order, with the check of each rule.
var builtins = []finding.Check[examined]{
	{Rule: finding.Rule{ID: RuleWebShell, Title: "Web shell", Severity: finding.High,
		Help: "A PHP, JSP, ASP(X) or Python file passes request input to code or command execution (eval, assert, system, exec, passthru, shell_exec, popen, proc_open, preg_replace /e, create_function, Runtime.exec, Process.Start), or evaluates decoded data."}, Fire: on(checkWebShell)},
	{Rule: finding.Rule{ID: RuleHiddenExec, Title: "Executable in a temporary or hidden directory", Severity: finding.High,
		Help: "An ELF binary or a script with a #! line in /tmp, /var/tmp, /dev/shm, /run, or below a hidden directory (a name starting with a dot, or made only of dots and spaces)."}, Fire: on(checkHiddenExec)},
	{Rule: finding.Rule{ID: RuleSetuidAdded, Title: "Setuid or setgid file added after the image", Severity: finding.High,
		Help: "A file of the container is setuid or setgid and the image did not have it so."}, Fire: on(checkSetuidAdded)},
	{Rule: finding.Rule{ID: RuleCapAdded, Title: "File capabilities added after the image", Severity: finding.High,
		Help: "A file of the container carries security.capability and the image's did not."}, Fire: on(checkCapAdded)},
	{Rule: finding.Rule{ID: RuleSetuidShell, Title: "Setuid shell", Severity: finding.High,
		Help: "A shell, or a copy of one under a shell's name, is setuid or setgid: anyone who runs it gets its owner's rights."}, Fire: on(checkSetuidShell)},
	{Rule: finding.Rule{ID: RulePersistence, Title: "Persistence location changed", Severity: finding.Medium,
		Help: "A file that runs code at boot, login, on a schedule, or grants access (cron, systemd units, rc.local, profile.d, shell rc files, ld.so.preload, authorized_keys, sudoers) was added or changed after the image; ld.so.preload and authorized_keys also in an image."}, Fire: on(checkPersistence)},
	{Rule: finding.Rule{ID: RuleUID0, Title: "Extra uid 0 account", Severity: finding.High,
		Help: "/etc/passwd gives uid 0 to an account other than root."}, Fire: on(checkUID0)},
	{Rule: finding.Rule{ID: RuleEmptyPass, Title: "Account without a password", Severity: finding.High,
		Help: "/etc/shadow or /etc/passwd has an empty password field: the account logs in without a password. Medium when the image ships it so, high when it changed after the image."}, Fire: on(checkEmptyPassword)},
	{Rule: finding.Rule{ID: RuleReverseShell, Title: "Reverse shell or download-and-run one-liner", Severity: finding.High,
		Help: "A text file holds an interactive shell on a /dev/tcp socket, nc/ncat -e, a socat exec, or a download piped into a shell."}, Fire: on(checkReverseShell)},
	{Rule: finding.Rule{ID: RuleMiner, Title: "Cryptocurrency miner configuration", Severity: finding.High,
		Help: "A text file names a mining pool (stratum+tcp://, stratum+ssl://) or holds an XMRig-style configuration."}, Fire: on(checkMiner)},
	{Rule: finding.Rule{ID: RulePackageFile, Title: "Package-owned file no longer matches its package", Severity: finding.High,
		Help: "A file a package installed (dpkg, apk, rpm, Python RECORD) differs in content, mode or owner from what its package manager recorded, as `packages --verify` finds it: a binary replaced after installation, the article's trojaned tool. For a container the records are its image's, so an attacker who also rewrote the record is still caught; for an image, its own final records, so a later layer that replaced a package's file without the package manager is. Low for a configuration file (dpkg conffile, rpm %config)."}, Fire: on(checkPackageFile)},
}

// Rules returns the catalog of built-in rules, in ID order.
func Rules() []finding.Rule { return finding.Catalog(builtins) }

// Web shells.

var (
	webShellExt = map[string]string{".php": "php", ".phtml": "php", ".php3": "php", ".php4": "php", ".php5": "php",
		".php7": "php", ".phar": "php", ".inc": "php", ".jsp": "jsp", ".jspx": "jsp", ".asp": "asp", ".aspx": "asp",
		".ashx": "asp", ".asmx": "asp", ".py": "python", ".cgi": "any"}
	phpInput = `\$_(?:GET|POST|REQUEST|COOKIE|SERVER|FILES)\b|\bgetenv\s*\(\s*['"]HTTP_|php://input`
	// A function call, not a method (->exec) or a static call (::exec).
	phpSink = `(?:^|[^\w>:$\\])(eval|assert|system|exec|passthru|shell_exec|popen|proc_open|pcntl_exec|create_function)\s*\(`
)

// contentPatterns are the regular expressions of the content rules.
type contentPatterns struct {
	// webShell holds, per language, the patterns of a web shell.
	webShell map[string][]*regexp.Regexp
	// JSP and ASPX shells often split the sink and the request across lines:
	// both in one small file also counts.
	jspExec, jspInput, aspxExec, aspxInput *regexp.Regexp
	// reverseShell pairs each pattern with a literal the content must hold
	// first: a literal search is far cheaper than a regular expression.
	reverseShell                       []literalPattern
	minerPool, minerDonate, minerPools *regexp.Regexp
}

// literalPattern is a regular expression that only matches text holding
// literal.
type literalPattern struct {
	literal string
	re      *regexp.Regexp
}

// patterns returns the content rules' regular expressions, compiled on
// first use rather than at package initialization, which every command of
// the binary would pay for (about 16 ms).
var patterns = sync.OnceValue(func() *contentPatterns {
	return &contentPatterns{
		webShell: map[string][]*regexp.Regexp{
			"php": {
				regexp.MustCompile(`(?i)` + phpSink + `[^;]{0,300}?(` + phpInput + `)`),
				regexp.MustCompile("(?i)`[^`\n]{0,100}(" + phpInput + ")"),
				regexp.MustCompile(`(?i)\$_(?:GET|POST|REQUEST|COOKIE)\s*\[[^\]]{0,40}\]\s*\(`),
				regexp.MustCompile(`(?i)(?:^|[^\w>:$])(eval|assert)\s*\(\s*(?:@?\s*(?:base64_decode|gzinflate|gzuncompress|gzdecode|str_rot13|hex2bin|strrev|rawurldecode|urldecode|convert_uudecode)\s*\()+`),
				pregReplaceE(),
			},
			"jsp": {
				regexp.MustCompile(`(?s)Runtime\s*\.\s*getRuntime\s*\(\s*\)\s*\.\s*exec\s*\([^;]{0,300}?request\s*\.\s*getParameter`),
				regexp.MustCompile(`(?s)new\s+ProcessBuilder\s*\([^;]{0,300}?request\s*\.\s*getParameter`),
			},
			"asp": {
				regexp.MustCompile(`(?is)Process\s*\.\s*Start\s*\([^;]{0,300}?Request\s*(?:\.\s*(?:Form|QueryString|Params|Item)|\[|\()`),
				regexp.MustCompile(`(?is)\b(?:eval|execute)\s*\(?\s*Request\s*(?:\.\s*(?:Form|QueryString|Item)|\(|\[)`),
				regexp.MustCompile(`(?is)FileName\s*=\s*"cmd(?:\.exe)?"[^;]{0,300}?Request`),
			},
			"python": {
				regexp.MustCompile(`(?:^|[^\w.])(eval|exec|os\.system|os\.popen|subprocess\.(?:call|run|Popen|check_output|check_call|getoutput))\s*\([^)\n]{0,200}?request\.(?:args|form|values|GET|POST|data|json|get_json|cookies|headers)`),
			},
		},
		jspExec:   regexp.MustCompile(`Runtime\s*\.\s*getRuntime\s*\(\s*\)\s*\.\s*exec\s*\(|new\s+ProcessBuilder\s*\(`),
		jspInput:  regexp.MustCompile(`request\s*\.\s*getParameter\s*\(`),
		aspxExec:  regexp.MustCompile(`(?i)Process\s*\.\s*Start\s*\(|\.StartInfo\.FileName`),
		aspxInput: regexp.MustCompile(`(?i)Request\s*(?:\.\s*(?:Form|QueryString|Params|Item)|\[)`),
		reverseShell: []literalPattern{
			{"/dev/tcp/", regexp.MustCompile(`\b(?:ba|z|k|da)?sh\s+-i\s*(?:[0-9]?>&|&>|>)\s*/dev/tcp/[^\s/]+/[0-9]+`)},
			{"/dev/udp/", regexp.MustCompile(`\b(?:ba|z|k|da)?sh\s+-i\s*(?:[0-9]?>&|&>|>)\s*/dev/udp/[^\s/]+/[0-9]+`)},
			{"/dev/tcp/", regexp.MustCompile(`(?:exec\s+[0-9]+<>|[0-9]?[<>]&?\s*)/dev/tcp/[^\s/]+/[0-9]+`)},
			{"/dev/udp/", regexp.MustCompile(`(?:exec\s+[0-9]+<>|[0-9]?[<>]&?\s*)/dev/udp/[^\s/]+/[0-9]+`)},
			{"nc", regexp.MustCompile(`\b(?:nc|ncat|netcat)(?:\.\w+)?\s[^\n|;&]{0,100}?\s-(?:[a-zA-Z]*e|c)\s+\S*(?:ba|z|da)?sh\b`)},
			{"socat", regexp.MustCompile(`\bsocat\b[^\n]{0,100}\bexec:['"]?(?:/bin/)?(?:ba)?sh`)},
			{"curl", regexp.MustCompile(`\bcurl\b[^|;&\n]{0,200}\|\s*(?:sudo\s+)?(?:/bin/|/usr/bin/)?(?:ba|da|z)?sh\b`)},
			{"wget", regexp.MustCompile(`\bwget\b[^|;&\n]{0,200}\|\s*(?:sudo\s+)?(?:/bin/|/usr/bin/)?(?:ba|da|z)?sh\b`)},
			{"socket", regexp.MustCompile(`\bpython[0-9.]*\s+-c\s+['"][^\n]{0,200}socket[^\n]{0,200}(?:subprocess|pty\.spawn|os\.dup2)`)},
		},
		minerPool:   regexp.MustCompile(`stratum\+(?:tcp|ssl|tls)://[^\s"']+`),
		minerDonate: regexp.MustCompile(`"donate-level"\s*:`),
		minerPools:  regexp.MustCompile(`"pools"\s*:\s*\[`),
	}
})

// pregReplaceE matches preg_replace with the /e modifier (code evaluation
// of the replacement), for the usual delimiters: RE2 has no back references.
func pregReplaceE() *regexp.Regexp {
	var alts []string
	for _, d := range []string{"/", "#", "~", "|", "!", "@", "%"} {
		q := regexp.QuoteMeta(d)
		alts = append(alts, q+`[^\n]{0,200}?`+q+`[imsxuADSUXJ]*e[imsxuADSUXJ]*['"]`)
	}
	return regexp.MustCompile(`preg_replace\s*\(\s*['"](?:` + strings.Join(alts, "|") + `)`)
}

func checkWebShell(f *File, c *content) []finding.Hit {
	lang := webShellExt[strings.ToLower(path.Ext(f.Path))]
	if lang == "" || !c.text() {
		return nil
	}
	if lang == "any" {
		lang = "php"
	}
	pt := patterns()
	for _, re := range pt.webShell[lang] {
		if loc := re.FindIndex(c.data); loc != nil {
			ev := lineAt(c.data, loc[0])
			return []finding.Hit{{Reason: fmt.Sprintf("%s file passes request input or decoded data to execution: %s", strings.ToUpper(lang), ev), Evidence: ev}}
		}
	}
	pairs := map[string][2]*regexp.Regexp{"jsp": {pt.jspExec, pt.jspInput}, "asp": {pt.aspxExec, pt.aspxInput}}
	if p, ok := pairs[lang]; ok && len(c.data) < 64<<10 {
		if e, i := p[0].Find(c.data), p[1].Find(c.data); e != nil && i != nil {
			return []finding.Hit{{Reason: fmt.Sprintf("%s file runs commands (%s) and reads request parameters (%s)", strings.ToUpper(lang), snippet(e), snippet(i)), Evidence: snippet(e)}}
		}
	}
	return nil
}

// Executables in temporary and hidden directories.

var tempDirs = []string{"/tmp", "/var/tmp", "/dev/shm", "/run"}

func checkHiddenExec(f *File, c *content) []finding.Hit {
	if f.Type != forensic.TypeFile {
		return nil
	}
	var what string
	sev := finding.High
	switch {
	case c.elf():
		what = "ELF executable"
	case c.shebang() != "":
		what, sev = "script ("+c.shebang()+")", finding.Medium
	default:
		return nil
	}
	for _, d := range tempDirs {
		if strings.HasPrefix(f.Path, d+"/") {
			return []finding.Hit{{Severity: sev, Reason: fmt.Sprintf("%s in %s, a temporary directory, mode %04o", what, d, f.Mode&0o7777), Evidence: what}}
		}
	}
	if dir, ok := hiddenComponent(f.Path); ok {
		return []finding.Hit{{Severity: sev, Reason: fmt.Sprintf("%s in a hidden place: \"%s\"", what, dir), Evidence: what}}
	}
	return nil
}

// hiddenComponent returns the first hidden directory of p (a name starting
// with a dot), or a file name made only of dots and spaces.
func hiddenComponent(p string) (string, bool) {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, name := range parts {
		last := i == len(parts)-1
		if onlyDotsAndSpaces(name) || (!last && strings.HasPrefix(name, ".")) {
			return "/" + strings.Join(parts[:i+1], "/"), true
		}
	}
	return "", false
}

func onlyDotsAndSpaces(s string) bool {
	return s != "" && strings.Trim(s, ". ") == "" && s != "." && s != ".."
}

// Setuid, setgid and capabilities.

const setIDBits = 0o6000

func setIDText(mode uint32) string {
	switch mode & setIDBits {
	case 0o4000:
		return "setuid"
	case 0o2000:
		return "setgid"
	}
	return "setuid and setgid"
}

func checkSetuidAdded(f *File, _ *content) []finding.Hit {
	if f.Type != forensic.TypeFile || f.Mode&setIDBits == 0 {
		return nil
	}
	switch {
	case f.Change == forensic.Added:
		return []finding.Hit{{Reason: fmt.Sprintf("new %s file, owner %d, mode %04o", setIDText(f.Mode), f.UID, f.Mode&0o7777), Evidence: fmt.Sprintf("%04o", f.Mode&0o7777)}}
	case f.Change == forensic.Changed && f.Mode&setIDBits&^f.BaseMode != 0:
		return []finding.Hit{{Reason: fmt.Sprintf("became %s after the image: mode %04o, the image had %04o", setIDText(f.Mode&^f.BaseMode), f.Mode&0o7777, f.BaseMode&0o7777), Evidence: fmt.Sprintf("%04o", f.Mode&0o7777)}}
	}
	return nil
}

func checkCapAdded(f *File, _ *content) []finding.Hit {
	if len(f.Capability) == 0 || f.Change == "" || bytes.Equal(f.Capability, f.BaseCapability) {
		return nil
	}
	return []finding.Hit{{Reason: fmt.Sprintf("file capabilities (security.capability, %d bytes) on a file %s after the image", len(f.Capability), changeVerb(f.Change)), Evidence: fmt.Sprintf("%x", f.Capability)}}
}

var shells = map[string]bool{"sh": true, "bash": true, "dash": true, "zsh": true, "ksh": true, "mksh": true,
	"csh": true, "tcsh": true, "fish": true, "ash": true, "busybox": true, "python": true, "python3": true, "perl": true}

func checkSetuidShell(f *File, _ *content) []finding.Hit {
	if f.Type != forensic.TypeFile || f.Mode&setIDBits == 0 || !shells[path.Base(f.Path)] {
		return nil
	}
	return []finding.Hit{{Reason: fmt.Sprintf("%s %s owned by uid %d, mode %04o", setIDText(f.Mode), path.Base(f.Path), f.UID, f.Mode&0o7777), Evidence: fmt.Sprintf("%04o", f.Mode&0o7777)}}
}

func changeVerb(k forensic.Kind) string {
	if k == forensic.Added {
		return "added"
	}
	return "changed"
}

// Persistence.

var persistence = []struct {
	match  func(p string) bool
	what   string
	always bool // fires on an image's own file too
	sev    finding.Severity
}{
	{func(p string) bool { return p == "/etc/ld.so.preload" }, "ld.so.preload: libraries loaded into every process", true, finding.High},
	{func(p string) bool {
		return strings.Contains(p, "/.ssh/authorized_keys") || strings.HasPrefix(path.Base(p), "authorized_keys")
	}, "SSH authorized_keys: a key that logs in", true, finding.Medium},
	{func(p string) bool {
		return p == "/etc/crontab" || strings.HasPrefix(p, "/etc/cron") || strings.HasPrefix(p, "/var/spool/cron/")
	}, "cron: a scheduled command", false, 0},
	{func(p string) bool {
		for _, d := range []string{"/etc/systemd/", "/lib/systemd/system/", "/usr/lib/systemd/system/", "/run/systemd/system/"} {
			if strings.HasPrefix(p, d) {
				return true
			}
		}
		return strings.Contains(p, "/.config/systemd/user/")
	}, "systemd unit", false, 0},
	{func(p string) bool {
		return p == "/etc/rc.local" || strings.HasPrefix(p, "/etc/init.d/") || strings.HasPrefix(p, "/etc/rc") && strings.Contains(p, ".d/")
	}, "boot script", false, 0},
	{func(p string) bool {
		return p == "/etc/profile" || strings.HasPrefix(p, "/etc/profile.d/") || p == "/etc/bash.bashrc" || p == "/etc/environment" ||
			p == "/etc/zsh/zshrc" || shellRC[path.Base(p)]
	}, "shell startup file: runs at every login", false, 0},
	{func(p string) bool { return p == "/etc/sudoers" || strings.HasPrefix(p, "/etc/sudoers.d/") }, "sudoers: grants root", false, finding.High},
	{func(p string) bool { return p == "/etc/ld.so.conf" || strings.HasPrefix(p, "/etc/ld.so.conf.d/") }, "dynamic linker search path", false, 0},
}

var shellRC = map[string]bool{".bashrc": true, ".bash_profile": true, ".bash_login": true, ".profile": true,
	".zshrc": true, ".zprofile": true, ".bash_logout": true}

func checkPersistence(f *File, c *content) []finding.Hit {
	if f.Type != forensic.TypeFile && f.Type != forensic.TypeSymlink {
		return nil
	}
	for _, p := range persistence {
		if !p.match(f.Path) {
			continue
		}
		changed := f.Change == forensic.Added || f.Change == forensic.Changed
		if !changed && !(p.always && f.Size > 0) {
			return nil
		}
		how := "in the image"
		if changed {
			how = changeVerb(f.Change) + " after the image"
		}
		ev := firstLine(c)
		reason := fmt.Sprintf("%s, %s", p.what, how)
		if ev != "" {
			reason += ": " + ev
		}
		return []finding.Hit{{Severity: p.sev, Reason: reason, Evidence: ev}}
	}
	return nil
}

// firstLine returns the first line of a text file that is not blank or a
// comment.
func firstLine(c *content) string {
	if !c.text() {
		return ""
	}
	for _, l := range bytes.Split(c.data, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) > 0 && l[0] != '#' {
			return snippet(l)
		}
	}
	return ""
}

// Accounts.

func checkUID0(f *File, c *content) []finding.Hit {
	if f.Path != "/etc/passwd" || !c.text() {
		return nil
	}
	var out []finding.Hit
	for _, l := range lines(c.data) {
		fs := strings.Split(l, ":")
		if len(fs) >= 4 && fs[0] != "root" && strings.TrimSpace(fs[2]) == "0" {
			out = append(out, finding.Hit{Reason: fmt.Sprintf("account \"%s\" has uid 0 (root's rights): %s", fs[0], l), Evidence: l})
		}
	}
	return out
}

func checkEmptyPassword(f *File, c *content) []finding.Hit {
	if (f.Path != "/etc/shadow" && f.Path != "/etc/passwd") || !c.text() {
		return nil
	}
	sev := finding.Medium
	how := "as the image ships it"
	if f.Change == forensic.Added || f.Change == forensic.Changed {
		sev, how = finding.High, "changed after the image"
	}
	var out []finding.Hit
	for _, l := range lines(c.data) {
		fs := strings.Split(l, ":")
		if len(fs) >= 2 && fs[0] != "" && fs[1] == "" {
			out = append(out, finding.Hit{Severity: sev, Reason: fmt.Sprintf("account \"%s\" has an empty password field in %s (%s): it logs in without a password", fs[0], f.Path, how), Evidence: fs[0] + "::"})
		}
	}
	return out
}

func lines(b []byte) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// Reverse shells, download-and-run, miners.

// findOnLines runs re on each line (up to 4 KiB of it) that holds literal:
// the patterns are single-line, and most of a large text holds none of
// their literals.
func findOnLines(data []byte, literal string, re *regexp.Regexp) []byte {
	lit := []byte(literal)
	for off := 0; off < len(data); {
		i := bytes.Index(data[off:], lit)
		if i < 0 {
			return nil
		}
		i += off
		lo := max(off, i-4096)
		start := lo + bytes.LastIndexByte(data[lo:i], '\n') + 1
		end := bytes.IndexByte(data[i:min(len(data), i+4096)], '\n')
		if end < 0 {
			end = min(len(data), i+4096)
		} else {
			end += i
		}
		if m := re.Find(data[start:end]); m != nil {
			return m
		}
		off = max(end, i+len(lit))
	}
	return nil
}

func checkReverseShell(f *File, c *content) []finding.Hit {
	if f.Type != forensic.TypeFile || !c.text() {
		return nil
	}
	for _, p := range patterns().reverseShell {
		if m := findOnLines(c.data, p.literal, p.re); m != nil {
			return []finding.Hit{{Reason: "shell one-liner: " + snippet(m), Evidence: snippet(m)}}
		}
	}
	return nil
}

func checkMiner(f *File, c *content) []finding.Hit {
	if f.Type != forensic.TypeFile || !c.text() {
		return nil
	}
	if !bytes.Contains(c.data, []byte("stratum+")) && !bytes.Contains(c.data, []byte(`"donate-level"`)) {
		return nil
	}
	pt := patterns()
	if m := pt.minerPool.Find(c.data); m != nil {
		return []finding.Hit{{Reason: "mining pool URL: " + snippet(m), Evidence: snippet(m)}}
	}
	if pt.minerDonate.Match(c.data) && pt.minerPools.Match(c.data) {
		return []finding.Hit{{Reason: "XMRig-style miner configuration (donate-level and pools)", Evidence: "donate-level, pools"}}
	}
	return nil
}

// lineAt returns the line of data holding offset i, as a snippet.
func lineAt(data []byte, i int) string {
	start := bytes.LastIndexByte(data[:i], '\n') + 1
	end := bytes.IndexByte(data[i:], '\n')
	if end < 0 {
		end = len(data)
	} else {
		end += i
	}
	return snippet(data[start:end])
}

// snippet returns m as one line of at most 120 bytes, as written: runs of
// white space (newlines included) become one space; other control
// characters are left for the printers to escape.
func snippet(m []byte) string {
	return forensic.Clip(strings.Join(strings.Fields(string(m)), " "), 120)
}

// Package integrity.

func checkPackageFile(f *File, _ *content) []finding.Hit {
	r := f.Package
	if r == nil || (r.Status != packages.Modified && r.Status != packages.ConfigModified) {
		return nil
	}
	var sev finding.Severity
	what := "file"
	if r.Status == packages.ConfigModified {
		sev, what = finding.Low, "configuration file"
	}
	reason := fmt.Sprintf("%s of %s package %s %s no longer matches its record: %s differs", what, r.Type, r.Package,
		r.Version, strings.Join(r.Changed, ", "))
	ev := strings.Join(r.Changed, ",")
	if r.Actual != "" && r.Actual != r.Expected {
		reason += fmt.Sprintf(" (%s recorded %s, found %s)", r.Algorithm, r.Expected, r.Actual)
		ev = r.Algorithm + ":" + r.Actual
	}
	return []finding.Hit{{Severity: sev, Reason: reason, Evidence: ev}}
}
