package packages

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const helloSpec = `Name: ctrf-hello
Version: 1.2
Release: 3
Summary: test
License: MIT
BuildArch: noarch
%description
test
%install
mkdir -p %{buildroot}/usr/share/ctrf
echo hi > %{buildroot}/usr/share/ctrf/hello.txt
echo conf > %{buildroot}/usr/share/ctrf/app.conf
%files
/usr/share/ctrf/hello.txt
%config /usr/share/ctrf/app.conf
`

// TestRPMMatchesRPM builds a package with rpmbuild, installs it into an
// empty root's sqlite database (the backend Debian's rpm writes; it cannot
// write bdb or ndb, which go-rpmdb's own tests cover) and compares our list
// with rpm -qa on that database.
func TestRPMMatchesRPM(t *testing.T) {
	for _, tool := range []string{"rpm", "rpmbuild"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (scripts/install-deps.sh installs rpm)", tool)
		}
	}
	top, root := t.TempDir(), t.TempDir()
	spec := filepath.Join(top, "hello.spec")
	if err := os.WriteFile(spec, []byte(helloSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("rpmbuild", "--define", "_topdir "+top, "-bb", spec)
	db := []string{"--root", root, "--define", "_dbpath /var/lib/rpm"}
	run(append([]string{"rpm", "--initdb"}, db...)...)
	run(append([]string{"rpm", "-i", "--nodeps", "--noscripts", filepath.Join(top, "RPMS/noarch/ctrf-hello-1.2-3.noarch.rpm")}, db...)...)
	want := strings.Fields(run(append([]string{"rpm", "-qa", "--qf", "%{NAME}=%{VERSION}-%{RELEASE}\n"}, db...)...))
	inv, err := ScanDir(context.Background(), root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(inv, RPM); !slices.Equal(got, want) || len(want) != 1 {
		t.Fatalf("rpm packages: got %v, rpm -qa says %v (notes %v)", got, want, inv.Notes)
	}
	p := find(t, inv, "ctrf-hello")
	if p.PURL != "pkg:rpm/rpm/ctrf-hello@1.2-3?arch=noarch" || !slices.Equal(p.Licenses, []string{"MIT"}) ||
		!slices.Contains(p.Files, "/usr/share/ctrf/app.conf") {
		t.Errorf("ctrf-hello: %+v", p)
	}
	// Integrity: the record root is the installed root; a copy with the
	// config file and the other file edited.
	work := t.TempDir()
	run("cp", "-a", root+"/.", work)
	run("sh", "-c", "echo changed > "+work+"/usr/share/ctrf/app.conf && echo changed > "+work+"/usr/share/ctrf/hello.txt")
	res, err := VerifyDir(context.Background(), root, work, []Target{{Path: "/usr/share/ctrf/app.conf"},
		{Path: "/usr/share/ctrf/hello.txt"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Status != ConfigModified || res[1].Status != Modified || res[1].Algorithm != "sha256" {
		t.Errorf("rpm verify: %+v", res)
	}
	rpmV, _ := exec.Command("rpm", append([]string{"-V", "ctrf-hello"}, "--root", work, "--define", "_dbpath /var/lib/rpm")...).CombinedOutput()
	for _, want := range []string{"c /usr/share/ctrf/app.conf", "/usr/share/ctrf/hello.txt"} {
		if !strings.Contains(string(rpmV), want) {
			t.Errorf("rpm -V does not flag %s:\n%s", want, rpmV)
		}
	}
}
