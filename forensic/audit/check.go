package audit

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/finding"
)

// DefaultCapabilities is the capability set containerd, Docker and the CRI
// plugins give a container by default.
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// dangerousCapabilities lead from the container to the host.
var dangerousCapabilities = []string{
	"CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_PTRACE", "CAP_SYS_RAWIO", "CAP_DAC_READ_SEARCH", "CAP_BPF",
	"CAP_PERFMON", "CAP_SYS_BOOT", "CAP_MAC_ADMIN", "CAP_MAC_OVERRIDE", "CAP_NET_ADMIN",
}

// allCapabilities are the 38 capabilities every kernel since 3.16 knows
// (0 to 37, CAP_CHOWN to CAP_AUDIT_READ): holding (nearly) all of them is
// what privileged mode gives.
var allCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
	"CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
}

// runtimeSockets are the base names of container runtime API sockets.
var runtimeSockets = []string{"containerd.sock", "docker.sock", "crio.sock", "podman.sock", "dockershim.sock", "cri-dockerd.sock"}

// runtimeDirs hold runtime sockets: mounting one mounts the socket.
var runtimeDirs = []string{"/run/containerd", "/var/run/containerd", "/run/docker", "/var/run/docker", "/run/crio", "/var/run/crio", "/run/podman", "/var/run/podman"}

// sensitiveDirs are host directories a container should never see.
var sensitiveDirs = []string{"/", "/etc", "/proc", "/sys", "/dev", "/boot", "/root", "/run", "/var/run",
	"/var/lib/containerd", "/var/lib/docker", "/var/lib/kubelet"}

// managedSources are directories whose bind mounts the runtime or the
// kubelet make themselves (hosts files, pod volumes).
var managedSources = []string{"/var/lib/containerd/", "/run/containerd/", "/var/run/containerd/", "/var/lib/kubelet/pods/",
	"/var/lib/docker/containers/", "/run/k3s/containerd/", "/var/lib/rancher/k3s/agent/containerd/"}

// defaultMasked and defaultReadonly are what runc's, containerd's and
// Docker's default specs mask and make read-only.
var (
	defaultMasked   = []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/sys/firmware"}
	defaultReadonly = []string{"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs"}
)

// safeSysctls are Kubernetes' safe (namespaced, isolated) sysctls.
var safeSysctls = []string{"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_local_reserved_ports",
	"net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_fin_timeout"}

// Check runs every rule over spec. A nil spec gives no findings.
func Check(spec *specs.Spec) []Finding {
	if spec == nil {
		return nil
	}
	var out []Finding
	finding.Run(checks, newSubject(spec), func(r *finding.Rule, h finding.Hit) {
		out = append(out, Finding{Rule: r.ID, Severity: h.Severity, Title: r.Title, Where: h.Where,
			Evidence: forensic.EscapePath(h.Evidence), Reason: forensic.EscapePath(h.Reason)})
	})
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		return a.Where < b.Where
	})
	return out
}

// subject is the spec the checks look at, with what several of them derive
// from it.
type subject struct {
	spec *specs.Spec
	// caps is the union of the process's capability sets, CAP_-prefixed,
	// upper case, sorted.
	caps []string
}

func newSubject(spec *specs.Spec) *subject {
	return &subject{spec: spec, caps: capsOf(spec)}
}

// hit is a finding's text at the rule's severity.
func hit(where, evidence, format string, args ...any) []finding.Hit {
	return []finding.Hit{{Where: where, Evidence: evidence, Reason: fmt.Sprintf(format, args...)}}
}

func writableRootfs(s *subject) []finding.Hit {
	if s.spec.Root != nil && s.spec.Root.Readonly {
		return nil
	}
	return hit("root", "readonly: false", "the root filesystem is writable (root.readonly is false)")
}

// capsOf returns the union of the process's capability sets.
func capsOf(spec *specs.Spec) []string {
	p := spec.Process
	if p == nil || p.Capabilities == nil {
		return nil
	}
	k := p.Capabilities
	var all []string
	for _, set := range [][]string{k.Bounding, k.Effective, k.Permitted, k.Ambient} {
		for _, cp := range set {
			cp = strings.ToUpper(cp)
			if !strings.HasPrefix(cp, "CAP_") {
				cp = "CAP_" + cp
			}
			if !slices.Contains(all, cp) {
				all = append(all, cp)
			}
		}
	}
	sort.Strings(all)
	return all
}

// privilegedMissing is how many of allCapabilities a privileged container
// may lack: --privileged gives the capabilities the runtime itself holds,
// and a runtime confined by its own host (a sandboxed VM, a nested
// container) may lack one or two.
const privilegedMissing = 3

// isPrivileged tells whether the process holds (nearly) every capability,
// CAP_SYS_ADMIN among them: what privileged mode gives.
func (s *subject) isPrivileged() bool {
	held := 0
	for _, want := range allCapabilities {
		if slices.Contains(s.caps, want) {
			held++
		}
	}
	return held >= len(allCapabilities)-privilegedMissing && slices.Contains(s.caps, "CAP_SYS_ADMIN")
}

