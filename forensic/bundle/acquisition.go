package bundle

import (
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/internal/version"
)

// ToolName is the name acquisition records give the collecting tool.
const ToolName = "ctrforensics"

// Acquisition is metadata/acquisition.json: who acquired what, where, when,
// how, and every side effect on the host.
type Acquisition struct {
	Tool struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Commit  string `json:"commit"`
		Go      string `json:"go"`
	} `json:"tool"`
	Host       forensic.Host `json:"host"`
	Containerd struct {
		Version   string `json:"version"`
		Address   string `json:"address"`
		Namespace string `json:"namespace"`
	} `json:"containerd"`
	Case      string `json:"case"`
	Examiner  string `json:"examiner"`
	Note      string `json:"note"`
	Container struct {
		ID          string `json:"id"`
		Image       string `json:"image"`
		Snapshotter string `json:"snapshotter"`
		SnapshotKey string `json:"snapshot_key"`
		TaskStatus  string `json:"task_status"`
	} `json:"container"`
	// Pod is the Kubernetes pod of a container created through the CRI.
	Pod *forensic.Pod `json:"pod,omitempty"`

	Start string `json:"start"`
	End   string `json:"end"`
	// CollectedBy and CollectedAt are what the first custody event must say.
	CollectedBy string `json:"collected_by"`
	CollectedAt string `json:"collected_at"`
	DiffMethod  string `json:"diff_method"`
	Changes     int    `json:"changes"`
	// Mounts counts the mounts of the spec (listed in MountsJSON) and
	// MountChanges the entries found in them; VolumesIncluded says volumes'
	// content is in the bag.
	Mounts          int  `json:"mounts"`
	MountChanges    int  `json:"mount_changes"`
	VolumesIncluded bool `json:"volumes_included"`
	// VolumesNotArchived names the volumes whose entries are listed but
	// whose content is not in the bag.
	VolumesNotArchived  []string `json:"volumes_not_archived,omitempty"`
	Paused              bool     `json:"paused"`
	ImageLayersIncluded bool     `json:"image_layers_included"`
	// ImageBlobsNotExported are referenced blobs containerd did not hold.
	ImageBlobsNotExported []string     `json:"image_blobs_not_exported,omitempty"`
	Algorithms            []string     `json:"algorithms"`
	Notes                 []string     `json:"notes"`
	SideEffects           []SideEffect `json:"side_effects"`

	// DiskRoot is set when the source was a containerd root directory read
	// from disk, without a daemon.
	DiskRoot *DiskRoot `json:"disk_root,omitempty"`

	// CommittedManifest is the digest of the committed image (collect
	// --commit) in the image layout, ref name "committed".
	CommittedManifest string `json:"committed_manifest,omitempty"`

	// BagGroup names the set of bags collected together (bag-info.txt
	// Bag-Group-Identifier), e.g. every target of one cluster-wide run.
	BagGroup string `json:"bag_group,omitempty"`
	// Orchestration records the cluster-wide run that collected this bag.
	Orchestration *Orchestration `json:"orchestration,omitempty"`
}

// OrchestrationKubernetes is Orchestration.System for a run of
// `ctrforensics k8s collect`.
const OrchestrationKubernetes = "kubernetes"

// Orchestration records the run that collected a group of bags across a
// cluster: who ran it against which cluster, and the short-lived collector
// pods it created (one per node), so that the cluster's own audit log and the
// bags can be matched. Every bag of a run carries the run's fields; Target and
// Collector are the bag's own.
type Orchestration struct {
	System string `json:"system"`
	// Group is the run's Bag-Group-Identifier.
	Group string `json:"bag_group"`
	// Started is when the run started (UTC, RFC 3339).
	Started string `json:"started"`
	// Context, Cluster and Server name the kubeconfig context, its cluster
	// and the API server's URL; KubeconfigUser the context's user entry.
	Context        string `json:"context,omitempty"`
	Cluster        string `json:"cluster,omitempty"`
	Server         string `json:"server,omitempty"`
	KubeconfigUser string `json:"kubeconfig_user,omitempty"`
	// User and Groups are who the API server authenticated the run as.
	User   string   `json:"user,omitempty"`
	Groups []string `json:"groups,omitempty"`
	// Namespace holds the collector pods; Image is what they ran.
	Namespace string `json:"collector_namespace"`
	Image     string `json:"collector_image"`
	// Nodes are the nodes of the run and CollectorPods the collector pods'
	// names, one per node in the same order. Targets counts the targets.
	Nodes         []string `json:"nodes"`
	CollectorPods []string `json:"collector_pods"`
	Targets       int      `json:"targets"`
	// Target is this bag's container as the API server named it.
	Target OrchestratedTarget `json:"target"`
	// Collector is the pod that collected this bag, as the kubelet that ran
	// it named it (the downward API).
	Collector CollectorPod `json:"collector"`
}

// OrchestratedTarget is a pod's container as the API server lists it.
type OrchestratedTarget struct {
	Namespace   string `json:"namespace"`
	Pod         string `json:"pod"`
	PodUID      string `json:"pod_uid"`
	Container   string `json:"container"`
	ContainerID string `json:"container_id"`
	Node        string `json:"node"`
}

// CollectorPod is a collector pod as it knows itself.
type CollectorPod struct {
	Namespace      string `json:"namespace"`
	Name           string `json:"name"`
	UID            string `json:"uid"`
	Node           string `json:"node"`
	ServiceAccount string `json:"service_account,omitempty"`
}

// SourceDiskRoot is DiskRoot.Source: the evidence was read from a containerd
// root directory on disk.
const SourceDiskRoot = "disk root"

// DiskRoot says where an offline acquisition read containerd's state.
type DiskRoot struct {
	Source string `json:"source"`
	// Path is the containerd root directory.
	Path string `json:"path"`
	// Databases are containerd's meta.db and the snapshotters' metadata.db.
	Databases []DatabaseDigest `json:"databases"`
}

// DatabaseDigest records how one bolt database of a disk root was read.
type DatabaseDigest struct {
	Path string `json:"path"`
	// Locked says a live daemon held the database's lock.
	Locked bool `json:"locked,omitempty"`
	// Copied says the database was copied to a private file and read there.
	Copied bool `json:"copied"`
	// Before and After are the sha256 of the original before and after it
	// was copied (or read); Copy that of the copy read.
	Before digest.Digest `json:"sha256_before"`
	After  digest.Digest `json:"sha256_after"`
	Copy   digest.Digest `json:"sha256_copy,omitempty"`
}

// SideEffect is one change made on the host during an acquisition.
type SideEffect struct {
	Time   time.Time `json:"time"`
	Action string    `json:"action"`
	Detail string    `json:"detail"`
}

// NewAcquisition starts an acquisition record at start, naming this build of
// the tool.
func NewAcquisition(start time.Time) *Acquisition {
	a := &Acquisition{Start: forensic.FormatTime(start)}
	build := version.Info()
	a.Tool.Name, a.Tool.Version, a.Tool.Commit, a.Tool.Go = ToolName, build.Version, build.Commit, build.Go
	return a
}
