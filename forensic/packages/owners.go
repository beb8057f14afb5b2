package packages

import (
	"path"
	"strings"
)

// Owned is what a package manager recorded of one file it installed.
type Owned struct {
	Package string `json:"package"`
	Version string `json:"version"`
	Type    Type   `json:"type"`
	// Algorithm names Digest's hash: md5 (dpkg), sha1 (apk), sha256
	// (Python RECORD); empty when the record has no digest.
	Algorithm string `json:"algorithm,omitempty"`
	// Digest is the recorded digest, in hex.
	Digest string `json:"digest,omitempty"`
	// Config marks a configuration file (dpkg conffile).
	Config bool `json:"config,omitempty"`
	// Mode, UID and GID are recorded by apk only (HasOwner).
	Mode, UID, GID uint32
	HasOwner       bool
}

// Owners maps absolute paths, as the package managers recorded them, to
// what they recorded.
type Owners map[string]Owned

// Lookup finds the record of a path as found on disk. On a merged-/usr
// system dpkg records /bin/ls while the file is /usr/bin/ls, so a path under
// /usr/{bin,sbin,lib*} is also looked up without /usr. It returns the
// recorded path.
func (o Owners) Lookup(p string) (string, Owned, bool) {
	if r, ok := o[p]; ok {
		return p, r, true
	}
	if rest, ok := strings.CutPrefix(p, "/usr"); ok && usrMerged(rest) {
		if r, ok := o[rest]; ok {
			return rest, r, true
		}
	}
	return "", Owned{}, false
}

// usrMerged says p is below a directory that merged-/usr moves into /usr.
func usrMerged(p string) bool {
	first, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	switch first {
	case "bin", "sbin", "lib", "lib32", "lib64", "libx32":
		return true
	}
	return false
}

// allTargets lists every recorded file at its path on disk: on a merged-/usr
// root (symlink says /bin is a symbolic link), a recorded /bin/x is checked
// at /usr/bin/x.
func allTargets(symlink func(topDir string) bool, owners Owners) []Target {
	merged := map[string]bool{}
	for _, d := range []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
		merged[d] = symlink(d)
	}
	seen := make(map[string]bool, len(owners))
	out := make([]Target, 0, len(owners))
	for p := range owners {
		first, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
		if merged[first] {
			p = "/usr" + p
		}
		// A record of /bin/x and one of /usr/bin/x are one file on disk.
		if !seen[p] {
			seen[p] = true
			out = append(out, Target{Path: p})
		}
	}
	return out
}

// Dirs returns the directories that hold a recorded file: a new file in one
// of them is "not-owned".
func (o Owners) Dirs() map[string]bool {
	d := map[string]bool{}
	for p := range o {
		d[path.Dir(p)] = true
		if usrMerged(p) {
			d[path.Dir("/usr"+p)] = true
		}
	}
	return d
}

// DatabasePath says p is a package database or record file: a change to one
// in a container is reported on its own.
func DatabasePath(p string) bool {
	switch classify(File{Path: p, Mode: 0o644}) {
	case kindDpkgStatus, kindDpkgStatusD, kindDpkgInfo, kindApk, kindRPM, kindPyRecord, kindPyMeta:
		return true
	}
	return false
}

// Owners returns the integrity records of the scanned filesystem: dpkg
// md5sums (conffiles marked as configuration, with their own digests), apk
// sha1 checksums with mode and owner, rpm file digests (%ghost files left
// out, %config marked), Python RECORD sha256 digests. dpkg
// diversions move a record to the path the file was diverted to.
func (s *Scanner) Owners(inv *Inventory) Owners {
	o := Owners{}
	for _, p := range inv.Packages {
		switch p.Type {
		case Deb:
			s.dpkgOwners(o, p)
		case PyPI:
			s.pythonOwners(o, p)
		}
	}
	s.apkOwners(o)
	for p, r := range s.rpmOwned {
		o[p] = r
	}
	s.dpkgDiversions(o)
	return o
}

func (s *Scanner) dpkgOwners(o Owners, p Package) {
	base := dpkgInfo + p.Name
	b, ok := s.files[base+":"+p.Arch+".md5sums"]
	if !ok {
		b = s.files[base+".md5sums"]
	}
	if b == nil {
		b = s.files["/var/lib/dpkg/status.d/"+p.Name+".md5sums"]
	}
	for _, line := range strings.Split(string(b), "\n") {
		sum, file, ok := strings.Cut(line, "  ")
		if !ok || len(sum) != 32 {
			continue
		}
		o["/"+strings.TrimPrefix(file, "/")] = Owned{Package: p.Name, Version: p.Version, Type: Deb, Algorithm: "md5", Digest: sum}
	}
	// Conffiles are in the status paragraph: " /etc/x md5 [obsolete]".
	for _, st := range parseStanzas(s.files["/var/lib/dpkg/status"]) {
		if st["Package"] != p.Name || (st["Architecture"] != p.Arch && p.Arch != "") {
			continue
		}
		for _, l := range strings.Split(st["Conffiles"], "\n") {
			f := strings.Fields(l)
			if len(f) >= 2 && len(f[1]) == 32 {
				o[f[0]] = Owned{Package: p.Name, Version: p.Version, Type: Deb, Algorithm: "md5", Digest: f[1], Config: true}
			}
		}
	}
}

// dpkgDiversions reads /var/lib/dpkg/diversions (from, to, diverting
// package, three lines each): another package's file recorded as "from" is
// on disk at "to".
func (s *Scanner) dpkgDiversions(o Owners) {
	lines := strings.Split(string(s.files["/var/lib/dpkg/diversions"]), "\n")
	for i := 0; i+2 < len(lines); i += 3 {
		from, to, by := lines[i], lines[i+1], lines[i+2]
		if r, ok := o[from]; ok && r.Package != by {
			o[to] = r
			delete(o, from)
		}
	}
}

func (s *Scanner) apkOwners(o Owners) {
	for _, rec := range apkRecords(s.files["/lib/apk/db/installed"]) {
		name, version := rec.first("P"), rec.first("V")
		for _, f := range rec.files {
			r := Owned{Package: name, Version: version, Type: Apk}
			if sum, ok := strings.CutPrefix(f.checksum, "Q1"); ok {
				if d, err := decodeBase64Hex(sum); err == nil {
					r.Algorithm, r.Digest = "sha1", d
				}
			}
			if a := strings.Split(f.acl, ":"); len(a) == 3 {
				uid, e1 := parseUint(a[0], 10)
				gid, e2 := parseUint(a[1], 10)
				mode, e3 := parseUint(a[2], 8)
				if e1 == nil && e2 == nil && e3 == nil {
					r.UID, r.GID, r.Mode, r.HasOwner = uid, gid, mode, true
				}
			} else {
				// apk records no a: line for root-owned 0644 files.
				r.UID, r.GID, r.Mode, r.HasOwner = 0, 0, 0o644, true
			}
			o[f.path] = r
		}
	}
}

func (s *Scanner) pythonOwners(o Owners, p Package) {
	dir := path.Dir(p.Source)
	if !strings.HasSuffix(dir, ".dist-info") {
		return
	}
	for _, e := range parseRecord(s.files[dir+"/RECORD"]) {
		sum, ok := strings.CutPrefix(e.hash, "sha256=")
		if !ok {
			continue
		}
		d, err := decodeBase64URLHex(sum)
		if err != nil {
			continue
		}
		o[path.Clean(path.Join(path.Dir(dir), e.path))] = Owned{Package: p.Name, Version: p.Version, Type: PyPI,
			Algorithm: "sha256", Digest: d}
	}
}
