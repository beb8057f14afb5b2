package forensic

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/opencontainers/go-digest"
)

// TimeFormat is RFC 3339 in UTC with all nine digits of nanoseconds, so that
// times sort as text and never lose precision.
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// FormatTime formats t in UTC with TimeFormat.
func FormatTime(t time.Time) string {
	return t.UTC().Format(TimeFormat)
}

// EscapePath makes a name of arbitrary bytes safe to print on one line:
// backslashes are doubled, control and non-printable characters are written as
// \n, \t or \xNN (\u{N} above ASCII), and bytes that are not UTF-8 as \xNN. The
// result of a printable UTF-8 name without backslashes is the name itself.
func EscapePath(p string) string { return escape(p, pathStyle) }

// EscapeControl makes text safe to print on one line while keeping it as
// written: control and other non-printable characters are written as \n, \t,
// \r, \xNN (\u{N} above ASCII), bytes that are not UTF-8 as \xNN; quotes and
// backslashes are left alone, so a command pastes back into a shell. Unlike
// EscapePath the result cannot always be read back: it is for human-readable
// messages and commands, not names.
func EscapeControl(s string) string { return escape(s, textStyle) }

// escapeStyle tells the two escapings apart: a path doubles backslashes so it
// reads back; text keeps them and names \r as shells do.
type escapeStyle int

const (
	pathStyle escapeStyle = iota
	textStyle
)

func escape(s string, style escapeStyle) string {
	if isPlain(s, style) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\' && style == pathStyle:
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r' && style == textStyle:
			b.WriteString(`\r`)
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

func isPlain(s string, style escapeStyle) bool {
	for _, r := range s {
		if r == utf8.RuneError || (r == '\\' && style == pathStyle) || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// Line formats a change as docker diff does: its kind letter, a space and the
// escaped path.
func (c *Change) Line() string {
	return string(c.Kind) + " " + EscapePath(c.Path)
}

// jsonBytes is a name or value of arbitrary bytes in JSON: the text itself when
// it is UTF-8, the escaped text plus the exact bytes in base64 otherwise.
type jsonBytes struct {
	text, b64 string
}

func newJSONBytes(s string) jsonBytes {
	if utf8.ValidString(s) {
		return jsonBytes{text: s}
	}
	return jsonBytes{text: EscapePath(s), b64: base64.StdEncoding.EncodeToString([]byte(s))}
}

// jsonMetadata is the JSON form of Metadata.
type jsonMetadata struct {
	Type             FileType          `json:"type"`
	Mode             string            `json:"mode"`
	UID              uint32            `json:"uid"`
	GID              uint32            `json:"gid"`
	Size             int64             `json:"size"`
	Allocated        int64             `json:"allocated"`
	Nlink            *uint64           `json:"nlink,omitempty"`
	Inode            uint64            `json:"inode"`
	Mtime            string            `json:"mtime"`
	Atime            string            `json:"atime"`
	Ctime            string            `json:"ctime"`
	Btime            *string           `json:"btime"`
	LinkTarget       *string           `json:"link_target"`
	LinkTargetBase64 string            `json:"link_target_base64,omitempty"`
	Xattrs           map[string]string `json:"xattrs"`
	DevMajor         *uint32           `json:"dev_major,omitempty"`
	DevMinor         *uint32           `json:"dev_minor,omitempty"`
}

func (md *Metadata) toJSON() jsonMetadata {
	j := jsonMetadata{
		Type:      md.Type,
		Mode:      fmt.Sprintf("%04o", md.Mode),
		UID:       md.UID,
		GID:       md.GID,
		Size:      md.Size,
		Allocated: md.Allocated,
		Inode:     md.Inode,
		Mtime:     FormatTime(md.Mtime),
		Atime:     FormatTime(md.Atime),
		Ctime:     FormatTime(md.Ctime),
		Xattrs:    make(map[string]string, len(md.Xattrs)),
	}
	// A directory's link count differs between an upper directory and a merged
	// overlay (which reports 1) and says nothing about changes: left out.
	if md.Type != TypeDir {
		j.Nlink = &md.Nlink
	}
	if md.Btime != nil {
		s := FormatTime(*md.Btime)
		j.Btime = &s
	}
	if md.Type == TypeSymlink {
		t := newJSONBytes(md.LinkTarget)
		j.LinkTarget, j.LinkTargetBase64 = &t.text, t.b64
	}
	for k, v := range md.Xattrs {
		j.Xattrs[k] = base64.StdEncoding.EncodeToString(v)
	}
	if md.Type == TypeChar || md.Type == TypeBlock {
		j.DevMajor, j.DevMinor = &md.DevMajor, &md.DevMinor
	}
	return j
}

// jsonChange is the JSON form of Change, one object per line in
// `diff --format json` and in a bundle's changes.jsonl.
type jsonChange struct {
	Kind       Kind   `json:"kind"`
	Path       string `json:"path"`
	PathBase64 string `json:"path_base64,omitempty"`
	jsonMetadata
	Digest         *digest.Digest `json:"digest"`
	BaseDigest     *digest.Digest `json:"base_digest"`
	ContentChanged *bool          `json:"content_changed"`
	Changed        []Field        `json:"changed"`
	NotHashed      *NotHashed     `json:"not_hashed,omitempty"`
	Runtime        bool           `json:"runtime"`
	HardLinkTo     *string        `json:"hard_link_to,omitempty"`
	LostWith       *string        `json:"lost_with,omitempty"`
	CopyUpOnly     bool           `json:"copy_up_only,omitempty"`
	Source         Source         `json:"source,omitempty"`
	Mount          *string        `json:"mount,omitempty"`
	Base           *jsonMetadata  `json:"base,omitempty"`
	Package        *PackageInfo   `json:"package,omitempty"`
}

// MarshalJSON encodes a change with every metadata field; names that are not
// UTF-8 keep their exact bytes in path_base64 and link_target_base64.
func (c Change) MarshalJSON() ([]byte, error) {
	p := newJSONBytes(c.Path)
	j := jsonChange{
		Kind:         c.Kind,
		Path:         p.text,
		PathBase64:   p.b64,
		jsonMetadata: c.Meta.toJSON(),
		Changed:      c.Fields,
		NotHashed:    c.NotHashed,
		Runtime:      c.Runtime,
		CopyUpOnly:   c.CopyUpOnly,
		Source:       c.Source,
		Package:      c.Package,
	}
	if c.Mount != "" {
		m := EscapePath(c.Mount)
		j.Mount = &m
	}
	if j.Changed == nil {
		j.Changed = []Field{}
	}
	if c.Digest != "" {
		j.Digest = &c.Digest
	}
	if c.BaseDigest != "" {
		j.BaseDigest = &c.BaseDigest
	}
	if changed, known := c.ContentChanged(); known {
		j.ContentChanged = &changed
	}
	if c.HardLinkTo != "" {
		h := EscapePath(c.HardLinkTo)
		j.HardLinkTo = &h
	}
	if c.LostWith != "" {
		l := EscapePath(c.LostWith)
		j.LostWith = &l
	}
	if c.Base != nil {
		b := c.Base.toJSON()
		j.Base = &b
	}
	return json.Marshal(j)
}
