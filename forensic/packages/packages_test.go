package packages

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	spdxjson "github.com/spdx/tools-golang/json"
)

// write creates files below root: path -> content.
func write(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func names(inv *Inventory, typ Type) []string {
	var out []string
	for _, p := range inv.Packages {
		if p.Type == typ {
			out = append(out, p.Name+"="+p.Version)
		}
	}
	return out
}

func find(t *testing.T, inv *Inventory, name string) Package {
	t.Helper()
	for _, p := range inv.Packages {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("package %s not found in %+v", name, inv.Packages)
	return Package{}
}

const apkInstalled = `C:Q1abc=
P:musl
V:1.2.4-r2
A:x86_64
L:MIT
o:musl
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1z6bHx1ODZ1gMbRYJoVDbPwM8gdk=
R:libc.musl-x86_64.so.1
a:0:0:777
Z:Q1rZ2X1Zu5m+qwT4I8yOKdLDHDDVQ=

P:busybox
V:1.36.1-r5
A:x86_64
L:GPL-2.0-only
F:bin
R:busybox
Z:Q1pYvA4fVq9rPxJ0yGBB9uYcP0JyI=
`

// TestLanguagesAndApk scans a hand-made tree with one package of every kind
// but dpkg and rpm (tested against their own tools below).
func TestLanguagesAndApk(t *testing.T) {
	root := t.TempDir()
	write(t, root, map[string]string{
		"etc/os-release":       "ID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME=\"Alpine Linux v3.19\"\n",
		"lib/apk/db/installed": apkInstalled,
		"usr/lib/python3.11/site-packages/Flask_Login-0.6.3.dist-info/METADATA": "Metadata-Version: 2.1\nName: Flask-Login\nVersion: 0.6.3\nLicense: MIT\n\nlong description\n",
		"usr/lib/python3.11/site-packages/Flask_Login-0.6.3.dist-info/RECORD":   "flask_login/__init__.py,sha256=abc,12\nFlask_Login-0.6.3.dist-info/RECORD,,\n",
		"usr/lib/python3.11/site-packages/six-1.16.0.egg-info/PKG-INFO":         "Metadata-Version: 1.2\nName: six\nVersion: 1.16.0\nClassifier: License :: OSI Approved :: MIT License\n",
		"app/node_modules/express/package.json":                                 `{"name":"express","version":"4.18.2","license":"MIT"}`,
		"app/node_modules/@types/node/package.json":                             `{"name":"@types/node","version":"20.1.0","license":{"type":"MIT"}}`,
		"app/node_modules/express/lib/package.json":                             `{"name":"not-a-package","version":"0"}`,
		"usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec":            "Gem::Specification.new do |s|\n  s.name = \"rake\".freeze\n  s.version = \"13.0.6\"\n  s.licenses = [\"MIT\".freeze]\nend\n",
	})
	jar := zipOf(t, map[string]string{
		"META-INF/MANIFEST.MF": "Manifest-Version: 1.0\r\nImplementation-Title: log4j-core\r\n",
		"META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties": "#x\nversion=2.14.1\ngroupId=org.apache.logging.log4j\nartifactId=log4j-core\n",
	})
	write(t, root, map[string]string{"opt/app/lib/log4j-core-2.14.1.jar": string(jar)})
	// A Go binary: this test's own executable carries build information.
	exe, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/local/bin/tool"), exe, 0o755); err != nil {
		if err := os.MkdirAll(filepath.Join(root, "usr/local/bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "usr/local/bin/tool"), exe, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, scan := range scanners() {
		t.Run(name, func(t *testing.T) {
			inv, err := scan(context.Background(), root, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := names(inv, Apk), []string{"busybox=1.36.1-r5", "musl=1.2.4-r2"}; !slices.Equal(got, want) {
				t.Errorf("apk: got %v, want %v", got, want)
			}
			musl := find(t, inv, "musl")
			if musl.PURL != "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1" ||
				!slices.Equal(musl.Files, []string{"/lib/ld-musl-x86_64.so.1", "/lib/libc.musl-x86_64.so.1"}) ||
				!slices.Equal(musl.Licenses, []string{"MIT"}) {
				t.Errorf("musl: %+v", musl)
			}
			if got, want := names(inv, PyPI), []string{"Flask-Login=0.6.3", "six=1.16.0"}; !slices.Equal(got, want) {
				t.Errorf("pypi: got %v, want %v", got, want)
			}
			fl := find(t, inv, "Flask-Login")
			if fl.PURL != "pkg:pypi/flask-login@0.6.3" || !slices.Contains(fl.Files, "/usr/lib/python3.11/site-packages/flask_login/__init__.py") {
				t.Errorf("Flask-Login: %+v", fl)
			}
			if six := find(t, inv, "six"); !slices.Equal(six.Licenses, []string{"MIT License"}) {
				t.Errorf("six licences: %v", six.Licenses)
			}
			if got, want := names(inv, NPM), []string{"@types/node=20.1.0", "express=4.18.2"}; !slices.Equal(got, want) {
				t.Errorf("npm: got %v, want %v", got, want)
			}
			if p := find(t, inv, "@types/node"); p.PURL != "pkg:npm/%40types/node@20.1.0" || !slices.Equal(p.Licenses, []string{"MIT"}) {
				t.Errorf("@types/node: %+v", p)
			}
			if got, want := names(inv, Gem), []string{"rake=13.0.6"}; !slices.Equal(got, want) {
				t.Errorf("gem: got %v, want %v", got, want)
			}
			if p := find(t, inv, "org.apache.logging.log4j:log4j-core"); p.PURL != "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1" {
				t.Errorf("log4j: %+v", p)
			}
			var goMods []string
			for _, p := range inv.Packages {
				if p.Type == Golang && p.Source == "/usr/local/bin/tool" {
					goMods = append(goMods, p.Name)
				}
			}
			if !slices.Contains(goMods, "github.com/ctrforensics/ctrforensics") {
				t.Errorf("Go modules of the test binary: %v", goMods)
			}
		})
	}
}

// scanners are the three inputs of a Scanner, on a directory.
func scanners() map[string]func(context.Context, string, Options) (*Inventory, error) {
	m := map[string]func(context.Context, string, Options) (*Inventory, error){
		"fs": func(ctx context.Context, root string, o Options) (*Inventory, error) {
			return ScanFS(ctx, os.DirFS(root), o)
		},
		"tar": func(ctx context.Context, root string, o Options) (*Inventory, error) {
			cmd := exec.CommandContext(ctx, "tar", "-C", root, "-cf", "-", ".")
			out, err := cmd.StdoutPipe()
			if err != nil {
				return nil, err
			}
			if err := cmd.Start(); err != nil {
				return nil, err
			}
			inv, err := ScanTar(ctx, out, o)
			if werr := cmd.Wait(); err == nil {
				err = werr
			}
			return inv, err
		},
	}
	if runtime.GOOS == "linux" {
		m["dir"] = ScanDir
	}
	return m
}

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for n, c := range files {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(c))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestHostile: a huge status file, a symlinked database and a zip bomb are
// skipped with notes, quickly and without memory.
func TestHostile(t *testing.T) {
	for name, scan := range scanners() {
		t.Run(name, func(t *testing.T) {
			// tar reads a sparse file's holes: 300 MiB is over the bound too.
			size := int64(10 << 30)
			if name == "tar" {
				size = 300 << 20
			}
			root := hostileTree(t, size)
			start := time.Now()
			inv, err := scan(context.Background(), root, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(inv.Packages) != 0 {
				t.Errorf("packages from hostile input: %+v", inv.Packages)
			}
			notes := strings.Join(inv.Notes, "\n")
			for _, want := range []string{fmt.Sprintf("/var/lib/dpkg/status: %d bytes, over the bound", size),
				"/opt/bomb.jar: META-INF/maven/g/a/pom.properties: longer than the bound"} {
				if !strings.Contains(notes, want) {
					t.Errorf("notes lack %q:\n%s", want, notes)
				}
			}
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("hostile scan took %v", d)
			}
		})
	}
}

// hostileTree holds a status file of size bytes (sparse), an apk database
// that is a symlink, and a zip bomb.
func hostileTree(t *testing.T, size int64) string {
	root := t.TempDir()
	write(t, root, map[string]string{"etc/passwd-db": "Package: evil\nVersion: 1\nStatus: install ok installed\n"})
	if err := os.MkdirAll(filepath.Join(root, "var/lib/dpkg"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A 10 GB sparse status file.
	f, err := os.Create(filepath.Join(root, "var/lib/dpkg/status"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// The apk database is a symlink to a file outside the packages' paths.
	if err := os.MkdirAll(filepath.Join(root, "lib/apk/db"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd-db", filepath.Join(root, "lib/apk/db/installed")); err != nil {
		t.Fatal(err)
	}
	// A zip bomb: a pom.properties of 256 MiB of zeros compressing to ~256 KB.
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, _ := zw.Create("META-INF/maven/g/a/pom.properties")
	zero := make([]byte, 1<<20)
	for range 256 {
		w.Write(zero)
	}
	zw.Close()
	write(t, root, map[string]string{"opt/bomb.jar": b.String()})
	return root
}

// TestDebianMatchesDpkgQuery compares the dpkg inventory of a debootstrap'ed
// Debian root (scripts/bench-debian.sh caches it) with dpkg-query's.
func TestDebianMatchesDpkgQuery(t *testing.T) {
	root := os.Getenv("CTRFORENSICS_DEBIAN_ROOT")
	if root == "" {
		t.Skip("CTRFORENSICS_DEBIAN_ROOT unset (a debootstrap'ed Debian root; make test-packages extracts one)")
	}
	out, err := exec.Command("dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W",
		"-f=${db:Status-Status} ${Package}=${Version}\n").Output()
	if err != nil {
		t.Fatalf("dpkg-query: %v", err)
	}
	var want []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if st, pv, _ := strings.Cut(l, " "); st != "not-installed" && st != "config-files" {
			want = append(want, pv)
		}
	}
	slices.Sort(want)
	start := time.Now()
	inv, err := ScanDir(context.Background(), root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ScanDir of %s: %d packages in %v", root, len(inv.Packages), time.Since(start))
	if tarPath := os.Getenv("CTRFORENSICS_DEBIAN_TAR"); tarPath != "" {
		f, err := os.Open(tarPath)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		start := time.Now()
		tinv, err := ScanTar(context.Background(), f, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("ScanTar of %s: %d packages in %v", tarPath, len(tinv.Packages), time.Since(start))
		if got, want := names(tinv, Deb), names(inv, Deb); !slices.Equal(got, want) {
			t.Errorf("the tar gives other dpkg packages: %v", got)
		}
	}
	got := names(inv, Deb)
	slices.Sort(got)
	if !slices.Equal(got, want) || len(want) < 50 {
		t.Fatalf("dpkg packages differ from dpkg-query (%d vs %d)\ngot  %v\nwant %v", len(got), len(want), got, want)
	}
	listed, err := exec.Command("dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-L", "coreutils").Output()
	if err != nil {
		t.Fatal(err)
	}
	cu := find(t, inv, "coreutils")
	for _, l := range strings.Split(strings.TrimSpace(string(listed)), "\n") {
		if l != "/." && !slices.Contains(cu.Files, l) {
			t.Errorf("coreutils lacks %s (dpkg-query -L lists it)", l)
		}
	}
	if !strings.HasPrefix(cu.PURL, "pkg:deb/debian/coreutils@") || !strings.Contains(cu.PURL, "distro=debian-12") {
		t.Errorf("coreutils purl %s", cu.PURL)
	}
	checkSBOMs(t, inv)
}

// checkSBOMs writes both SBOMs and parses them back with their libraries:
// every package present, bom-refs unique, the SPDX document DESCRIBES its
// subject.
func checkSBOMs(t *testing.T, inv *Inventory) {
	t.Helper()
	subj := Subject{Kind: "image", Name: "docker.io/library/debian:12", Tool: "ctrforensics test", Time: time.Unix(0, 0)}
	var c bytes.Buffer
	if err := WriteCycloneDX(&c, subj, inv); err != nil {
		t.Fatal(err)
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(c.Bytes()), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(c.Bytes(), &raw); err != nil || raw["specVersion"] != "1.6" || raw["bomFormat"] != "CycloneDX" {
		t.Fatalf("CycloneDX header: %v %v %v", err, raw["specVersion"], raw["bomFormat"])
	}
	refs := map[string]bool{bom.Metadata.Component.BOMRef: true}
	purls := 0
	for _, comp := range *bom.Components {
		if refs[comp.BOMRef] {
			t.Errorf("duplicate bom-ref %s", comp.BOMRef)
		}
		refs[comp.BOMRef] = true
		if comp.PackageURL != "" {
			purls++
		}
	}
	if purls != len(inv.Packages) {
		t.Errorf("CycloneDX has %d purls for %d packages", purls, len(inv.Packages))
	}
	var s bytes.Buffer
	if err := WriteSPDX(&s, subj, inv); err != nil {
		t.Fatal(err)
	}
	doc, err := spdxjson.Read(bytes.NewReader(s.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.DocumentNamespace == "" || len(doc.Packages) != len(inv.Packages)+1 {
		t.Fatalf("SPDX: version %s namespace %q packages %d", doc.SPDXVersion, doc.DocumentNamespace, len(doc.Packages))
	}
	describes := 0
	for _, r := range doc.Relationships {
		if r.Relationship == "DESCRIBES" && r.RefA.ElementRefID == "DOCUMENT" {
			describes++
		}
	}
	if describes != 1 {
		t.Errorf("SPDX DESCRIBES relationships: %d", describes)
	}
}
