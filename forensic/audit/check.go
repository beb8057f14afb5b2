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
	c := &checker{spec: spec, rules: map[string]finding.Rule{}}
	for _, r := range Rules() {
		c.rules[r.ID] = r
	}
	c.rootfs()
	privileged := c.privileged()
	if !privileged {
		c.capabilities()
	}
	c.namespaces()
	c.mounts()
	c.confinement()
	c.user()
	c.paths()
	c.sysctls()
	c.devices()
	sort.SliceStable(c.out, func(i, j int) bool {
		a, b := c.out[i], c.out[j]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		return a.Where < b.Where
	})
	return c.out
}

type checker struct {
	spec  *specs.Spec
	rules map[string]finding.Rule
	out   []Finding
}

// add records a finding of rule at its catalog severity.
func (c *checker) add(rule, where, evidence, format string, args ...any) {
	c.addAt(rule, c.rules[rule].Severity, where, evidence, format, args...)
}

func (c *checker) addAt(rule string, sev finding.Severity, where, evidence, format string, args ...any) {
	c.out = append(c.out, Finding{Rule: rule, Severity: sev, Title: c.rules[rule].Title, Where: where,
		Evidence: forensic.EscapePath(evidence), Reason: forensic.EscapePath(fmt.Sprintf(format, args...))})
}

func (c *checker) rootfs() {
	if c.spec.Root == nil || !c.spec.Root.Readonly {
		c.add(RuleWritableRootfs, "root", "readonly: false", "the root filesystem is writable (root.readonly is false)")
	}
}