func privileged(s *subject) []finding.Hit {
	if !s.isPrivileged() {
		return nil
	}
	parts := []string{fmt.Sprintf("%d capabilities", len(s.caps))}
	if s.noSeccomp() {
		parts = append(parts, "no seccomp")
	}
	if s.writableSys() >= 0 {
		parts = append(parts, "writable /sys")
	}
	if s.allDevices() {
		parts = append(parts, "every device allowed")
	}
	return hit("process.capabilities", strings.Join(parts, ", "), "privileged: %s", strings.Join(parts, ", "))
}

// addedCapabilities reports the capabilities beyond the default set, unless
// the container is privileged (which RulePrivileged reports).
func addedCapabilities(s *subject) []finding.Hit {
	if s.isPrivileged() {
		return nil
	}
	var out []finding.Hit
	for _, cp := range s.caps {
		if slices.Contains(DefaultCapabilities, cp) {
			continue
		}
		sev := finding.Medium
		if slices.Contains(dangerousCapabilities, cp) {
			sev = finding.High
		}
		out = append(out, finding.Hit{Severity: sev, Where: "process.capabilities", Evidence: cp,
			Reason: fmt.Sprintf("capability %s added beyond the runtime's default set", cp)})
	}
	return out
}

// hostNamespace returns the check of the namespace typ: none of its own, or
// the host's joined.
func hostNamespace(typ specs.LinuxNamespaceType) func(*subject) []finding.Hit {
	return func(s *subject) []finding.Hit {
		var have []specs.LinuxNamespace
		if s.spec.Linux != nil {
			have = s.spec.Linux.Namespaces
		}
		i := slices.IndexFunc(have, func(n specs.LinuxNamespace) bool { return n.Type == typ })
		switch {
		case i < 0:
			return hit("linux.namespaces", string(typ)+": none", "no %s namespace of its own: the host's is shared", typ)
		case isHostNamespace(have[i].Path):
			return hit(fmt.Sprintf("linux.namespaces[%d]", i), have[i].Path, "joins the host's %s namespace (%s)", typ, have[i].Path)
		}
		return nil
	}
}

// isHostNamespace tells a namespace path of the host's init process.
func isHostNamespace(p string) bool {
	return strings.HasPrefix(p, "/proc/1/ns/")
}

// eachMount collects the hits of fn on every mount, fn given the mount's
// spec field and its cleaned source.
func (s *subject) eachMount(fn func(where, src string, m specs.Mount) []finding.Hit) []finding.Hit {
	var out []finding.Hit
	for i, m := range s.spec.Mounts {
		out = append(out, fn(fmt.Sprintf("mounts[%d]", i), path.Clean(m.Source), m)...)
	}
	return out
}

func runtimeSocketMounts(s *subject) []finding.Hit {
	return s.eachMount(func(where, src string, m specs.Mount) []finding.Hit {
		if !isRuntimeSocket(src) {
			return nil
		}
		return hit(where, m.Source+" -> "+m.Destination, "container runtime socket %s mounted at %s", m.Source, m.Destination)
	})
}

func sensitiveMounts(s *subject) []finding.Hit {
	return s.eachMount(func(where, src string, m specs.Mount) []finding.Hit {
		if !isBind(m) || !path.IsAbs(m.Source) || !sensitive(src) {
			return nil
		}
		sev, mode := finding.High, "writable"
		if slices.Contains(m.Options, "ro") {
			sev, mode = finding.Medium, "read-only"
		}
		return []finding.Hit{{Severity: sev, Where: where, Evidence: m.Source + " -> " + m.Destination,
			Reason: fmt.Sprintf("host %s mounted %s at %s", m.Source, mode, m.Destination)}}
	})
}

func writableBinds(s *subject) []finding.Hit {
	return s.eachMount(func(where, src string, m specs.Mount) []finding.Hit {
		if !isBind(m) || !path.IsAbs(m.Source) || slices.Contains(m.Options, "ro") || managed(src) {
			return nil
		}
		return hit(where, m.Source+" -> "+m.Destination, "host path %s bind-mounted writable at %s", m.Source, m.Destination)
	})
}

func writableSys(s *subject) []finding.Hit {
	i := s.writableSys()
	if i < 0 {
		return nil
	}
	return hit(fmt.Sprintf("mounts[%d]", i), "/sys rw", "sysfs is mounted writable at /sys")
}

