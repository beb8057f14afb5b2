package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrforensics/ctrforensics/snapshot"
)

// noDaemon is a socket path that does not exist: a command that gets as far
// as connecting fails there, which proves its arguments were accepted.
const noDaemon = "/nonexistent/ctrforensics-test.sock"

// daemonErr is the error a command that reached the connection step reports:
// the host check comes first when the tests do not run as root on Linux.
func daemonErr() string {
	if err := needRoot(); err != nil {
		return err.Error()
	}
	return "cannot reach containerd at " + noDaemon
}

// runCLI runs the command line through run, as main does.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"ctrforensics"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// assertUsageError checks the README's rule for bad input: nothing on
// stdout, one line on stderr naming the problem, exit 2.
func assertUsageError(t *testing.T, args []string, want string) {
	t.Helper()
	code, stdout, stderr := runCLI(t, args...)
	if code != exitUsage || stdout != "" {
		t.Errorf("%q: exit %d, stdout %q; want exit 2 and nothing on stdout (stderr %q)", args, code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "ctrforensics: ") || !strings.Contains(lines[0], want) {
		t.Errorf("%q: stderr %q, want one line with %q", args, stderr, want)
	}
}

// TestUsageErrors covers every bad command line that needs neither root nor
// a daemon to be rejected.
func TestUsageErrors(t *testing.T) {
	a := "--address=" + noDaemon
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"nope"}, `unknown command "nope" (see ` + "`ctrforensics --help`)"},
		{"unknown subcommand", []string{"image", "nope"}, `unknown command "nope" for "ctrforensics image"`},
		{"unknown custody subcommand", []string{"custody", "nope", "x"}, `unknown command "nope" for "ctrforensics custody"`},
		{"unknown global flag", []string{"--colour", "ls"}, "flag provided but not defined: -colour (see `ctrforensics --help`)"},
		{"unknown flag", []string{"diff", "--colour", "web"}, "flag provided but not defined: -colour (see `ctrforensics diff --help`)"},
		{"unknown flag after an argument", []string{"diff", "web", "--colour"}, "flag provided but not defined: -colour"},
		{"unknown subcommand flag", []string{"image", "files", "x", "--colour"}, "see `ctrforensics image files --help`"},
		{"flag without its value", []string{"diff", "web", "--format"}, "flag needs an argument: --format"},
		{"bad format", []string{a, "diff", "--format", "xml", "web"}, `unknown --format "xml"`},
		{"bad format after the argument", []string{a, "diff", "web", "--format", "xml"}, `unknown --format "xml"`},
		{"bad format of ls", []string{a, "ls", "--format=yaml"}, `unknown --format "yaml"`},
		{"bad format of history", []string{a, "image", "history", "x", "--format", "xml"}, `unknown --format "xml" (one of: table, json, sarif)`},
		{"bad format of verify", []string{"verify", "x", "--format", "xml"}, `unknown --format "xml"`},
		{"bad method", []string{a, "diff", "web", "--method", "fast"}, `unknown --method "fast" (auto, overlay or walk)`},
		{"bad method of collect", []string{a, "collect", "web", "-o", "x.tar", "--method=fast"}, `unknown --method "fast"`},
		{"bad size", []string{a, "diff", "--max-hash-bytes", "lots", "web"}, `bad --max-hash-bytes "lots"`},
		{"examiner with a newline", []string{a, "collect", "web", "-o", "x.tar", "--examiner", "eve\nmallory"}, "--examiner holds a line break"},
		{"case with a carriage return", []string{a, "collect", "web", "-o", "x.tar", "--case=42\r"}, "--case holds a line break"},
		{"note with a newline", []string{a, "collect", "web", "--note", "a\nb", "-o", "x.tar"}, "--note holds a line break"},
		{"note not UTF-8", []string{a, "collect", "web", "--note", "\xff", "-o", "x.tar"}, "--note is not UTF-8"},
		{"bad hash", []string{a, "collect", "web", "-o", "x.tar", "--hash", "sha512"}, "--hash must include sha256"},
		{"bad severity", []string{a, "image", "history", "x", "--fail-on", "bad"}, `--fail-on: history: unknown severity "bad"`},
		{"bad file type", []string{a, "image", "files", "x", "--type", "socks"}, `unknown --type "socks"`},
		{"bad glob", []string{a, "image", "files", "x", "--path", "["}, `bad --path "["`},
		{"bad time", []string{a, "image", "files", "x", "--newer", "yesterday"}, `bad --newer "yesterday"`},
		{"negative layer", []string{a, "image", "cat", "--layer", "-5", "img", "/x"}, "layers are numbered from 0"},
		{"missing argument", []string{a, "diff"}, "diff takes 1 argument(s): CONTAINER (see `ctrforensics diff --help`)"},
		{"too many arguments", []string{a, "diff", "web", "db"}, "diff takes 1 argument(s): CONTAINER"},
		{"argument to ls", []string{a, "ls", "web"}, "ls takes 0 argument(s)"},
		{"mount without DIR", []string{a, "mount", "web"}, "mount takes 2 argument(s): CONTAINER|IMAGE DIR"},
		{"image cat without PATH", []string{a, "image", "cat", "img"}, "cat takes 2 argument(s): IMAGE PATH"},
		{"collect without output", []string{a, "collect", "web"}, "missing --output (see `ctrforensics collect --help`)"},
		{"export without output", []string{a, "image", "export", "img"}, "missing --output (see `ctrforensics image export --help`)"},
		{"custody without action", []string{"custody", "add", "--actor", "bob", "x"}, "missing --action (see `ctrforensics custody add --help`)"},
		{"custody without actor", []string{"custody", "add", "x", "--action=received"}, "missing --actor"},
		{"verify of nothing", []string{"verify", "/nonexistent/bag"}, "cannot read bundle"},
		{"version with an argument", []string{"version", "x"}, "version takes 0 argument(s)"},
		{"completion of an unknown shell", []string{"completion", "tcsh"}, `unknown command "tcsh" for "ctrforensics completion"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assertUsageError(t, tt.args, tt.want) })
	}
}

// TestArgumentParsing checks that flags are read wherever docker users put
// them, through commands whose outcome shows what was parsed.
func TestArgumentParsing(t *testing.T) {
	dir := t.TempDir()
	a := "--address=" + noDaemon
	tests := []struct {
		name string
		args []string
		// want is the one-line error; empty when the command must succeed.
		want string
		// files must exist afterwards, gone must not.
		files, gone []string
	}{
		{"CMD ARG --flag", []string{"diff", "web", "--address", noDaemon}, daemonErr(), nil, nil},
		{"--flag ARG", []string{"diff", "--address", noDaemon, "web"}, daemonErr(), nil, nil},
		{"--flag=v", []string{"diff", "--address=" + noDaemon, "web"}, daemonErr(), nil, nil},
		{"short flag", []string{"diff", "-a", noDaemon, "web"}, daemonErr(), nil, nil},
		{"global flags after the command", []string{"diff", "web", "-n", "k8s.io", "-a", noDaemon}, daemonErr(), nil, nil},
		{"global flags before the command", []string{"-a", noDaemon, "-n", "k8s.io", "diff", "web"}, daemonErr(), nil, nil},
		{"subcommand flags anywhere", []string{"image", "history", "img", a, "--no-trunc", "--format", "json"}, daemonErr(), nil, nil},
		{"-- ends the flags", []string{"diff", a, "--", "-x"}, daemonErr(), nil, nil},
		{"a name starting with a dash needs --", []string{"diff", a, "-x"}, "flag provided but not defined: -x", nil, nil},
		{"-- leaves flag-like arguments as arguments", []string{"diff", a, "--", "web", "--format", "xml"},
			"diff takes 1 argument(s)", nil, nil},
		{"-- with a path starting with a dash", []string{"verify", "--format=json", "--", "-bag"}, "cannot read bundle: stat -bag", nil, nil},
		{"repeated flags: the last one wins", []string{"key", "generate", "--out", filepath.Join(dir, "first"), "--out=" + filepath.Join(dir, "last")},
			"", []string{"last.key", "last.pub"}, []string{"first.key", "first.pub"}},
		{"flag value starting with a dash", []string{"key", "generate", "--out", filepath.Join(dir, "-dash")},
			"", []string{"-dash.key"}, nil},
		{"repeated format: the last one is checked", []string{"verify", "x", "--format", "json", "--format", "xml"}, `unknown --format "xml"`, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want != "" {
				assertUsageError(t, tt.args, tt.want)
			} else if code, _, stderr := runCLI(t, tt.args...); code != exitOK {
				t.Fatalf("%q: exit %d, stderr %q", tt.args, code, stderr)
			}
			for _, f := range tt.files {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("%q: %v", tt.args, err)
				}
			}
			for _, f := range tt.gone {
				if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
					t.Errorf("%q: %s was written, want only the last --out used", tt.args, f)
				}
			}
		})
	}
}

// TestVersion checks `version` prints what `--version` prints.
func TestVersion(t *testing.T) {
	code1, flag, _ := runCLI(t, "--version")
	code2, cmd, _ := runCLI(t, "version")
	if code1 != 0 || code2 != 0 || flag != cmd || !strings.HasPrefix(cmd, "ctrforensics version ") {
		t.Errorf("--version: %d %q; version: %d %q", code1, flag, code2, cmd)
	}
}

// TestHelp checks help pages exit 0 and flag usages keep their text (urfave
// turns a backquoted word of a flag's usage into its placeholder).
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {}, {"image"}, {"collect", "--help"}, {"diff", "web", "--help"}} {
		code, stdout, stderr := runCLI(t, args...)
		if code != 0 || stdout == "" || stderr != "" {
			t.Errorf("%q: exit %d, stdout %d bytes, stderr %q", args, code, len(stdout), stderr)
		}
	}
	_, out, _ := runCLI(t, "collect", "--help")
	if !strings.Contains(out, "ctrforensics key generate") {
		t.Errorf("collect --help lost the key generate hint:\n%s", out)
	}
}

// TestCompletion checks the completion scripts and what they ask the binary:
// subcommands, and the flags of a command.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, out, stderr := runCLI(t, "completion", shell)
		if code != 0 || !strings.Contains(out, "ctrforensics") || stderr != "" {
			t.Errorf("completion %s: exit %d, stderr %q, script %.80q", shell, code, stderr, out)
		}
	}
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--generate-shell-completion"}, []string{"diff:", "collect:", "image:", "version:"}},
		{[]string{"image", "--generate-shell-completion"}, []string{"history:", "files:", "save:"}},
		{[]string{"diff", "--m", "--generate-shell-completion"}, []string{"--method", "--max-hash-bytes"}},
		{[]string{"collect", "web", "--si", "--generate-shell-completion"}, []string{"--sign-key"}},
	}
	for _, tt := range tests {
		code, out, _ := runCLI(t, tt.args...)
		for _, w := range tt.want {
			if code != 0 || !strings.Contains(out, w) {
				t.Errorf("%q: exit %d, want %q in\n%s", tt.args, code, w, out)
			}
		}
	}
}

// TestHint checks the CLI's advice is added to library errors, wrapped or not.
func TestHint(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&snapshot.UnreachableError{Address: "/x", Err: os.ErrNotExist}, "set --address or CONTAINERD_ADDRESS"},
		{fmt.Errorf("diff: %w", &snapshot.NotFoundError{Kind: "container", Name: "web"}), "`ctrforensics ls -A`"},
		{&snapshot.NotFoundError{Kind: "image", Name: "web"}, "`ctrforensics image ls`"},
		{&snapshot.NamespaceNotFoundError{Namespace: "k8s"}, "pick one with -n"},
		{&snapshot.AmbiguousError{Prefix: "c0"}, "ctrforensics ls --no-trunc"},
		{&snapshot.PlatformError{Platform: "linux/s390x"}, "pick one with --platform"},
		{&snapshot.PlatformError{Platform: "bad/", Err: os.ErrInvalid}, "e.g. linux/arm64"},
		{&noSuchSourceError{name: "nope"}, "`ctrforensics image ls`"},
		{fmt.Errorf("commit: %w", &snapshot.DiskRootError{Op: snapshot.OpCreateImage}), "drop --import"},
		{&snapshot.DiskRootError{Op: snapshot.OpPause}, "drop --pause"},
		{errors.New("anything else"), ""},
	}
	for _, tt := range tests {
		if got := hint(tt.err); (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("hint(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestHostError checks commands on containerd say in one line what they need
// on a host that lacks it.
func TestHostError(t *testing.T) {
	tests := []struct {
		goos string
		euid int
		want string
	}{
		{"linux", 0, ""},
		{"linux", 1000, "must run as root"},
		{"darwin", 0, "needs a Linux host running containerd; on darwin, verify, custody, key"},
		{"windows", -1, "needs a Linux host running containerd; on windows"},
	}
	for _, tt := range tests {
		err := hostError(tt.goos, tt.euid)
		if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("hostError(%s, %d) = %v, want %q", tt.goos, tt.euid, err, tt.want)
		}
	}
}
