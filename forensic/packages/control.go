package packages

import (
	"bufio"
	"bytes"
	"strings"
)

// stanza is one paragraph of a Debian control file (or an apk database
// record), keys as written, continuation lines joined with "\n".
type stanza map[string]string

// parseStanzas splits an RFC 822 style file into paragraphs. Continuation
// lines (starting with a space or tab) extend the previous field.
func parseStanzas(b []byte) []stanza {
	var out []stanza
	cur, last := stanza{}, ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
		}
		cur, last = stanza{}, ""
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				cur[last] += "\n" + strings.TrimSpace(line)
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = k
			cur[k] = strings.TrimSpace(v)
		}
	}
	flush()
	return out
}

// parseOSRelease reads /etc/os-release, or /usr/lib/os-release.
func parseOSRelease(files map[string][]byte) Distro {
	b, ok := files["/etc/os-release"]
	if !ok {
		b = files["/usr/lib/os-release"]
	}
	var d Distro
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "ID":
			d.ID = v
		case "VERSION_ID":
			d.VersionID = v
		case "PRETTY_NAME":
			d.Name = v
		}
	}
	return d
}
