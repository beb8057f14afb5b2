//go:build yara

package yara

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ctrforensics/ctrforensics/forensic/scan"
)

// fixtures writes files for the rules below and returns the directory and
// the md5 of the file the hash rule names.
func fixtures(t *testing.T) (string, string) {
	dir := t.TempDir()
	noise := make([]byte, 64<<10)
	rand.New(rand.NewSource(1)).Read(noise)
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"www/shell.php":    []byte("<?php eval($_GET['cmd']); ?>\n"),
		"www/index.php":    []byte("<?php echo htmlspecialchars($_GET['q']); ?>\n"),
		"tmp/.x/blob":      noise,
		"tmp/zeros":        make([]byte, 64<<10),
		"usr/bin/tool":     self[:min(len(self), 1<<20)],
		"etc/known.txt":    []byte("a file whose md5 a rule names\n"),
		"etc/unknown.txt":  []byte("another file\n"),
		"opt/miner/config": []byte(`{"url": "stratum+tcp://pool.example:3333"}`),
	}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum := md5.Sum(files["etc/known.txt"])
	return dir, hex.EncodeToString(sum[:])
}

// ruleSet writes the rules: strings, the hash, math and elf modules, and a
// file that does not compile.
func ruleSet(t *testing.T, md5sum string) (dir string, good []string) {
	dir = t.TempDir()
	rules := map[string]string{
		"webshell.yar": `rule php_eval_get { meta: severity = "high" strings: $a = "eval($_GET" condition: $a }
rule pool_url { strings: $p = /stratum\+tcp:\/\/[a-z.]+:[0-9]+/ condition: $p }`,
		"modules.yar": `import "hash"
import "math"
import "elf"
rule known_md5 { condition: hash.md5(0, filesize) == "` + md5sum + `" }
rule high_entropy { condition: filesize > 4096 and math.entropy(0, filesize) > 7.9 }
rule elf_file { condition: elf.type == elf.ET_EXEC or elf.type == elf.ET_DYN }`,
		"broken.yar": `rule broken { strings: $a = "x" condition: $b }`,
	}
	for name, text := range rules {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, []string{filepath.Join(dir, "modules.yar"), filepath.Join(dir, "webshell.yar")}
}

// TestSameMatchesAsYaraCLI runs the rules through scan and through Debian's
// yara -r on the same files: the (rule, file) pairs must be equal.
func TestSameMatchesAsYaraCLI(t *testing.T) {
	yaraCLI, err := exec.LookPath("yara")
	if err != nil {
		t.Fatal("Debian's yara CLI is needed (scripts/install-deps.sh installs it)")
	}
	files, md5sum := fixtures(t)
	rulesDir, good := ruleSet(t, md5sum)

	m, bad, err := Load([]string{rulesDir}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 1 || filepath.Base(bad[0].File) != "broken.yar" || !strings.Contains(bad[0].Error(), `undefined string "$b"`) {
		t.Errorf("compile errors %v, want broken.yar named with its error", bad)
	}
	rep, err := scan.Scan(context.Background(), scan.TreeInput(files, nil), scan.Options{Matchers: []scan.Matcher{m}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range rep.Findings {
		if name, ok := strings.CutPrefix(f.Rule, RulePrefix); ok {
			_, rule, _ := strings.Cut(name, ".")
			got = append(got, rule+" "+f.Path)
		}
	}
	out, err := exec.Command(yaraCLI, append(append([]string{"-r"}, good...), files)...).Output()
	if err != nil {
		t.Fatalf("yara: %v", err)
	}
	var want []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		rule, p, _ := strings.Cut(l, " ")
		want = append(want, rule+" "+strings.TrimPrefix(p, files))
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("scan --rules matched:\n%s\nyara -r matched:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, r := range []string{"php_eval_get", "pool_url", "known_md5", "high_entropy", "elf_file"} {
		if !strings.Contains(strings.Join(want, "\n"), r+" ") {
			t.Errorf("rule %s matched nothing: the fixture does not exercise it", r)
		}
	}
}
