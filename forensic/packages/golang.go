package packages

import (
	"bytes"
	"debug/buildinfo"
	"io"
)

// addExec reads an executable; a Go binary yields its main module and every
// dependency (debug/buildinfo), with the binary as their source.
func (s *Scanner) addExec(f File, r io.Reader) error {
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil || string(magic[:]) != "\x7fELF" {
		return nil
	}
	rest, err := readBounded(r, s.opts.MaxBinaryBytes-4)
	if err != nil {
		s.notef("%s: %v", esc(f.Path), err)
		return nil
	}
	s.addGoBinary(f.Path, bytes.NewReader(append(magic[:], rest...)))
	return nil
}

// addGoBinary records the modules of a Go binary read through ra; a binary
// that is not Go's is no package.
func (s *Scanner) addGoBinary(p string, ra io.ReaderAt) {
	bi, err := buildinfo.Read(ra)
	if err != nil {
		return
	}
	if bi.Main.Path != "" {
		s.found = append(s.found, goModule(bi.Main.Path, bi.Main.Version, p))
	}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		s.found = append(s.found, goModule(d.Path, d.Version, p))
	}
}

func goModule(mod, version, source string) Package {
	ns, name := splitLast(mod)
	return Package{Name: mod, Version: version, Type: Golang, Source: source,
		PURL: purlOf(Golang, ns, name, version, nil)}
}

// splitLast splits "a/b/c" into "a/b" and "c".
func splitLast(p string) (string, string) {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[:i], p[i+1:]
		}
	}
	return "", p
}
