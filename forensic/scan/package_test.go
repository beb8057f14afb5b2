package scan

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/ctrforensics/ctrforensics/forensic/imagefs"
	"github.com/ctrforensics/ctrforensics/forensic/packages"
)

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestPackageFileRule: an image whose last layer replaces a dpkg-owned
// binary fires CTRF-FS-011 on it, once, at the layer that shows it; the
// intact package file, the conffile and the replaced original (hidden in
// layer 0) do not fire; an edited conffile fires at low.
func TestPackageFileRule(t *testing.T) {
	status := "Package: tools\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0\n" +
		"Conffiles:\n /etc/tools.conf " + md5hex("a=1\n") + "\n /etc/other.conf " + md5hex("b=1\n") + "\n\n"
	layers := []imagefs.Layer{
		layer(t, [2]string{"etc/", ""}, [2]string{"etc/tools.conf", "a=1\n"}, [2]string{"etc/other.conf", "b=1\n"},
			[2]string{"usr/", ""}, [2]string{"usr/bin/", ""},
			[2]string{"usr/bin/tool", "tool\n"}, [2]string{"usr/bin/other", "other\n"},
			[2]string{"var/", ""}, [2]string{"var/lib/", ""}, [2]string{"var/lib/dpkg/", ""}, [2]string{"var/lib/dpkg/info/", ""},
			[2]string{"var/lib/dpkg/status", status},
			[2]string{"var/lib/dpkg/info/tools.md5sums", md5hex("tool\n") + "  usr/bin/tool\n" + md5hex("other\n") + "  usr/bin/other\n"}),
		layer(t, [2]string{"usr/", ""}, [2]string{"usr/bin/", ""}, [2]string{"usr/bin/tool", "\x7fELF xmrig"},
			[2]string{"etc/", ""}, [2]string{"etc/other.conf", "b=2\n"}),
	}
	res, err := packages.VerifyImage(context.Background(), layers, packages.Options{}, imagefs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, pkgs := range []bool{false, true} {
		opts := Options{}
		if pkgs {
			opts.Packages = res
		}
		rep, err := Scan(context.Background(), LayersInput(layers), opts)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range rep.Findings {
			if f.Rule == RulePackageFile {
				got = append(got, f.Severity.String()+" "+f.Path+" "+string(rune('0'+f.Layer))+" "+f.Evidence)
				t.Logf("%s: %s", f.Path, f.Reason)
			}
		}
		slices.Sort(got)
		var want []string
		if pkgs {
			want = []string{"high /usr/bin/tool 1 md5:" + md5hex("\x7fELF xmrig"), "low /etc/other.conf 1 md5:" + md5hex("b=2\n")}
			slices.Sort(want)
		}
		if !slices.Equal(got, want) {
			t.Errorf("with package results %v: findings %q, want %q", pkgs, got, want)
		}
	}
}
