package main

import (
	digest "github.com/opencontainers/go-digest"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/custody"
	"github.com/ctrforensics/ctrforensics/snapshot"
)

// The rows of --format json. Field names and their order are part of the
// output format (README): the rows that were once maps keep the maps'
// alphabetical order.

// containerJSON is one line of `ls --format json`.
type containerJSON struct {
	Namespace      string              `json:"namespace"`
	ID             string              `json:"id"`
	Image          string              `json:"image"`
	Status         snapshot.TaskStatus `json:"status"`
	Pid            uint32              `json:"pid,omitempty"`
	Runtime        string              `json:"runtime"`
	Snapshotter    string              `json:"snapshotter"`
	SnapshotKey    string              `json:"snapshot_key"`
	ReadOnlyRootfs bool                `json:"readonly_rootfs"`
	Created        string              `json:"created"`
	PodNamespace   string              `json:"pod_namespace,omitempty"`
	Pod            string              `json:"pod,omitempty"`
	ContainerName  string              `json:"container_name,omitempty"`
	PodUID         string              `json:"pod_uid,omitempty"`
	SandboxID      string              `json:"sandbox_id,omitempty"`
	Sandbox        bool                `json:"sandbox,omitempty"`
	PodLabels      map[string]string   `json:"pod_labels,omitempty"`
	Labels         map[string]string   `json:"labels"`
}

// imageRow is one line of `image ls --format json`.
type imageRow struct {
	Name      string   `json:"name"`
	Manifest  string   `json:"manifest_digest"`
	Config    string   `json:"config_digest"`
	Platforms []string `json:"platforms"`
	Size      int64    `json:"size"`
	Created   string   `json:"created"`
	Unpacked  []string `json:"unpacked"`
}

// entryRow is one path of `image files --format json`, and a hidden file of
// `image layers`.
type entryRow struct {
	Path       string            `json:"path"`
	Type       forensic.FileType `json:"type"`
	Mode       string            `json:"mode"`
	UID        uint32            `json:"uid"`
	GID        uint32            `json:"gid"`
	Size       int64             `json:"size"`
	Mtime      string            `json:"mtime"`
	LinkTarget string            `json:"link_target,omitempty"`
	HardLink   bool              `json:"hard_link,omitempty"`
	Layer      int               `json:"layer"`
	Digest     string            `json:"digest,omitempty"`
	Xattrs     map[string]string `json:"xattrs,omitempty"`
}

// historyDoc is the one object of `image history --format json`.
type historyDoc struct {
	Config   digest.Digest `json:"config"`
	Findings []findingRow  `json:"findings"`
	History  []historyRow  `json:"history"`
	Image    string        `json:"image"`
	Manifest digest.Digest `json:"manifest"`
	Platform string        `json:"platform"`
}

// findingRow is one finding of `image history --format json`.
type findingRow struct {
	Evidence string `json:"evidence"`
	History  int    `json:"history"`
	Reason   string `json:"reason"`
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
	Title    string `json:"title"`
}

// historyRow is one history entry of `image history --format json`; Layer,
// DiffID and Size are there only for an entry that created a layer.
type historyRow struct {
	Author     string         `json:"author"`
	Comment    string         `json:"comment"`
	Created    string         `json:"created,omitempty"`
	CreatedBy  string         `json:"created_by"`
	DiffID     *digest.Digest `json:"diff_id,omitempty"`
	EmptyLayer bool           `json:"empty_layer"`
	Index      int            `json:"index"`
	Layer      *int           `json:"layer,omitempty"`
	Size       *int64         `json:"size,omitempty"`
}

// layerRow is one line of `image layers --format json`.
type layerRow struct {
	Added     int              `json:"added"`
	Bytes     int64            `json:"bytes"`
	Changed   int              `json:"changed"`
	Changes   []layerChangeRow `json:"changes"`
	CreatedBy string           `json:"created_by"`
	Deleted   int              `json:"deleted"`
	DiffID    digest.Digest    `json:"diff_id"`
	Index     int              `json:"index"`
}

// hiddenRow follows the layer rows of `image layers --format json`, one per
// layer that ships files later layers hide (known only once all are read).
type hiddenRow struct {
	Index  int        `json:"index"`
	Hidden []entryRow `json:"hidden"`
}

// layerChangeRow is one change of a layerRow.
type layerChangeRow struct {
	Kind       forensic.Kind     `json:"kind"`
	Path       string            `json:"path"`
	Size       int64             `json:"size"`
	Type       forensic.FileType `json:"type"`
	LinkTarget string            `json:"link_target,omitempty"`
	HardLink   bool              `json:"hard_link,omitempty"`
	Digest     string            `json:"digest,omitempty"`
	BaseDigest string            `json:"base_digest,omitempty"`
	Fields     []forensic.Field  `json:"fields,omitempty"`
	MtimeOnly  bool              `json:"mtime_only,omitempty"`
}

// collectedJSON is what `collect --format json` prints: one object.
type collectedJSON struct {
	Container   string   `json:"container"`
	Output      string   `json:"output"`
	CustodyHead string   `json:"custody_head"`
	Signed      bool     `json:"signed"`
	Changes     int      `json:"changes"`
	DiffMethod  string   `json:"diff_method"`
	BagGroup    string   `json:"bag_group,omitempty"`
	Notes       []string `json:"notes"`
	// Stored is the object of a bag stored in a bucket (-o s3://).
	Stored *custody.Stored `json:"stored,omitempty"`
}
