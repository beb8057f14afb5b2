package integration

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/containerd/v2/plugins"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ctrforensics/ctrforensics/internal/schemacheck"
	"github.com/ctrforensics/ctrforensics/internal/testdaemon"
)

// runWithSpec creates and starts a container of the web image with the
// given spec options on top of the image config, removed at the end.
func runWithSpec(t *testing.T, id string, opts ...oci.SpecOpts) *container {
	t.Helper()
	ctx := h.ctx(t)
	img := h.images["overlayfs"]
	opts = append([]oci.SpecOpts{oci.WithImageConfig(img), oci.WithProcessArgs("/bin/sh", "-c", "sleep 100000")}, opts...)
	ctr, err := h.client.NewContainer(ctx, id, client.WithImage(img), client.WithSnapshotter("overlayfs"),
		client.WithNewSnapshot(id, img), client.WithRuntime(plugins.RuntimeRuncV2, nil), client.WithNewSpec(opts...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := testdaemon.RemoveContainer(context.WithoutCancel(ctx), ctr); err != nil {
			t.Errorf("remove %s: %v", id, err)
		}
	})
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	return &container{id: id, snapshotter: "overlayfs", ctr: ctr, task: task}
}

// dockerDefaults is what docker run gives beyond containerd's defaults
// (which set no_new_privileges): the default seccomp profile.
var dockerDefaults = []oci.SpecOpts{seccomp.WithDefaultProfile()}

// TestAudit runs containers the way `docker run` flags make them and checks
// that each rule reports its case and not the default container.
func TestAudit(t *testing.T) {
	cases := map[string][]oci.SpecOpts{
		"audit-default":    dockerDefaults,
		"audit-privileged": {oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices, oci.WithNewPrivileges},
		"audit-cap-admin":  append([]oci.SpecOpts{oci.WithAddedCapabilities([]string{"CAP_SYS_ADMIN"})}, dockerDefaults...),
		"audit-host-ns": append([]oci.SpecOpts{oci.WithHostNamespace(specs.NetworkNamespace), oci.WithHostNamespace(specs.PIDNamespace)},
			dockerDefaults...),
		"audit-socket": append([]oci.SpecOpts{oci.WithMounts([]specs.Mount{{Destination: "/run/containerd/containerd.sock",
			Type: "bind", Source: h.daemon.Address, Options: []string{"rbind", "rw"}}})}, dockerDefaults...),
		"audit-readonly": append([]oci.SpecOpts{oci.WithRootFSReadonly()}, dockerDefaults...),
	}
	for id, opts := range cases {
		runWithSpec(t, id, opts...)
	}
	want := map[string][]string{ // rule -> the containers it reports
		"CTRF-RT-001": {"audit-cap-admin", "audit-default", "audit-host-ns", "audit-privileged", "audit-socket"},
		"CTRF-RT-002": {"audit-privileged"},
		"CTRF-RT-003": {"audit-cap-admin"},
		"CTRF-RT-004": {"audit-host-ns"},
		"CTRF-RT-005": {"audit-host-ns"},
		"CTRF-RT-008": {"audit-socket"},
		"CTRF-RT-009": {"audit-socket"},
		"CTRF-RT-010": nil,
		"CTRF-RT-011": {"audit-privileged"},
		"CTRF-RT-013": {"audit-privileged"},
		"CTRF-RT-015": {"audit-privileged"},
		"CTRF-RT-016": {"audit-privileged"},
		"CTRF-RT-018": {"audit-privileged"},
		"CTRF-RT-019": {"audit-privileged"},
	}
	host := captureHost(t)
	out := h.mustCLI(t, "audit", "--format", "json")
	compareHost(t, "after audit", host, captureHost(t)) // no lease, view, mount or record
	got := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var row struct{ Container, Rule, Severity, Where, Reason string }
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if !strings.HasPrefix(row.Container, "audit-") {
			continue // other tests' containers
		}
		if !slices.Contains(got[row.Rule], row.Container) {
			got[row.Rule] = append(got[row.Rule], row.Container)
		}
		if row.Rule == "CTRF-RT-003" && (row.Reason != "capability CAP_SYS_ADMIN added beyond the runtime's default set" || row.Severity != "high") {
			t.Errorf("cap-add finding: %+v", row)
		}
	}
	for rule, containers := range want {
		sort.Strings(got[rule])
		if strings.Join(got[rule], " ") != strings.Join(containers, " ") {
			t.Errorf("%s reports %v, want %v", rule, got[rule], containers)
		}
	}

	table := h.mustCLI(t, "audit", "audit-socket", "audit-readonly")
	for _, want := range []string{"HIGH", "CTRF-RT-009", "container runtime socket " + h.daemon.Address + " mounted at /run/containerd/containerd.sock",
		"2 container(s) audited"} {
		if !strings.Contains(table, want) {
			t.Errorf("audit table lacks %q:\n%s", want, table)
		}
	}
	if r := h.cli(t, "audit", "--fail-on", "high", "audit-privileged"); r.code != 1 {
		t.Errorf("--fail-on high on a privileged container: exit %d: %s", r.code, r.stderr)
	}
	if r := h.cli(t, "audit", "--fail-on", "medium", "audit-readonly"); r.code != 0 {
		t.Errorf("--fail-on medium on the read-only default container: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	checkAuditSARIF(t, h.mustCLI(t, "audit", "--format", "sarif", "audit-privileged"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"audit", "--fail-on", "critical"}, "unknown severity"},
		{[]string{"audit", "--format", "xml"}, "--format"},
		{[]string{"audit", "-A", "audit-default"}, "not both"},
		{[]string{"audit", "no-such-container"}, "ls -A"},
	} {
		if r := h.cli(t, tc.args...); r.code != 2 || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: exit %d: %q", tc.args, r.code, r.stderr)
		}
	}
}

