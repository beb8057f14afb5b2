// Package audit checks a container's OCI runtime spec against hardening
// rules: what the container may do to its host if an attacker controls it
// (privileges, capabilities, host namespaces, host mounts, confinement). It
// reads only the spec, needs no containerd, and builds on every platform.
//
// Invariants: a rule ID keeps its meaning and is never reused; Check is a
// pure function of the spec, and its findings are sorted (severity, then
// rule, then where), so the same spec always gives the same report.
package audit

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ctrforensics/ctrforensics/forensic/finding"
)

// Rule IDs.
const (
	RuleWritableRootfs  = "CTRF-RT-001"
	RulePrivileged      = "CTRF-RT-002"
	RuleAddedCapability = "CTRF-RT-003"
	RuleHostPID         = "CTRF-RT-004"
	RuleHostNetwork     = "CTRF-RT-005"
	RuleHostIPC         = "CTRF-RT-006"
	RuleHostUTS         = "CTRF-RT-007"
	RuleWritableBind    = "CTRF-RT-008"
	RuleRuntimeSocket   = "CTRF-RT-009"
	RuleSensitiveMount  = "CTRF-RT-010"
	RuleNoSeccomp       = "CTRF-RT-011"
	RuleNoLSM           = "CTRF-RT-012"
	RuleNewPrivileges   = "CTRF-RT-013"
	RuleRootUser        = "CTRF-RT-014"
	RuleMaskedPaths     = "CTRF-RT-015"
	RuleReadonlyPaths   = "CTRF-RT-016"
	RuleUnsafeSysctl    = "CTRF-RT-017"
	RuleWritableSys     = "CTRF-RT-018"
	RuleAllDevices      = "CTRF-RT-019"
)

