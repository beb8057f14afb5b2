package packages

import (
	"strings"
)

// apk reads /lib/apk/db/installed: one paragraph per package, P: name, V:
// version, A: arch, L: licence, F: a directory, R: a file in it.
func (s *Scanner) apk(d Distro) []Package {
	b, ok := s.files["/lib/apk/db/installed"]
	if !ok {
		return nil
	}
	var out []Package
	for _, rec := range apkRecords(b) {
		name, version := rec.first("P"), rec.first("V")
		if name == "" || version == "" {
			continue
		}
		p := Package{Name: name, Version: version, Type: Apk, Arch: rec.first("A"), Source: "/lib/apk/db/installed"}
		if l := rec.first("L"); l != "" {
			p.Licenses = []string{l}
		}
		p.PURL = purlOf(Apk, distroNamespace(d, "alpine"), name, version,
			qualifiers("arch", p.Arch, "distro", distroQualifier(d)))
		for _, f := range rec.files {
			p.Files = append(p.Files, f.path)
		}
		out = append(out, p)
	}
	return out
}

// apkFile is one file an apk record owns, with what the record says of it.
type apkFile struct {
	path     string
	checksum string // Z: (Q1 + base64 sha1)
	acl      string // a: uid:gid:mode
}

type apkRecord struct {
	fields map[string][]string
	files  []apkFile
}

func (r apkRecord) first(k string) string {
	if v := r.fields[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// apkRecords parses the installed database. Lines are "K:value"; F: sets the
// directory for the R: lines that follow, Z: and a: after an R: describe that
// file.
func apkRecords(b []byte) []apkRecord {
	var out []apkRecord
	cur := apkRecord{fields: map[string][]string{}}
	dir, afterR := "", false
	flush := func() {
		if len(cur.fields) > 0 || len(cur.files) > 0 {
			out = append(out, cur)
		}
		cur, dir, afterR = apkRecord{fields: map[string][]string{}}, "", false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" {
			flush()
			continue
		}
		if len(line) < 2 || line[1] != ':' {
			continue
		}
		k, v := line[:1], line[2:]
		switch k {
		case "F":
			dir, afterR = v, false
		case "R":
			cur.files = append(cur.files, apkFile{path: "/" + strings.TrimPrefix(dir+"/"+v, "/")})
			afterR = true
			continue
		case "Z", "a":
			if n := len(cur.files); n > 0 && afterR {
				if k == "Z" {
					cur.files[n-1].checksum = v
				} else {
					cur.files[n-1].acl = v
				}
				continue
			}
		}
		cur.fields[k] = append(cur.fields[k], v)
	}
	flush()
	return out
}
