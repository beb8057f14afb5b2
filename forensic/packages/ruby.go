package packages

import (
	"regexp"
)

var (
	gemName     = regexp.MustCompile(`(?m)^\s*\w+\.name\s*=\s*["']([^"']+)["']`)
	gemVersion  = regexp.MustCompile(`(?m)^\s*\w+\.version\s*=\s*["']([^"']+)["']`)
	gemLicenses = regexp.MustCompile(`(?m)^\s*\w+\.licenses?\s*=\s*\[?\s*((?:["'][^"']+["']\s*,?\s*)+)\]?`)
	gemQuoted   = regexp.MustCompile(`["']([^"']+)["']`)
)

// gems reads specifications/*.gemspec files as text (a gemspec is Ruby code;
// it is never run): the name, version and licences assignments.
func (s *Scanner) gems() []Package {
	var out []Package
	for name, b := range s.files {
		if classify(File{Path: name, Mode: 0o644}) != kindGem {
			continue
		}
		n, v := gemName.FindSubmatch(b), gemVersion.FindSubmatch(b)
		if n == nil || v == nil {
			continue
		}
		p := Package{Name: string(n[1]), Version: string(v[1]), Type: Gem, Source: name,
			PURL: purlOf(Gem, "", string(n[1]), string(v[1]), nil)}
		if l := gemLicenses.FindSubmatch(b); l != nil {
			for _, q := range gemQuoted.FindAllSubmatch(l[1], -1) {
				p.Licenses = append(p.Licenses, string(q[1]))
			}
		}
		out = append(out, p)
	}
	return out
}
