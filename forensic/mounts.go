package forensic

// Source says where a change was found: the container's snapshot (its root
// file system, the default) or a mount of its OCI runtime spec that the
// container could write outside the snapshot.
type Source string

// The sources of a change.
const (
	// SourceSnapshot is the container's root file system (its snapshot); a
	// Change with an empty Source is from the snapshot.
	SourceSnapshot Source = ""
	// SourceTmpfs is a tmpfs mount of the spec (/dev/shm, /run...), read
	// through the running task's mount namespace; its content lives only as
	// long as the task.
	SourceTmpfs Source = "tmpfs"
	// SourceBind is a file the runtime bind-mounts from the host
	// (/etc/hosts, /etc/resolv.conf, /etc/hostname...), read from its host
	// source.
	SourceBind Source = "bind"
	// SourceVolume is a directory bind-mounted from the host (a volume),
	// read from its host source.
	SourceVolume Source = "volume"
)

// Mount is what ctrforensics records of one mount of a container's OCI
// runtime spec: where it comes from, whether the container could write it,
// and what of it was examined.
type Mount struct {
	// Destination is the path inside the container.
	Destination string `json:"destination"`
	// Type is the spec's file system type ("tmpfs", "bind", "proc"...).
	Type string `json:"type"`
	// Source is the spec's source: a host path for a bind mount.
	Source  string   `json:"source"`
	Options []string `json:"options"`
	// Writable says the spec lets the container write the mount (no "ro").
	Writable bool `json:"writable"`
	// Kind is the source its changes carry; empty for a mount that is not
	// examined (kernel file systems such as proc, sysfs, devpts, cgroup).
	Kind Source `json:"kind,omitempty"`
	// Examined says its entries were read; Note says why not, or what was
	// left out.
	Examined bool   `json:"examined"`
	Entries  int    `json:"entries"`
	Note     string `json:"note,omitempty"`
	// Archive is the bag path of the archive holding its content, empty when
	// its content is not in the bag.
	Archive string `json:"archive,omitempty"`
}
