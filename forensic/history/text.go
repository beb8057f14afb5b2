package history

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maskText replaces secret values.
const maskText = "****"

// minMaskLen is the shortest value masked everywhere; shorter values would
// mask unrelated text and are only left out of the secret findings
// themselves.
const minMaskLen = 4

// mask replaces every occurrence of each secret, longest first.
func mask(s string, secrets []string) string {
	ss := append([]string(nil), secrets...)
	sort.Slice(ss, func(i, j int) bool { return len(ss[i]) > len(ss[j]) })
	for _, v := range ss {
		if len(v) >= minMaskLen {
			s = strings.ReplaceAll(s, v, maskText)
		}
	}
	return s
}

// oneLine escapes control characters, invalid UTF-8 and non-printable runes
// (\n, \t, \r, \xNN, \uNNNN) so the text fits on one line. Backslashes are
// left as they are.
func oneLine(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case !unicode.IsPrint(r) && r != ' ':
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// clip shortens s to at most max bytes, cutting on a rune boundary and
// ending with "...".
func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const ell = "..."
	cut := max - len(ell)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ell
}

// cite prepares matched text for use inside a Reason. Escaping and clipping
// happen in finalize, after secrets are masked, so that neither can split a
// secret and let part of it through.
func cite(s string) string {
	return strings.TrimSpace(s)
}
