package audit

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ctrforensics/ctrforensics/forensic/finding"
	"github.com/ctrforensics/ctrforensics/internal/schemacheck"
)

// hardened is a spec no rule reports: what a careful runtime gives.
func hardened() *specs.Spec {
	caps := append([]string(nil), DefaultCapabilities...)
	return &specs.Spec{
		Root: &specs.Root{Path: "rootfs", Readonly: true},
		Process: &specs.Process{User: specs.User{UID: 1000}, NoNewPrivileges: true, ApparmorProfile: "docker-default",
			Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/etc/hosts", Type: "bind", Source: "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/x/hosts", Options: []string{"rbind", "rw"}},
			{Destination: "/data", Type: "bind", Source: "/srv/data", Options: []string{"rbind", "ro"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}},
			Seccomp:       &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}},
			MaskedPaths:   append([]string(nil), defaultMasked...),
			ReadonlyPaths: append([]string(nil), defaultReadonly...),
			Sysctl:        map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"},
			Resources:     &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}, {Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"}}},
		},
	}
}

func i64(v int64) *int64 { return &v }

func withoutNS(t specs.LinuxNamespaceType) func(*specs.Spec) {
	return func(s *specs.Spec) {
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t })
	}
}

func addMount(m specs.Mount) func(*specs.Spec) {
	return func(s *specs.Spec) { s.Mounts = append(s.Mounts, m) }
}

func TestRules(t *testing.T) {
	allCaps := append([]string(nil), allCapabilities...)
	cases := []struct {
		name   string
		change func(*specs.Spec)
		want   []string // rule:severity
	}{
		{"hardened", func(*specs.Spec) {}, nil},
		{"writable rootfs", func(s *specs.Spec) { s.Root.Readonly = false }, []string{"CTRF-RT-001:medium"}},
		{"no root", func(s *specs.Spec) { s.Root = nil }, []string{"CTRF-RT-001:medium"}},
		{"privileged", func(s *specs.Spec) {
			s.Process.Capabilities.Bounding = allCaps
			s.Linux.Seccomp = nil
			s.Mounts[1].Options = []string{"nosuid", "rw"}
			s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
			s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
			s.Process.ApparmorProfile = ""
		}, []string{"CTRF-RT-002:high", "CTRF-RT-011:medium", "CTRF-RT-012:low", "CTRF-RT-015:medium", "CTRF-RT-016:medium", "CTRF-RT-018:high", "CTRF-RT-019:high"}},
		{"privileged on a host without CAP_SYS_RESOURCE", func(s *specs.Spec) {
			s.Process.Capabilities.Bounding = slices.DeleteFunc(slices.Clone(allCaps), func(c string) bool { return c == "CAP_SYS_RESOURCE" })
		}, []string{"CTRF-RT-002:high"}},
		{"cap-add SYS_ADMIN", func(s *specs.Spec) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
		}, []string{"CTRF-RT-003:high"}},
		{"cap-add without prefix, lower case", func(s *specs.Spec) {
			s.Process.Capabilities.Ambient = []string{"net_admin", "SYS_NICE"}
		}, []string{"CTRF-RT-003:high", "CTRF-RT-003:medium"}},
		{"host pid", withoutNS(specs.PIDNamespace), []string{"CTRF-RT-004:high"}},
		{"host pid by path", func(s *specs.Spec) { s.Linux.Namespaces[0].Path = "/proc/1/ns/pid" }, []string{"CTRF-RT-004:high"}},
		{"host network", withoutNS(specs.NetworkNamespace), []string{"CTRF-RT-005:medium"}},
		{"host ipc", withoutNS(specs.IPCNamespace), []string{"CTRF-RT-006:medium"}},
		{"host uts", withoutNS(specs.UTSNamespace), []string{"CTRF-RT-007:low"}},
		{"writable host bind", addMount(specs.Mount{Destination: "/cache", Type: "bind", Source: "/srv/cache", Options: []string{"rbind"}}),
			[]string{"CTRF-RT-008:medium"}},
		{"writable bind in options", addMount(specs.Mount{Destination: "/cache", Type: "none", Source: "/srv/cache", Options: []string{"bind", "rw"}}),
			[]string{"CTRF-RT-008:medium"}},
		{"kubelet volume", addMount(specs.Mount{Destination: "/cache", Type: "bind", Source: "/var/lib/kubelet/pods/u/volumes/kubernetes.io~empty-dir/c", Options: []string{"rbind"}}), nil},
		{"containerd socket writable", addMount(specs.Mount{Destination: "/run/containerd/containerd.sock", Type: "bind", Source: "/run/containerd/containerd.sock", Options: []string{"rbind", "rw"}}),
			[]string{"CTRF-RT-009:high"}},
		{"docker socket read-only", addMount(specs.Mount{Destination: "/var/run/docker.sock", Type: "bind", Source: "/var/run/docker.sock", Options: []string{"rbind", "ro"}}),
			[]string{"CTRF-RT-009:high"}},
		{"containerd directory", addMount(specs.Mount{Destination: "/host-run", Type: "bind", Source: "/run/containerd", Options: []string{"rbind"}}),
			[]string{"CTRF-RT-009:high"}},
		{"host root writable", addMount(specs.Mount{Destination: "/host", Type: "bind", Source: "/", Options: []string{"rbind"}}),
			[]string{"CTRF-RT-010:high", "CTRF-RT-008:medium"}},
		{"host etc read-only", addMount(specs.Mount{Destination: "/host-etc", Type: "bind", Source: "/etc/", Options: []string{"rbind", "ro"}}),
			[]string{"CTRF-RT-010:medium"}},
		{"var run", addMount(specs.Mount{Destination: "/r", Type: "bind", Source: "/var/run", Options: []string{"rbind", "ro"}}),
			[]string{"CTRF-RT-010:medium"}},
		{"no seccomp", func(s *specs.Spec) { s.Linux.Seccomp = nil }, []string{"CTRF-RT-011:medium"}},
		{"seccomp allowing all", func(s *specs.Spec) { s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow} }, []string{"CTRF-RT-011:medium"}},
		{"no lsm", func(s *specs.Spec) { s.Process.ApparmorProfile = "unconfined" }, []string{"CTRF-RT-012:low"}},
		{"selinux label only", func(s *specs.Spec) {
			s.Process.ApparmorProfile, s.Process.SelinuxLabel = "", "system_u:system_r:container_t:s0"
		}, nil},
		{"new privileges", func(s *specs.Spec) { s.Process.NoNewPrivileges = false }, []string{"CTRF-RT-013:low"}},
		{"root", func(s *specs.Spec) { s.Process.User.UID = 0 }, []string{"CTRF-RT-014:low"}},
		{"root mapped away", func(s *specs.Spec) {
			s.Process.User.UID = 0
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		}, nil},
		{"masked removed", func(s *specs.Spec) { s.Linux.MaskedPaths = s.Linux.MaskedPaths[1:] }, []string{"CTRF-RT-015:medium"}},
		{"readonly removed", func(s *specs.Spec) { s.Linux.ReadonlyPaths = nil }, []string{"CTRF-RT-016:medium"}},
		{"unsafe sysctl", func(s *specs.Spec) { s.Linux.Sysctl["kernel.core_pattern"] = "|/tmp/x" }, []string{"CTRF-RT-017:medium"}},
		{"slash sysctl safe", func(s *specs.Spec) { s.Linux.Sysctl["net/ipv4/tcp_syncookies"] = "1" }, nil},
		{"writable sys", func(s *specs.Spec) { s.Mounts[1].Options = []string{"nosuid"} }, []string{"CTRF-RT-018:high"}},
		{"all devices", func(s *specs.Spec) {
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: "a", Access: "rwm"})
		}, []string{"CTRF-RT-019:high"}},
		{"all devices then denied", func(s *specs.Spec) {
			s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}, {Allow: false, Access: "rwm"}}
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := hardened()
			tc.change(s)
			var got []string
			for _, f := range Check(s) {
				got = append(got, f.Rule+":"+f.Severity.String())
				if f.Reason == "" || f.Where == "" || f.Title == "" || strings.ContainsAny(f.Reason, "\n") {
					t.Errorf("finding %+v lacks text", f)
				}
			}
			slices.Sort(got)
			want := append([]string(nil), tc.want...)
			slices.Sort(want)
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestCatalog(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Rules() {
		if seen[r.ID] || !strings.HasPrefix(r.ID, "CTRF-RT-") || r.Title == "" || r.Help == "" || r.Severity < finding.Low || r.Severity > finding.High {
			t.Errorf("bad rule %+v", r)
		}
		seen[r.ID] = true
	}
	if Check(nil) != nil {
		t.Error("a nil spec has findings")
	}
	if !slices.IsSortedFunc(Rules(), func(a, b finding.Rule) int { return strings.Compare(a.ID, b.ID) }) {
		t.Error("the catalog is not in ID order")
	}
}