func isBind(m specs.Mount) bool {
	return m.Type == "bind" || m.Type == "rbind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

func isRuntimeSocket(src string) bool {
	if slices.Contains(runtimeSockets, path.Base(src)) {
		return true
	}
	return slices.Contains(runtimeDirs, src)
}

func sensitive(src string) bool {
	return slices.Contains(sensitiveDirs, src) || strings.HasPrefix(src, "/proc/") || strings.HasPrefix(src, "/sys/")
}

func managed(src string) bool {
	for _, p := range managedSources {
		if strings.HasPrefix(src+"/", p) {
			return true
		}
	}
	return false
}

// writableSys returns the index of a writable sysfs mount at /sys, or -1.
func (s *subject) writableSys() int {
	for i, m := range s.spec.Mounts {
		if path.Clean(m.Destination) == "/sys" && (m.Type == "sysfs" || isBind(m)) && !slices.Contains(m.Options, "ro") {
			return i
		}
	}
	return -1
}

func (s *subject) noSeccomp() bool {
	l := s.spec.Linux
	if l == nil || l.Seccomp == nil {
		return true
	}
	return l.Seccomp.DefaultAction == specs.ActAllow && len(l.Seccomp.Syscalls) == 0
}

func noSeccomp(s *subject) []finding.Hit {
	if !s.noSeccomp() {
		return nil
	}
	return hit("linux.seccomp", "none", "no seccomp profile: every syscall is allowed")
}

func noLSM(s *subject) []finding.Hit {
	p := s.spec.Process
	if p == nil || !unconfined(p.ApparmorProfile) || !unconfined(p.SelinuxLabel) {
		return nil
	}
	return hit("process.apparmorProfile", orNone(p.ApparmorProfile), "no AppArmor profile and no SELinux label")
}

func newPrivileges(s *subject) []finding.Hit {
	p := s.spec.Process
	if p == nil || p.NoNewPrivileges {
		return nil
	}
	return hit("process.noNewPrivileges", "false", "no_new_privileges is off: setuid binaries can raise privileges")
}

func unconfined(label string) bool { return label == "" || label == "unconfined" }

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func rootUser(s *subject) []finding.Hit {
	p := s.spec.Process
	if p == nil || p.User.UID != 0 || s.rootMappedAway() {
		return nil
	}
	return hit("process.user", "uid 0", "the process runs as uid 0 (root) without a user namespace")
}

// rootMappedAway tells whether a user namespace maps uid 0 to another host uid.
func (s *subject) rootMappedAway() bool {
	l := s.spec.Linux
	if l == nil || !slices.ContainsFunc(l.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UserNamespace }) {
		return false
	}
	for _, m := range l.UIDMappings {
		if m.ContainerID == 0 && m.Size > 0 {
			return m.HostID != 0
		}
	}
	return false
}

func maskedPaths(s *subject) []finding.Hit {
	return missingDefaults(s, "linux.maskedPaths", "not masked", defaultMasked, func(l *specs.Linux) []string { return l.MaskedPaths })
}

func readonlyPaths(s *subject) []finding.Hit {
	return missingDefaults(s, "linux.readonlyPaths", "not read-only", defaultReadonly, func(l *specs.Linux) []string { return l.ReadonlyPaths })
}

// missingDefaults hits when the list of the spec's linux section that field
// names (list reads it) lacks some of the runtimes' defaults: what names
// their state in the reason.
func missingDefaults(s *subject, field, what string, defaults []string, list func(*specs.Linux) []string) []finding.Hit {
	var have []string
	if s.spec.Linux != nil {
		have = list(s.spec.Linux)
	}
	miss := missing(defaults, have)
	if len(miss) == 0 {
		return nil
	}
	return hit(field, strings.Join(miss, " "), what+": %s", strings.Join(miss, ", "))
}

func missing(want, have []string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			out = append(out, w)
		}
	}
	return out
}

func unsafeSysctls(s *subject) []finding.Hit {
	if s.spec.Linux == nil {
		return nil
	}
	sysctl := s.spec.Linux.Sysctl
	keys := make([]string, 0, len(sysctl))
	for k := range sysctl {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []finding.Hit
	for _, k := range keys {
		if !slices.Contains(safeSysctls, strings.ReplaceAll(k, "/", ".")) {
			out = append(out, hit("linux.sysctl", k+"="+sysctl[k], "unsafe sysctl %s=%s", k, sysctl[k])...)
		}
	}
	return out
}

// allDevices tells whether the device cgroup allows every device.
func (s *subject) allDevices() bool {
	l := s.spec.Linux
	if l == nil || l.Resources == nil {
		return false
	}
	allowed := false
	for _, d := range l.Resources.Devices {
		if (d.Type == "" || d.Type == "a") && d.Major == nil && d.Minor == nil {
			allowed = d.Allow // the last matching rule wins
		}
	}
	return allowed
}

func allDevices(s *subject) []finding.Hit {
	if !s.allDevices() {
		return nil
	}
	return hit("linux.resources.devices", "allow a *:* rwm", "the device cgroup allows every device")
}

// Rule returns the catalog entry of id.
func Rule(id string) (finding.Rule, bool) {
	for _, r := range Rules() {
		if r.ID == id {
			return r, true
		}
	}
	return finding.Rule{}, false
}
