package history

import (
	"sort"
	"strings"

	"github.com/ctrforensics/ctrforensics/forensic"
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

// oneLine escapes text to one line with forensic.EscapePath, the one
// convention of every text ctrforensics prints: backslashes doubled, \n and
// \t, \xNN for other control bytes and invalid UTF-8, \u{N} for other
// non-printable runes.
func oneLine(s string) string { return forensic.EscapePath(s) }

// clip shortens escaped text to at most max bytes with forensic.Clip.
func clip(s string, max int) string { return forensic.Clip(s, max) }

// cite prepares matched text for use inside a Reason. Escaping and clipping
// happen in finalize, after secrets are masked, so that neither can split a
// secret and let part of it through.
func cite(s string) string {
	return strings.TrimSpace(s)
}

// CommandText makes a command (a history created_by, a comment) printable on
// one line while keeping it as it was, so that it pastes back into a shell:
// forensic.EscapeControl.
func CommandText(s string) string { return forensic.EscapeControl(s) }
