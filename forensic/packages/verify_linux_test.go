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

// TestVerifyDebianMatchesDpkgVerify tampers with a copy of a Debian root as
// the attacker does and compares VerifyDir with dpkg --verify --root
// on that copy: the same files flagged, save the md5sums rewrite, which dpkg
// misses (it trusts the copy's records) and VerifyDir catches (the image's).
func TestVerifyDebianMatchesDpkgVerify(t *testing.T) {
	orig := os.Getenv("CTRFORENSICS_DEBIAN_ROOT")
	if orig == "" {
		t.Skip("CTRFORENSICS_DEBIAN_ROOT unset (a debootstrap'ed Debian root)")
	}
	cp := filepath.Join(t.TempDir(), "root")
	sh := func(script string) string {
		t.Helper()
		out, err := exec.Command("sh", "-ec", script).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
		return string(out)
	}
	sh("cp -a " + orig + " " + cp)
	sh(`cd ` + cp + `
cp -p usr/bin/tail /tmp/ref.$$; echo x >> usr/bin/tail; touch -r /tmp/ref.$$ usr/bin/tail; rm /tmp/ref.$$
sed -i 's/Debian/DEBIAN/' etc/issue.net
chmod u+s usr/bin/find
echo 'EXTRA_GROUPS="sudo"' >> etc/adduser.conf
echo evil > usr/bin/sed
sum=$(md5sum usr/bin/sed | cut -d' ' -f1)
sed -i "s|^[0-9a-f]*  bin/sed\$|$sum  bin/sed|" var/lib/dpkg/info/sed.md5sums
grep -q "$sum  bin/sed" var/lib/dpkg/info/sed.md5sums
echo new > usr/bin/dropped`)
	targets := []Target{{Path: "/usr/bin/tail"}, {Path: "/etc/issue.net"}, {Path: "/usr/bin/find"},
		{Path: "/etc/adduser.conf"}, {Path: "/usr/bin/sed"}, {Path: "/var/lib/dpkg/info/sed.md5sums"},
		{Path: "/usr/bin/dropped", Added: true}, {Path: "/usr/bin/ls"}}
	res, err := VerifyDir(context.Background(), orig, cp, targets, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range res {
		got[r.Path] = string(r.Status) + " " + strings.Join(r.Changed, ",")
	}
	want := map[string]string{
		"/usr/bin/tail":                  "modified content",
		"/etc/issue.net":                 "config-modified content",
		"/usr/bin/find":                  "modified mode",
		"/etc/adduser.conf":              "config-modified content",
		"/usr/bin/sed":                   "modified content",
		"/var/lib/dpkg/info/sed.md5sums": "db-changed ",
		"/usr/bin/dropped":               "not-owned ",
		"/usr/bin/ls":                    "ok ",
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: got %q, want %q", p, got[p], w)
		}
	}
	// dpkg --verify flags content changes (it checks no modes); it misses sed,
	// whose md5sums line was rewritten.
	out, _ := exec.Command("dpkg", "--root="+cp, "--verify").Output()
	var dpkg []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(l); len(f) >= 2 {
			dpkg = append(dpkg, f[len(f)-1])
		}
	}
	slices.Sort(dpkg)
	var ours []string
	for _, r := range res {
		if slices.Contains(r.Changed, "content") && r.Path != "/usr/bin/sed" {
			p := r.Path
			if r.Recorded != "" {
				p = r.Recorded
			}
			ours = append(ours, p)
		}
	}
	slices.Sort(ours)
	if !slices.Equal(ours, dpkg) {
		t.Errorf("content changes: ours %v, dpkg --verify %v", ours, dpkg)
	}
	if slices.Contains(dpkg, "/bin/sed") || slices.Contains(dpkg, "/usr/bin/sed") {
		t.Errorf("dpkg --verify caught the md5sums rewrite? %v", dpkg)
	}
}