// checks is the catalog, in ID order, with the predicate of each rule.
var checks = []finding.Check[*subject]{
	{Rule: finding.Rule{ID: RuleWritableRootfs, Title: "Root filesystem is writable", Severity: finding.Medium,
		Help: "root.readonly is false: an attacker can drop files (a web shell, a backdoored binary) into the container's " +
			"filesystem and they persist for the container's life. Run with a read-only root filesystem and writable mounts " +
			"only where the application writes (`ctrforensics harden` derives them from the container's changes)."}, Fire: writableRootfs},
	{Rule: finding.Rule{ID: RulePrivileged, Title: "Container is privileged", Severity: finding.High,
		Help: "The container has every capability the runtime holds: its capability sets hold CAP_SYS_ADMIN and at least 35 " +
			"of the 38 capabilities up to CAP_AUDIT_READ (a runtime in a confined host may itself lack one or two), which is " +
			"what --privileged gives; the evidence lists the other parts of privileged mode found (no seccomp, " +
			"writable /sys, every device allowed). A privileged container is root on the host."}, Fire: privileged},
	{Rule: finding.Rule{ID: RuleAddedCapability, Title: "Capability added beyond the runtime's default set", Severity: finding.Medium,
		Help: "A capability outside the default set of containerd, Docker and CRI (CHOWN, DAC_OVERRIDE, FSETID, FOWNER, MKNOD, " +
			"NET_RAW, SETGID, SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, KILL, AUDIT_WRITE) is in the bounding, " +
			"effective, permitted or ambient set. High for those that lead to the host: SYS_ADMIN, SYS_MODULE, SYS_PTRACE, " +
			"SYS_RAWIO, DAC_READ_SEARCH, BPF, PERFMON, SYS_BOOT, MAC_ADMIN, MAC_OVERRIDE, NET_ADMIN; medium for the others. " +
			"Not reported when the container is privileged (CTRF-RT-002 covers it)."}, Fire: addedCapabilities},
	{Rule: finding.Rule{ID: RuleHostPID, Title: "Shares the host's PID namespace", Severity: finding.High,
		Help: "linux.namespaces has no pid namespace (or names the host's): the container sees every host process, and with " +
			"ptrace or /proc/PID/root reaches their memory and files."}, Fire: hostNamespace(specs.PIDNamespace)},
	{Rule: finding.Rule{ID: RuleHostNetwork, Title: "Shares the host's network namespace", Severity: finding.Medium,
		Help: "linux.namespaces has no network namespace (or names the host's): the container binds host ports, reaches " +
			"services on localhost and sniffs with NET_RAW."}, Fire: hostNamespace(specs.NetworkNamespace)},
	{Rule: finding.Rule{ID: RuleHostIPC, Title: "Shares the host's IPC namespace", Severity: finding.Medium,
		Help: "linux.namespaces has no ipc namespace (or names the host's): the container reads and writes host shared memory " +
			"and message queues."}, Fire: hostNamespace(specs.IPCNamespace)},
	{Rule: finding.Rule{ID: RuleHostUTS, Title: "Shares the host's UTS namespace", Severity: finding.Low,
		Help: "linux.namespaces has no uts namespace (or names the host's): the container can change the host's hostname."}, Fire: hostNamespace(specs.UTSNamespace)},
	{Rule: finding.Rule{ID: RuleWritableBind, Title: "Host path bind-mounted writable", Severity: finding.Medium,
		Help: "A bind mount of a host path without ro: what the container writes there lands on the host, outside the " +
			"container's snapshot (and outside its diff). Runtime-managed sources (containerd's and the kubelet's own " +
			"directories: /etc/hosts, resolv.conf, volumes of pods) are not reported."}, Fire: writableBinds},
	{Rule: finding.Rule{ID: RuleRuntimeSocket, Title: "Container runtime socket mounted", Severity: finding.High,
		Help: "A mount's source is a container runtime's API socket or its directory (containerd.sock, docker.sock, crio.sock, " +
			"podman.sock, dockershim.sock, cri-dockerd.sock, /run/containerd, /var/run/docker): whoever controls the container " +
			"can start a privileged container on the host. Reported read-only too: connecting to a socket needs no write access " +
			"to the mount."}, Fire: runtimeSocketMounts},
	{Rule: finding.Rule{ID: RuleSensitiveMount, Title: "Sensitive host directory mounted", Severity: finding.High,
		Help: "A bind mount's source is /, /etc, /proc, /sys, /dev, /boot, /root, /run, /var/run, /var/lib/containerd, " +
			"/var/lib/docker or /var/lib/kubelet (or a path inside /proc or /sys): host credentials, configuration or kernel " +
			"interfaces are in reach. Medium when mounted read-only."}, Fire: sensitiveMounts},
	{Rule: finding.Rule{ID: RuleNoSeccomp, Title: "No seccomp profile", Severity: finding.Medium,
		Help: "linux.seccomp is absent (or allows every syscall by default): the whole kernel syscall surface is open, " +
			"including the calls container escapes use (keyctl, unshare, bpf, userfaultfd...)."}, Fire: noSeccomp},
	{Rule: finding.Rule{ID: RuleNoLSM, Title: "No AppArmor profile or SELinux label", Severity: finding.Low,
		Help: "process.apparmorProfile and process.selinuxLabel are both empty (or unconfined): no mandatory access control " +
			"limits the container beyond its capabilities."}, Fire: noLSM},
	{Rule: finding.Rule{ID: RuleNewPrivileges, Title: "no_new_privileges is off", Severity: finding.Low,
		Help: "process.noNewPrivileges is false: a setuid binary in the container (or one an attacker drops) can raise the " +
			"process's privileges."}, Fire: newPrivileges},
	{Rule: finding.Rule{ID: RuleRootUser, Title: "Process runs as root", Severity: finding.Low,
		Help: "process.user.uid is 0 and no user namespace maps it to an unprivileged host user: a breakout lands as host root."}, Fire: rootUser},
	{Rule: finding.Rule{ID: RuleMaskedPaths, Title: "Masked paths removed", Severity: finding.Medium,
		Help: "linux.maskedPaths lacks paths the runtimes mask by default (/proc/kcore, /proc/keys, /proc/timer_list, " +
			"/proc/sched_debug, /sys/firmware...), which leak kernel memory and host information."}, Fire: maskedPaths},
	{Rule: finding.Rule{ID: RuleReadonlyPaths, Title: "Read-only paths removed", Severity: finding.Medium,
		Help: "linux.readonlyPaths lacks paths the runtimes make read-only by default (/proc/sys, /proc/sysrq-trigger, " +
			"/proc/irq, /proc/bus, /proc/fs), which change kernel settings for the whole host."}, Fire: readonlyPaths},
	{Rule: finding.Rule{ID: RuleUnsafeSysctl, Title: "Unsafe sysctl set", Severity: finding.Medium,
		Help: "linux.sysctl sets a key outside Kubernetes' safe set (kernel.shm_rmid_forced, net.ipv4.ip_local_port_range, " +
			"net.ipv4.ip_local_reserved_ports, net.ipv4.tcp_syncookies, net.ipv4.ping_group_range, " +
			"net.ipv4.ip_unprivileged_port_start, net.ipv4.tcp_keepalive_time, _intvl, _probes, net.ipv4.tcp_fin_timeout): " +
			"it may affect the host or other containers."}, Fire: unsafeSysctls},
	{Rule: finding.Rule{ID: RuleWritableSys, Title: "/sys mounted writable", Severity: finding.High,
		Help: "The sysfs mount at /sys is not read-only: the container can change kernel and device settings of the host."}, Fire: writableSys},
	{Rule: finding.Rule{ID: RuleAllDevices, Title: "Every device allowed", Severity: finding.High,
		Help: "linux.resources.devices allows every device (a rule with allow true, type a or empty, no major/minor): the " +
			"container may create and open host block devices (disks) and read or write them directly."}, Fire: allDevices},
}

// Rules returns the catalog, sorted by ID. The slice is a fresh copy.
func Rules() []finding.Rule { return finding.Catalog(checks) }

// Finding is one rule that matched a spec.
type Finding struct {
	Rule     string
	Severity finding.Severity
	Title    string
	// Reason is one line naming what matched.
	Reason string
	// Where is the spec field: "root", "process.capabilities",
	// "mounts[2]", "linux.namespaces"...
	Where string
	// Evidence is the matched value, one line.
	Evidence string
}

// AtLeast tells whether a finding is at or above s.
func AtLeast(findings []Finding, s finding.Severity) bool {
	for _, f := range findings {
		if f.Severity >= s {
			return true
		}
	}
	return false
}
