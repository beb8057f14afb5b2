package packages

import (
	"bytes"
	"encoding/csv"
	"net/mail"
	"path"
	"regexp"
	"slices"
	"strings"
)

// python reads *.dist-info/METADATA (with RECORD for the files) and
// *.egg-info (PKG-INFO or the file itself, with installed-files.txt).
func (s *Scanner) python() []Package {
	var out []Package
	for name, b := range s.files {
		dir, base := path.Split(name)
		dir = strings.TrimSuffix(dir, "/")
		var p Package
		switch {
		case strings.HasSuffix(dir, ".dist-info") && base == "METADATA":
			p = pythonMeta(b, name)
			p.Files = recordFiles(s.files[dir+"/RECORD"], path.Dir(dir))
		case strings.HasSuffix(dir, ".egg-info") && base == "PKG-INFO":
			p = pythonMeta(b, name)
			p.Files = eggFiles(s.files[dir+"/installed-files.txt"], dir)
		case strings.HasSuffix(base, ".egg-info"):
			p = pythonMeta(b, name)
		default:
			continue
		}
		if p.Name != "" && p.Version != "" {
			out = append(out, p)
		}
	}
	return out
}

var pyNormalize = regexp.MustCompile(`[-_.]+`)

func pythonMeta(b []byte, source string) Package {
	// METADATA is an email header block; a body after the blank line is the
	// description.
	hdr := b
	if i := bytes.Index(b, []byte("\n\n")); i >= 0 {
		hdr = b[:i+1]
	}
	m, err := mail.ReadMessage(bytes.NewReader(append(hdr, '\n')))
	if err != nil {
		return Package{}
	}
	h := m.Header
	name, version := h.Get("Name"), h.Get("Version")
	p := Package{Name: name, Version: version, Type: PyPI, Source: source,
		PURL: purlOf(PyPI, "", strings.ToLower(pyNormalize.ReplaceAllString(name, "-")), version, nil)}
	if l := h.Get("License-Expression"); l != "" {
		p.Licenses = []string{l}
	} else if l := h.Get("License"); l != "" && l != "UNKNOWN" && !strings.Contains(l, "\n") && len(l) < 100 {
		p.Licenses = []string{l}
	} else {
		for _, c := range h["Classifier"] {
			if l, ok := strings.CutPrefix(c, "License :: OSI Approved :: "); ok {
				p.Licenses = append(p.Licenses, l)
			}
		}
	}
	return p
}

// recordFiles returns the absolute paths of a RECORD (CSV: path, hash, size;
// paths relative to the site-packages directory).
func recordFiles(b []byte, site string) []string {
	var out []string
	for _, r := range parseRecord(b) {
		out = append(out, path.Clean(path.Join(site, r.path)))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// recordEntry is one line of a RECORD file.
type recordEntry struct {
	path, hash, size string
}

func parseRecord(b []byte) []recordEntry {
	if b == nil {
		return nil
	}
	cr := csv.NewReader(bytes.NewReader(b))
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	rows, _ := cr.ReadAll()
	var out []recordEntry
	for _, r := range rows {
		if len(r) == 0 || r[0] == "" {
			continue
		}
		e := recordEntry{path: r[0]}
		if len(r) > 1 {
			e.hash = r[1]
		}
		if len(r) > 2 {
			e.size = r[2]
		}
		out = append(out, e)
	}
	return out
}

func eggFiles(b []byte, dir string) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, path.Clean(path.Join(dir, l)))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
