package integration

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/ctrforensics/ctrforensics/internal/testdaemon"
)

// TestOfflineCommitAuditHarden runs audit, commit and harden on the test
// daemon's root as a disk root: audit gives the very findings it gives live,
// commit the very layout, harden the same profile with a warning that the
// task's age is unknown; commit refuses --import and --pause in one line;
// nothing under the root changes.
func TestOfflineCommitAuditHarden(t *testing.T) {
	ctx := h.ctx(t)
	priv := runWithSpec(t, "offart-priv", oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices, oci.WithNewPrivileges)
	web := runWithSpec(t, "offart-web", oci.WithoutMounts("/run"), oci.WithProcessArgs("/bin/sh", "-c", workload))
	waitFor(timeout(20*time.Second), func() bool {
		_, _, err := testdaemon.Exec(ctx, web.task, "test -e /var/lock/app/app.lock")
		return err == nil
	})
	h.attack(t, web, articleAttack)
	out := t.TempDir()
	commit := func(name string) []string {
		return []string{"commit", "--format", "json", "--created", "2026-11-29T06:00:00Z", "--examiner", "alice",
			"-o", filepath.Join(out, name), web.id}
	}
	auditArgs := []string{"audit", "--format", "json", priv.id, web.id}
	live := map[string]string{"audit": h.mustCLI(t, auditArgs...), "commit": h.mustCLI(t, commit("live.tar")...),
		"harden": h.mustCLI(t, "harden", "--format", "json", web.id)}
	if !strings.Contains(live["audit"], "CTRF-RT-002") {
		t.Fatalf("live audit of a privileged container found no CTRF-RT-002:\n%s", live["audit"])
	}
	settle(t)

	root := readOnlyRoot(t, filepath.Join(t.TempDir(), "evidence"))
	before := captureTree(t, root)
	if got := mustOffline(t, root, auditArgs...); got != live["audit"] {
		t.Errorf("audit --root:\n%s\nlive:\n%s", got, live["audit"])
	}

	offCommit := mustOffline(t, root, commit("offline.tar")...)
	lc, oc := commitDigests(t, live["commit"]), commitDigests(t, offCommit)
	if lc != oc {
		t.Errorf("commit --root: %+v; live: %+v", oc, lc)
	}
	if a, b := fileSHA(t, filepath.Join(out, "live.tar")), fileSHA(t, filepath.Join(out, "offline.tar")); a != b {
		t.Errorf("commit --root wrote %s, live %s", b, a)
	}

	lh, oh := hardenProfile(t, live["harden"]), hardenProfile(t, mustOffline(t, root, "harden", "--format", "json", web.id))
	if lh.profile() != oh.profile() {
		t.Errorf("harden --root: %s; live: %s", oh.profile(), lh.profile())
	}
	if oh.Status != "unknown (offline)" || len(oh.Warnings) == 0 || !strings.Contains(oh.Warnings[0], "for how long, is unknown") {
		t.Errorf("harden --root: status %q, warnings %q; want the task's age said to be unknown", oh.Status, oh.Warnings)
	}

	for _, tc := range []struct {
		flags []string
		want  []string
	}{
		{[]string{"--import", "localhost/x:1"}, []string{"cannot create an image from a disk root: a disk root is never written", "drop --import"}},
		{[]string{"--pause"}, []string{"cannot pause a task from a disk root: no task runs on a disk root", "drop --pause"}},
	} {
		args := append([]string{"commit", "-o", filepath.Join(out, "refused.tar")}, tc.flags...)
		r := offline(t, root, append(args, web.id)...)
		if r.code != 2 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, tc.want[0]) || !strings.Contains(r.stderr, tc.want[1]) {
			t.Errorf("commit --root %v: exit %d, stderr %q; want exit 2 and one line with %q", tc.flags, r.code, r.stderr, tc.want)
		}
	}
	compareTrees(t, "disk root", before, captureTree(t, root))
}

type committed struct {
	Manifest string `json:"manifest_digest"`
	Config   string `json:"config_digest"`
	Layer    string `json:"layer_digest"`
	Changes  int    `json:"changes"`
}

func commitDigests(t *testing.T, out string) committed {
	t.Helper()
	var c committed
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.Manifest == "" {
		t.Fatalf("commit JSON %q: %v", out, err)
	}
	return c
}

type hardened struct {
	Status   string
	Writable []struct{ Path, Class string }
	Drift    []struct{ Kind, Path string }
	RunFlags []string `json:"run_flags"`
	Warnings []string
}

func hardenProfile(t *testing.T, out string) hardened {
	t.Helper()
	var h hardened
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatalf("harden JSON %q: %v", out, err)
	}
	return h
}

// profile is what harden derived, without what it says about the task.
func (h hardened) profile() string {
	b, _ := json.Marshal([]any{h.Writable, h.Drift, h.RunFlags})
	return string(b)
}