// caps returns the union of the process's capability sets.
func (c *checker) caps() []string {
	p := c.spec.Process
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

func (c *checker) privileged() bool {
	caps := c.caps()
	held := 0
	for _, want := range allCapabilities {
		if slices.Contains(caps, want) {
			held++
		}
	}
	if held < len(allCapabilities)-privilegedMissing || !slices.Contains(caps, "CAP_SYS_ADMIN") {
		return false
	}
	parts := []string{fmt.Sprintf("%d capabilities", len(caps))}
	if c.noSeccomp() {
		parts = append(parts, "no seccomp")
	}
	if c.writableSys() >= 0 {
		parts = append(parts, "writable /sys")
	}
	if c.allDevices() {
		parts = append(parts, "every device allowed")
	}
	c.add(RulePrivileged, "process.capabilities", strings.Join(parts, ", "), "privileged: %s", strings.Join(parts, ", "))
	return true
}

func (c *checker) capabilities() {
	for _, cp := range c.caps() {
		if slices.Contains(DefaultCapabilities, cp) {
			continue
		}
		sev := finding.Medium
		if slices.Contains(dangerousCapabilities, cp) {
			sev = finding.High
		}
		c.addAt(RuleAddedCapability, sev, "process.capabilities", cp, "capability %s added beyond the runtime's default set", cp)
	}
}

func (c *checker) namespaces() {
	var have []specs.LinuxNamespace
	if c.spec.Linux != nil {
		have = c.spec.Linux.Namespaces
	}
	for _, ns := range []struct {
		typ  specs.LinuxNamespaceType
		rule string
	}{{specs.PIDNamespace, RuleHostPID}, {specs.NetworkNamespace, RuleHostNetwork}, {specs.IPCNamespace, RuleHostIPC}, {specs.UTSNamespace, RuleHostUTS}} {
		i := slices.IndexFunc(have, func(n specs.LinuxNamespace) bool { return n.Type == ns.typ })
		switch {
		case i < 0:
			c.add(ns.rule, "linux.namespaces", string(ns.typ)+": none", "no %s namespace of its own: the host's is shared", ns.typ)
		case isHostNamespace(have[i].Path):
			c.add(ns.rule, fmt.Sprintf("linux.namespaces[%d]", i), have[i].Path, "joins the host's %s namespace (%s)", ns.typ, have[i].Path)
		}
	}
}

// isHostNamespace tells a namespace path of the host's init process.
func isHostNamespace(p string) bool {
	return strings.HasPrefix(p, "/proc/1/ns/")
}

func (c *checker) mounts() {
	for i, m := range c.spec.Mounts {
		where := fmt.Sprintf("mounts[%d]", i)
		ro := slices.Contains(m.Options, "ro")
		src := path.Clean(m.Source)
		if isRuntimeSocket(src) {
			c.add(RuleRuntimeSocket, where, m.Source+" -> "+m.Destination, "container runtime socket %s mounted at %s", m.Source, m.Destination)
		}
		if !isBind(m) || !path.IsAbs(m.Source) {
			continue
		}
		if sensitive(src) {
			sev, mode := finding.High, "writable"
			if ro {
				sev, mode = finding.Medium, "read-only"
			}
			c.addAt(RuleSensitiveMount, sev, where, m.Source+" -> "+m.Destination, "host %s mounted %s at %s", m.Source, mode, m.Destination)
		}
		if !ro && !managed(src) {
			c.add(RuleWritableBind, where, m.Source+" -> "+m.Destination, "host path %s bind-mounted writable at %s", m.Source, m.Destination)
		}
	}
	if i := c.writableSys(); i >= 0 {
		c.add(RuleWritableSys, fmt.Sprintf("mounts[%d]", i), "/sys rw", "sysfs is mounted writable at /sys")
	}
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
func (c *checker) writableSys() int {
	for i, m := range c.spec.Mounts {
		if path.Clean(m.Destination) == "/sys" && (m.Type == "sysfs" || isBind(m)) && !slices.Contains(m.Options, "ro") {
			return i
		}
	}
	return -1
}

func (c *checker) noSeccomp() bool {
	l := c.spec.Linux
	if l == nil || l.Seccomp == nil {
		return true
	}
	return l.Seccomp.DefaultAction == specs.ActAllow && len(l.Seccomp.Syscalls) == 0
}

func (c *checker) confinement() {
	if c.noSeccomp() {
		c.add(RuleNoSeccomp, "linux.seccomp", "none", "no seccomp profile: every syscall is allowed")
	}
	p := c.spec.Process
	if p == nil {
		return
	}
	if unconfined(p.ApparmorProfile) && unconfined(p.SelinuxLabel) {
		c.add(RuleNoLSM, "process.apparmorProfile", orNone(p.ApparmorProfile), "no AppArmor profile and no SELinux label")
	}
	if !p.NoNewPrivileges {
		c.add(RuleNewPrivileges, "process.noNewPrivileges", "false", "no_new_privileges is off: setuid binaries can raise privileges")
	}
}

func unconfined(label string) bool { return label == "" || label == "unconfined" }

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func (c *checker) user() {
	p := c.spec.Process
	if p == nil || p.User.UID != 0 || c.rootMappedAway() {
		return
	}
	c.add(RuleRootUser, "process.user", "uid 0", "the process runs as uid 0 (root) without a user namespace")
}

// rootMappedAway tells whether a user namespace maps uid 0 to another host uid.
func (c *checker) rootMappedAway() bool {
	l := c.spec.Linux
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

func (c *checker) paths() {
	var masked, readonly []string
	if c.spec.Linux != nil {
		masked, readonly = c.spec.Linux.MaskedPaths, c.spec.Linux.ReadonlyPaths
	}
	if miss := missing(defaultMasked, masked); len(miss) > 0 {
		c.add(RuleMaskedPaths, "linux.maskedPaths", strings.Join(miss, " "), "not masked: %s", strings.Join(miss, ", "))
	}
	if miss := missing(defaultReadonly, readonly); len(miss) > 0 {
		c.add(RuleReadonlyPaths, "linux.readonlyPaths", strings.Join(miss, " "), "not read-only: %s", strings.Join(miss, ", "))
	}
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

func (c *checker) sysctls() {
	if c.spec.Linux == nil {
		return
	}
	keys := make([]string, 0, len(c.spec.Linux.Sysctl))
	for k := range c.spec.Linux.Sysctl {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(safeSysctls, strings.ReplaceAll(k, "/", ".")) {
			c.add(RuleUnsafeSysctl, "linux.sysctl", k+"="+c.spec.Linux.Sysctl[k], "unsafe sysctl %s=%s", k, c.spec.Linux.Sysctl[k])
		}
	}
}

// allDevices tells whether the device cgroup allows every device.
func (c *checker) allDevices() bool {
	l := c.spec.Linux
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

func (c *checker) devices() {
	if c.allDevices() {
		c.add(RuleAllDevices, "linux.resources.devices", "allow a *:* rwm", "the device cgroup allows every device")
	}
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
