package forensic

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClip(t *testing.T) {
	tests := []struct {
		in   string
		size int
		want string
	}{
		{"short", 10, "short"},
		{strings.Repeat("a", 10), 7, "aaaa..."},
		{"ééé", 4, "..."},
		{"ééé", 5, "é..."},
		{"abc", 2, ".."},
		{"abc", -1, ""},
		// Escapes of EscapePath are never cut in half.
		{EscapePath("ab\x01cdefgh"), 8, `ab...`},
		{EscapePath("ab\x01cdefgh"), 9, `ab\x01...`},
		{EscapePath("ab\x01cdefgh"), 10, `ab\x01c...`},
		{EscapePath("a\\bcdefgh"), 5, `a...`},
		{EscapePath("a\u2028bcdefghij"), 12, `a\u{2028}...`},
		{EscapePath("a\u2028bcdefghij"), 11, `a...`},
		{`a\u`, 2, ".."},
	}
	for _, tt := range tests {
		got := Clip(tt.in, tt.size)
		if got != tt.want || len(got) > max(tt.size, 0) || !utf8.ValidString(got) {
			t.Errorf("Clip(%q, %d) = %q, want %q", tt.in, tt.size, got, tt.want)
		}
	}
}

// FuzzClip checks Clip never exceeds its size, keeps UTF-8 valid and keeps a
// prefix of the text.
func FuzzClip(f *testing.F) {
	f.Add("a\x01é\\b\u2028", 6)
	f.Fuzz(func(t *testing.T, s string, size int) {
		s = EscapePath(s)
		size %= 64
		got := Clip(s, size)
		if len(got) > max(size, 0) || !utf8.ValidString(got) {
			t.Fatalf("Clip(%q, %d) = %q", s, size, got)
		}
		if got != s && size >= len(ellipsis) && !strings.HasPrefix(s, strings.TrimSuffix(got, ellipsis)) {
			t.Fatalf("Clip(%q, %d) = %q is not a prefix", s, size, got)
		}
	})
}

func TestEscapeControl(t *testing.T) {
	tests := []struct{ in, want string }{
		{`eval($_POST["c"]) \x65`, `eval($_POST["c"]) \x65`},
		{"a\nb\tc\x1b[31m", `a\nb\tc\x1b[31m`},
		{"x\xffy", `x\xffy`},
		{"é\u2028", `é\u{2028}`},
		{"plain", "plain"},
	}
	for _, tt := range tests {
		if got := EscapeControl(tt.in); got != tt.want {
			t.Errorf("EscapeControl(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
