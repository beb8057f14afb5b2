package packages

import (
	"path"
	"slices"
	"strings"
)

const dpkgInfo = "/var/lib/dpkg/info/"

// dpkg reads /var/lib/dpkg/status and the distroless /var/lib/dpkg/status.d/
// files, with the files each package owns from info/NAME[:ARCH].list.
func (s *Scanner) dpkg(d Distro) []Package {
	var out []Package
	if b, ok := s.files["/var/lib/dpkg/status"]; ok {
		for _, st := range parseStanzas(b) {
			if p, ok := s.dpkgPackage(st, "/var/lib/dpkg/status", d); ok {
				out = append(out, p)
			}
		}
	}
	for name, b := range s.files {
		if path.Dir(name) != "/var/lib/dpkg/status.d" || strings.HasSuffix(name, ".md5sums") {
			continue
		}
		for _, st := range parseStanzas(b) {
			if p, ok := s.dpkgPackage(st, name, d); ok {
				out = append(out, p)
			}
		}
	}
	return out
}

// dpkgInstalled says a status paragraph is an installed package: its Status
// (absent in distroless status.d files) ends in "installed" or is a
// half-configured state that still has files on disk.
func dpkgInstalled(st stanza) bool {
	status, ok := st["Status"]
	if !ok {
		return true
	}
	f := strings.Fields(status)
	if len(f) != 3 {
		return false
	}
	switch f[2] {
	case "installed", "half-configured", "unpacked", "half-installed", "triggers-awaited", "triggers-pending":
		return true
	}
	return false
}

func (s *Scanner) dpkgPackage(st stanza, source string, d Distro) (Package, bool) {
	name, version := st["Package"], st["Version"]
	if name == "" || version == "" || !dpkgInstalled(st) {
		return Package{}, false
	}
	arch := st["Architecture"]
	p := Package{Name: name, Version: version, Type: Deb, Arch: arch, Source: source}
	p.PURL = purlOf(Deb, distroNamespace(d, "debian"), name, version, qualifiers("arch", arch, "distro", distroQualifier(d)))
	for _, list := range []string{dpkgInfo + name + ":" + arch + ".list", dpkgInfo + name + ".list"} {
		if b, ok := s.files[list]; ok {
			p.Files = dpkgList(b)
			p.Source = list
			break
		}
	}
	return p, true
}

// dpkgList returns the regular paths of a .list file (directories listed
// there are owned by several packages and left out only when another
// package's list holds them; all are kept here, as dpkg -L prints them).
func dpkgList(b []byte) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && l != "/." {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func distroNamespace(d Distro, fallback string) string {
	if d.ID != "" {
		return d.ID
	}
	return fallback
}

func distroQualifier(d Distro) string {
	if d.ID == "" || d.VersionID == "" {
		return ""
	}
	return d.ID + "-" + d.VersionID
}
