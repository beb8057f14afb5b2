package integration

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ctrforensics/ctrforensics/internal/testdaemon"
)

// workload is a small service that, like the article's apache, writes a pid
// file under /run/app and a lock under /var/lock/app when it starts.
const workload = `mkdir -p /run/app /var/lock/app && echo $$ > /run/app/app.pid && touch /var/lock/app/app.lock && exec sleep 100000`

// TestHardenReadOnlyRerun derives the read-only profile of the attacked
// workload, then runs the image read-only with exactly the proposed mounts:
// the workload starts, and the attacker's defacement fails.
func TestHardenReadOnlyRerun(t *testing.T) {
	ctx := h.ctx(t)
	// As docker run makes it: no tmpfs on /run (containerd's default spec has one).
	c := runWithSpec(t, "harden-web", oci.WithoutMounts("/run"), oci.WithProcessArgs("/bin/sh", "-c", workload))
	waitFor(timeout(20*time.Second), func() bool {
		_, _, err := testdaemon.Exec(ctx, c.task, "test -e /var/lock/app/app.lock")
		return err == nil
	})
	h.attack(t, c, articleAttack)
	upper := h.upperDir(t, c)
	before, host := captureTree(t, upper), captureHost(t)

	r := h.cli(t, "harden", "--format", "json", c.id)
	if r.code != 0 {
		t.Fatalf("harden: exit %d: %s", r.code, r.stderr)
	}
	var prof struct {
		Writable []struct {
			Path, Class string
			Bytes       int64
			SizeLimit   int64 `json:"size_limit"`
		}
		Drift    []struct{ Kind, Path, Reason string }
		RunFlags []string `json:"run_flags"`
		Warnings []string
	}
	if err := json.Unmarshal([]byte(r.stdout), &prof); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	var writable, drift []string
	for _, w := range prof.Writable {
		writable = append(writable, w.Path+":"+w.Class)
	}
	for _, d := range prof.Drift {
		drift = append(drift, d.Kind+" "+d.Path)
	}
	if got := strings.Join(writable, " "); got != "/run/app:temporary /var/lock/app:temporary" {
		t.Errorf("writable %s, want exactly /run/app and /var/lock/app", got)
	}
	if got := strings.Join(drift, ", "); got != "D /etc/app/config.ini, C /var/www/html/index.html, A /var/www/html/shell.php" {
		t.Errorf("drift: %s", got)
	}
	if len(prof.Warnings) == 0 || !strings.Contains(prof.Warnings[0], "has run for only") {
		t.Errorf("no warning about the short run: %v", prof.Warnings)
	}
	compareTrees(t, "upper", before, captureTree(t, upper))
	compareHost(t, "after harden", host, captureHost(t))

	table := h.mustCLI(t, "harden", c.id)
	for _, want := range []string{"/run/app", "tmpfs", "shell.php", "new file in a web root", "--read-only --tmpfs /run/app:rw,noexec,nosuid,nodev,size=1m"} {
		if !strings.Contains(table, want) {
			t.Errorf("harden table lacks %q:\n%s", want, table)
		}
	}
	if k := h.mustCLI(t, "harden", "--format", "kubernetes", c.id); !strings.Contains(k, "readOnlyRootFilesystem: true") || !strings.Contains(k, `mountPath: "/var/lock/app"`) {
		t.Errorf("kubernetes patch:\n%s", k)
	}

	// The rerun: read-only, and exactly the proposed mounts.
	var mounts []specs.Mount
	for _, w := range prof.Writable {
		mounts = append(mounts, specs.Mount{Destination: w.Path, Type: "tmpfs", Source: "tmpfs",
			Options: []string{"rw", "noexec", "nosuid", "nodev", "size=" + strconv.FormatInt(w.SizeLimit, 10)}})
	}
	rerun := runWithSpec(t, "harden-rerun", oci.WithoutMounts("/run"), oci.WithRootFSReadonly(), oci.WithMounts(mounts), oci.WithProcessArgs("/bin/sh", "-c", workload))
	if !waitFor(timeout(20*time.Second), func() bool {
		_, _, err := testdaemon.Exec(ctx, rerun.task, "test -s /run/app/app.pid")
		return err == nil
	}) {
		t.Fatal("the workload did not write its pid file in the read-only container")
	}
	_, stderr, err := testdaemon.Exec(ctx, rerun.task, "echo '<h1>hacked by x</h1>' > /var/www/html/index.html")
	if err == nil || !strings.Contains(stderr, "Read-only file system") {
		t.Errorf("the defacement in the read-only container: %v, %q", err, stderr)
	}

	// Without the mounts, the workload cannot start.
	bare := runWithSpec(t, "harden-bare", oci.WithoutMounts("/run"), oci.WithRootFSReadonly(), oci.WithProcessArgs("/bin/sh", "-c", workload))
	st, err := bare.task.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-st:
		if s.ExitCode() == 0 {
			t.Error("the workload ran read-only without the proposed mounts: the test proves nothing")
		}
	case <-time.After(20 * time.Second):
		t.Error("the workload kept running read-only without the proposed mounts")
	}
}

// timeout returns a channel closed after d.
func timeout(d time.Duration) <-chan struct{} {
	c := make(chan struct{})
	time.AfterFunc(d, func() { close(c) })
	return c
}
