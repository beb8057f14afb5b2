package packages

import (
	"archive/zip"
	"bytes"
	"io"
	"path"
	"strings"
)

// addJar reads a Java archive's META-INF/MANIFEST.MF and Maven
// pom.properties. Only those entries are decompressed, each at most
// maxArchiveEntry bytes, so a zip bomb costs nothing; nested archives are
// not opened.
func (s *Scanner) addJar(f File, r io.Reader) error {
	b, err := readBounded(r, s.opts.MaxBinaryBytes)
	if err != nil {
		s.notef("%s: %v", esc(f.Path), err)
		return nil
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		s.notef("%s: not a readable Java archive: %v", esc(f.Path), err)
		return nil
	}
	var poms []map[string]string
	var manifest map[string]string
	for _, e := range zr.File {
		switch {
		case e.Name == "META-INF/MANIFEST.MF":
			manifest = s.jarProps(f.Path, e, ":")
		case strings.HasPrefix(e.Name, "META-INF/maven/") && path.Base(e.Name) == "pom.properties":
			if p := s.jarProps(f.Path, e, "="); p != nil {
				poms = append(poms, p)
			}
		}
	}
	for _, pom := range poms {
		if pom["artifactId"] == "" || pom["version"] == "" {
			continue
		}
		s.found = append(s.found, Package{Name: pom["groupId"] + ":" + pom["artifactId"], Version: pom["version"],
			Type: Maven, Source: f.Path, PURL: purlOf(Maven, pom["groupId"], pom["artifactId"], pom["version"], nil)})
	}
	if len(poms) == 0 && manifest != nil {
		name := firstOf(manifest, "Implementation-Title", "Bundle-SymbolicName", "Specification-Title")
		if name == "" {
			name = strings.TrimSuffix(path.Base(f.Path), path.Ext(f.Path))
		}
		version := firstOf(manifest, "Implementation-Version", "Bundle-Version", "Specification-Version")
		s.found = append(s.found, Package{Name: name, Version: version, Type: Maven, Source: f.Path,
			PURL: purlOf(Maven, firstOf(manifest, "Implementation-Vendor-Id"), name, version, nil)})
	}
	return nil
}

// jarProps reads one archive entry as "key SEP value" lines.
func (s *Scanner) jarProps(jar string, e *zip.File, sep string) map[string]string {
	rc, err := e.Open()
	if err != nil {
		s.notef("%s: %s: %v", esc(jar), esc(e.Name), err)
		return nil
	}
	defer rc.Close()
	b, err := readBounded(rc, maxArchiveEntry)
	if err != nil {
		s.notef("%s: %s: %v", esc(jar), esc(e.Name), err)
		return nil
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, sep); ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

func firstOf(m map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := m[k]; v != "" {
			return v
		}
	}
	return ""
}