func TestSARIF(t *testing.T) {
	s := hardened()
	s.Root.Readonly = false
	reports := []Report{{Namespace: "k8s.io", ID: "abc", Pod: "shop/web/php", Findings: Check(s)}}
	var b strings.Builder
	if err := WriteSARIF(&b, "v1", reports); err != nil {
		t.Fatal(err)
	}
	schemacheck.ValidateSARIF(t, []byte(b.String()))
	var log struct {
		Version string
		Runs    []struct {
			Tool struct {
				Driver struct{ Rules []struct{ ID string } }
			}
			Results []struct {
				RuleID    string
				RuleIndex int
				Level     string
				Locations []struct {
					PhysicalLocation struct{ ArtifactLocation struct{ URI string } }
					LogicalLocations []struct{ Name, FullyQualifiedName string }
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(b.String()), &log); err != nil {
		t.Fatal(err)
	}
	run := log.Runs[0]
	if log.Version != "2.1.0" || len(run.Tool.Driver.Rules) != len(Rules()) || len(run.Results) != 1 {
		t.Fatalf("log: %s", b.String())
	}
	r := run.Results[0]
	loc := r.Locations[0]
	if r.RuleID != RuleWritableRootfs || run.Tool.Driver.Rules[r.RuleIndex].ID != r.RuleID || r.Level != "warning" ||
		loc.LogicalLocations[0].Name != "container/abc/spec" || loc.LogicalLocations[0].FullyQualifiedName != "k8s.io/container/abc/spec#root" ||
		loc.PhysicalLocation.ArtifactLocation.URI != "container/abc" {
		t.Errorf("result: %+v", r)
	}
}
