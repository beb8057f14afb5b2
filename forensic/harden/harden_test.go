package harden

import (
	"strconv"
	"strings"
	"testing"

	"github.com/ctrforensics/ctrforensics/forensic"
)

func file(kind forensic.Kind, p string, size int64, mode uint32) forensic.Change {
	c := forensic.Change{Kind: kind, Path: p, Meta: &forensic.Metadata{Type: forensic.TypeFile, Size: size, Mode: mode}}
	if kind == forensic.Changed {
		c.Fields = []forensic.Field{forensic.FieldContent}
	}
	return c
}

func dir(kind forensic.Kind, p string) forensic.Change {
	return forensic.Change{Kind: kind, Path: p, Meta: &forensic.Metadata{Type: forensic.TypeDir, Mode: 0o755}}
}

// article is the harden test workload plus the article's attack.
func article() []forensic.Change {
	return []forensic.Change{
		dir(forensic.Added, "/run"), dir(forensic.Added, "/run/app"), file(forensic.Added, "/run/app/app.pid", 3, 0o644),
		dir(forensic.Changed, "/var"), dir(forensic.Added, "/var/lock"), dir(forensic.Added, "/var/lock/app"),
		file(forensic.Added, "/var/lock/app/app.lock", 0, 0o644),
		dir(forensic.Changed, "/var/www"), dir(forensic.Changed, "/var/www/html"),
		file(forensic.Changed, "/var/www/html/index.html", 21, 0o644), file(forensic.Added, "/var/www/html/shell.php", 29, 0o644),
	}
}

func TestDerive(t *testing.T) {
	cases := []struct {
		name     string
		changes  []forensic.Change
		writable string // path:class:bytes:files ...
		drift    string // paths
	}{
		{"article", article(), "/run/app:temporary:3:1 /var/lock/app:temporary:0:1", "/var/www/html/index.html /var/www/html/shell.php"},
		{"tmp and a dropped binary", []forensic.Change{file(forensic.Added, "/tmp/sess_1", 100, 0o600), file(forensic.Added, "/tmp/.x/miner", 5000, 0o755)},
			"/tmp:temporary:100:1", "/tmp/.x/miner"},
		{"state under /var/lib, nested", []forensic.Change{file(forensic.Added, "/var/lib/mysql/db/t.ibd", 4096, 0o640),
			file(forensic.Added, "/var/lib/mysql/ib_logfile0", 1000, 0o640)}, "/var/lib/mysql:state:5096:2", ""},
		{"logs", []forensic.Change{file(forensic.Added, "/var/log/nginx/access.log", 10, 0o644), file(forensic.Added, "/app/out.log", 1, 0o644)},
			"/app:logs:1:1 /var/log/nginx:logs:10:1", ""},
		{"data dir and a sibling with a dash", []forensic.Change{file(forensic.Added, "/data/a", 1, 0o644), file(forensic.Added, "/data-x/b", 1, 0o644),
			file(forensic.Added, "/data/sub/c", 1, 0o644)}, "/data:state:2:2 /data-x:state:1:1", ""},
		{"etc and usr are drift", []forensic.Change{file(forensic.Added, "/etc/cron.d/x", 10, 0o644), file(forensic.Added, "/usr/share/y", 1, 0o644)},
			"", "/etc/cron.d/x /usr/share/y"},
		{"deleted and touched image files", []forensic.Change{{Kind: forensic.Deleted, Path: "/opt/app/a", Meta: &forensic.Metadata{Type: forensic.TypeFile}},
			{Kind: forensic.Changed, Path: "/opt/app/b", Meta: &forensic.Metadata{Type: forensic.TypeFile}, Fields: []forensic.Field{forensic.FieldMtime}}},
			"", "/opt/app/a /opt/app/b"},
		{"runtime and lost entries ignored", []forensic.Change{{Kind: forensic.Added, Path: "/etc/resolv.conf", Runtime: true, Meta: &forensic.Metadata{Type: forensic.TypeFile}},
			{Kind: forensic.Deleted, Path: "/opt/d/x", LostWith: "/opt/d", Meta: &forensic.Metadata{Type: forensic.TypeFile}}}, "", ""},
		{"empty new directory", []forensic.Change{dir(forensic.Added, "/srv"), dir(forensic.Added, "/srv/uploads")}, "/srv/uploads:state:0:0", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := Derive(tc.changes, nil)
			var w, d []string
			for _, x := range p.Writable {
				w = append(w, strings.Join([]string{x.Path, string(x.Class), itoa(x.Bytes), itoa(int64(x.Files))}, ":"))
			}
			for _, x := range p.Drift {
				d = append(d, x.Path)
			}
			if strings.Join(w, " ") != tc.writable || strings.Join(d, " ") != tc.drift {
				t.Errorf("writable %v drift %v, want %q and %q", w, d, tc.writable, tc.drift)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestOutputs(t *testing.T) {
	p := Derive(append(article(), file(forensic.Added, "/var/lib/app/db", 3<<20, 0o644)), nil)
	flags := strings.Join(RunFlags(p, "web-"), " ")
	want := "--read-only --tmpfs /run/app:rw,noexec,nosuid,nodev,size=1m --mount type=volume,src=web-var-lib-app,dst=/var/lib/app --tmpfs /var/lock/app:rw,noexec,nosuid,nodev,size=1m"
	if flags != want {
		t.Errorf("flags:\n%s\nwant\n%s", flags, want)
	}
	k := KubernetesPatch(p, "php")
	for _, s := range []string{"readOnlyRootFilesystem: true", `mountPath: "/run/app"`, `name: "var-lock-app"`, "medium: Memory", "sizeLimit: 6Mi", "persistentVolumeClaim"} {
		if !strings.Contains(k, s) {
			t.Errorf("patch lacks %q:\n%s", s, k)
		}
	}
	if got := ShellQuote("/a b/'c'"); got != `'/a b/'\''c'\'''` {
		t.Errorf("quote: %s", got)
	}
}
