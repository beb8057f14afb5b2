package forensic

import (
	"strings"
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
