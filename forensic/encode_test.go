package forensic

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestEscapePath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/var/www/html/index.html", "/var/www/html/index.html"},
		{"/tmp/évidence ünicode", "/tmp/évidence ünicode"},
		{"/tmp/evil\nname", `/tmp/evil\nname`},
		{"/tmp/tab\there", `/tmp/tab\there`},
		{"/tmp/bad\xffname", `/tmp/bad\xffname`},
		{`/tmp/back\slash`, `/tmp/back\\slash`},
		{"/tmp/esc\x1b[31mred", `/tmp/esc\x1b[31mred`},
		{"/tmp/del\x7f", `/tmp/del\x7f`},
		{"/tmp/rtl\u202eexe.txt", `/tmp/rtl\u{202e}exe.txt`},
	}
	for _, tt := range tests {
		if got := EscapePath(tt.in); got != tt.want {
			t.Errorf("EscapePath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestChangeJSON(t *testing.T) {
	mtime := time.Date(2024, 2, 3, 10, 20, 30, 5, time.UTC)
	c := Change{
		Kind: Changed, Path: "/tmp/bad\xffname",
		Meta: &Metadata{Type: TypeFile, Mode: 0o4755, Size: 3, Nlink: 1, Mtime: mtime, Atime: mtime, Ctime: mtime,
			Xattrs: map[string][]byte{"security.capability": {1, 2}}},
		Base:   &Metadata{Type: TypeFile, Mode: 0o755, Size: 3, Nlink: 1, Mtime: mtime},
		Digest: "sha256:aa", BaseDigest: "sha256:aa",
		Fields: []Field{FieldMode},
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"kind": "C", "path": `/tmp/bad\xffname`, "path_base64": base64.StdEncoding.EncodeToString([]byte("/tmp/bad\xffname")),
		"type": "file", "mode": "4755", "mtime": "2024-02-03T10:20:30.000000005Z", "digest": "sha256:aa",
		"base_digest": "sha256:aa", "content_changed": false, "link_target": nil, "runtime": false,
		"xattrs": map[string]any{"security.capability": "AQI="},
	}
	for k, v := range want {
		if gv, ok := got[k]; !ok || !equalJSON(gv, v) {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	if base, ok := got["base"].(map[string]any); !ok || base["mode"] != "0755" {
		t.Errorf("base = %#v", got["base"])
	}
	for _, k := range []string{"lost_with", "copy_up_only", "source", "mount"} {
		if _, ok := got[k]; ok {
			t.Errorf("%s present on an ordinary change", k)
		}
	}
}

// TestChangeJSONOnlyInJSON checks the marks of the changes the table leaves out.
func TestChangeJSONOnlyInJSON(t *testing.T) {
	md := &Metadata{Type: TypeFile, Mode: 0o644, Nlink: 1}
	tests := []struct {
		c       Change
		key     string
		want    any
		inTable bool
	}{
		{Change{Kind: Deleted, Path: "/d/f", Meta: md, LostWith: "/d\nx"}, "lost_with", `/d\nx`, false},
		{Change{Kind: Changed, Path: "/f", Meta: md, Base: md, CopyUpOnly: true}, "copy_up_only", true, false},
		{Change{Kind: Deleted, Path: "/d", Meta: md}, "lost_with", nil, true},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.c)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got[tt.key] != tt.want {
			t.Errorf("%s: %s = %#v, want %#v", tt.c.Path, tt.key, got[tt.key], tt.want)
		}
		if tt.c.InTable() != tt.inTable {
			t.Errorf("%s: in table %v, want %v", tt.c.Path, tt.c.InTable(), tt.inTable)
		}
	}
}

func equalJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestLsMode(t *testing.T) {
	tests := []struct {
		t    FileType
		mode uint32
		want string
	}{
		{TypeFile, 0o644, "-rw-r--r--"},
		{TypeFile, 0o4755, "-rwsr-xr-x"},
		{TypeFile, 0o2644, "-rw-r-Sr--"},
		{TypeDir, 0o1777, "drwxrwxrwt"},
		{TypeSymlink, 0o777, "lrwxrwxrwx"},
		{TypeChar, 0o600, "crw-------"},
	}
	for _, tt := range tests {
		if got := LsMode(tt.t, tt.mode); got != tt.want {
			t.Errorf("LsMode(%s, %o) = %s, want %s", tt.t, tt.mode, got, tt.want)
		}
	}
}

func TestNotHashedJSON(t *testing.T) {
	tests := []struct {
		n    *NotHashed
		want string
	}{
		{NewTooLarge(10, 4), `"size 10 exceeds the size limit 4"`},
		{NewGrewTooLarge(4).OfImage(), `"image version: grew beyond the size limit 4 while it was read"`},
		{NewOpenFailed(errors.New("no such file")), `"open failed: no such file"`},
		{NewReadFailed(3, errors.New("EIO")), `"read failed after 3 bytes: EIO"`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.n)
		if err != nil || string(b) != tt.want {
			t.Errorf("%+v: %s, %v; want %s", tt.n, b, err, tt.want)
		}
		if tt.n.TooLarge() != (tt.n.Why == TooLarge || tt.n.Why == GrewTooLarge) {
			t.Errorf("%+v: TooLarge() = %v", tt.n, tt.n.TooLarge())
		}
	}
	c := Change{Kind: Added, Path: "/f", Meta: &Metadata{Type: TypeFile}, NotHashed: NewTooLarge(10, 4)}
	b, _ := json.Marshal(c)
	if !strings.Contains(string(b), `"not_hashed":"size 10 exceeds the size limit 4"`) {
		t.Errorf("change JSON: %s", b)
	}
	c.NotHashed = nil
	if b, _ := json.Marshal(c); strings.Contains(string(b), "not_hashed") {
		t.Errorf("hashed change JSON: %s", b)
	}
}

// TestChangeJSONSource checks the source and mount of changes found outside
// the snapshot, and that a mounted file is not said to differ from the
// image it was not compared with.
func TestChangeJSONSource(t *testing.T) {
	md := &Metadata{Type: TypeFile, Mode: 0o644, Nlink: 1}
	tests := []struct {
		c                     Change
		source, mount         any
		contentChanged, known bool
	}{
		{Change{Kind: Added, Path: "/dev/shm/x", Meta: md, Source: SourceTmpfs, Mount: "/dev/shm"}, "tmpfs", "/dev/shm", true, true},
		{Change{Kind: Changed, Path: "/etc/hosts", Meta: md, Source: SourceBind, Mount: "/etc/hosts"}, "bind", "/etc/hosts", false, false},
		{Change{Kind: Added, Path: "/data/a\nb", Meta: md, Source: SourceVolume, Mount: "/data"}, "volume", "/data", true, true},
		{Change{Kind: Changed, Path: "/f", Meta: md, Base: md, Fields: []Field{FieldContent}}, nil, nil, true, true},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.c)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got["source"] != tt.source || got["mount"] != tt.mount {
			t.Errorf("%s: source %v mount %v, want %v %v", tt.c.Path, got["source"], got["mount"], tt.source, tt.mount)
		}
		if changed, known := tt.c.ContentChanged(); changed != tt.contentChanged || known != tt.known {
			t.Errorf("%s: ContentChanged() = %v, %v, want %v, %v", tt.c.Path, changed, known, tt.contentChanged, tt.known)
		}
	}
}
