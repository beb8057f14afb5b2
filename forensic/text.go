package forensic

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ellipsis ends clipped text.
const ellipsis = "..."

// Clip shortens s to at most size bytes, ending with "..." when it cuts. The
// cut falls on a rune boundary and, in text escaped by EscapePath, never
// inside an escape sequence (\\, \n, \xNN, \u{N}), so the clipped text is
// valid UTF-8 and every escape in it reads as it did.
func Clip(s string, size int) string {
	if len(s) <= size {
		return s
	}
	if size < len(ellipsis) {
		return ellipsis[:max(size, 0)]
	}
	limit, cut := size-len(ellipsis), 0
	for cut < len(s) {
		n := tokenLen(s[cut:])
		if cut+n > limit {
			break
		}
		cut += n
	}
	return s[:cut] + ellipsis
}

// tokenLen is the length of the rune or EscapePath escape sequence s starts
// with.
func tokenLen(s string) int {
	if s[0] != '\\' || len(s) == 1 {
		_, n := utf8.DecodeRuneInString(s)
		return n
	}
	switch s[1] {
	case 'x':
		return min(4, len(s))
	case 'u':
		if end := strings.IndexByte(s, '}'); end > 2 && s[2] == '{' {
			return end + 1
		}
	}
	return 2
}

// EscapeControl makes text safe to print on one line while keeping it as
// written: control and other non-printable characters are written as \n,
// \t, \xNN (\u{N} above ASCII), bytes that are not UTF-8 as \xNN; quotes and
// backslashes are left alone. Unlike EscapePath the result cannot always be
// read back: it is for human-readable messages, not names.
func EscapeControl(s string) string {
	plain := true
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80 && !unicode.IsPrint(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case !unicode.IsPrint(r):
			fmt.Fprintf(&b, `\u{%x}`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}