func checkAuditSARIF(t *testing.T, out string) {
	t.Helper()
	var log struct {
		Schema  string `json:"$schema"`
		Version string
		Runs    []struct {
			Results []struct {
				RuleID    string
				Locations []struct {
					LogicalLocations []struct{ Name string }
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &log); err != nil {
		t.Fatal(err)
	}
	schemacheck.ValidateSARIF(t, []byte(out))
	if log.Version != "2.1.0" || !strings.Contains(log.Schema, "sarif-schema-2.1.0") || len(log.Runs) != 1 || len(log.Runs[0].Results) == 0 {
		t.Fatalf("SARIF: %s", out)
	}
	for _, r := range log.Runs[0].Results {
		if n := r.Locations[0].LogicalLocations[0].Name; n != "container/audit-privileged/spec" {
			t.Errorf("%s at %s", r.RuleID, n)
		}
	}
}

// TestAuditCRI audits pods created through the CRI API: containers are named
// by pod, sandboxes are left out unless asked.
func TestAuditCRI(t *testing.T) {
	ch := startCRI(t)
	pods := func(args ...string) []string {
		out := ch.mustCLI(t, append([]string{"audit", "--format", "json"}, args...)...)
		var names []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var row struct{ Pod, Container string }
			if err := json.Unmarshal([]byte(line), &row); err != nil {
				t.Fatalf("%v: %s", err, line)
			}
			if !slices.Contains(names, row.Pod) {
				names = append(names, row.Pod)
			}
		}
		sort.Strings(names)
		return names
	}
	want := "kube-system/kube-proxy-x/kube-proxy shop/web-1/php shop/web-1/sidecar"
	if got := strings.Join(pods(), " "); got != want {
		t.Errorf("audit names %s, want %s (no sandbox)", got, want)
	}
	want = "kube-system/kube-proxy-x/(sandbox) kube-system/kube-proxy-x/kube-proxy shop/web-1/(sandbox) shop/web-1/php shop/web-1/sidecar"
	if got := strings.Join(pods("--include-sandboxes"), " "); got != want {
		t.Errorf("audit --include-sandboxes names %s, want %s", got, want)
	}
	if table := ch.mustCLI(t, "audit"); !strings.Contains(table, "shop/web-1/php") || !strings.Contains(table, "2 pod sandbox(es) left out") {
		t.Errorf("audit table:\n%s", table)
	}
}
