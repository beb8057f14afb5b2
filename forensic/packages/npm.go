package packages

import (
	"encoding/json"
	"path"
	"strings"
)

// npm reads node_modules/NAME/package.json and node_modules/@SCOPE/NAME/package.json.
func (s *Scanner) npm() []Package {
	var out []Package
	for name, b := range s.files {
		if path.Base(name) != "package.json" {
			continue
		}
		var pj struct {
			Name     string          `json:"name"`
			Version  string          `json:"version"`
			License  json.RawMessage `json:"license"`
			Licenses []struct {
				Type string `json:"type"`
			} `json:"licenses"`
		}
		if json.Unmarshal(b, &pj) != nil || pj.Name == "" || pj.Version == "" {
			continue
		}
		ns, n := "", pj.Name
		if strings.HasPrefix(n, "@") {
			ns, n, _ = strings.Cut(n, "/")
		}
		p := Package{Name: pj.Name, Version: pj.Version, Type: NPM, Source: name, PURL: purlOf(NPM, ns, n, pj.Version, nil)}
		var l string
		var lo struct {
			Type string `json:"type"`
		}
		switch {
		case json.Unmarshal(pj.License, &l) == nil && l != "":
			p.Licenses = []string{l}
		case json.Unmarshal(pj.License, &lo) == nil && lo.Type != "":
			p.Licenses = []string{lo.Type}
		}
		for _, x := range pj.Licenses {
			if x.Type != "" {
				p.Licenses = append(p.Licenses, x.Type)
			}
		}
		out = append(out, p)
	}
	return out
}
