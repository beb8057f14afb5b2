package bundle

import (
	"fmt"
	"path"
	"strings"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/custody"
)

// Every path of a bundle, relative to the bag's root directory (the
// directory a tar bundle holds at its top). Files under PayloadDir are listed
// in the payload manifests, the others in the tag manifests, except
// AttestationFile and CustodyFile, which change after sealing and verify
// themselves.
const (
	// BagitTxt, BagInfo and the manifests are written by package bagit.
	BagitTxt          = "bagit.txt"
	BagInfo           = "bag-info.txt"
	Manifest          = "manifest-sha256.txt"
	ManifestSHA512    = "manifest-sha512.txt"
	TagManifest       = "tagmanifest-sha256.txt"
	TagManifestSHA512 = "tagmanifest-sha512.txt"

	// AcquisitionFile is the acquisition record (type Acquisition), a tag file.
	AcquisitionFile = "metadata/acquisition.json"
	// AttestationFile is the optional DSSE envelope over the tag manifests.
	AttestationFile = "attestation.dsse.json"
	// CustodyFile is the chain of custody.
	CustodyFile = custody.FileName

	// PayloadDir holds the payload.
	PayloadDir = "data"
	// ContainerJSON, SpecJSON and TaskJSON are containerd's record of the
	// container, its OCI runtime spec and its task's status.
	ContainerJSON = "data/container/container.json"
	SpecJSON      = "data/container/spec.json"
	TaskJSON      = "data/container/task.json"
	// ProcessesJSON lists the processes of a running or paused task.
	ProcessesJSON = "data/processes/processes.json"
	// ChangesJSONL holds one JSON object per change of the container's root
	// file system, ChangesTar their content as an OCI layer.
	ChangesJSONL = "data/rootfs/changes.jsonl"
	ChangesTar   = "data/rootfs/changes.tar"
	// UnsafeNamesTar holds, as a plain tar never to be applied as a layer,
	// the changes whose names an OCI layer would read as whiteouts
	// (".wh.NAME"), left out of ChangesTar; present only when there are such
	// changes.
	UnsafeNamesTar = "data/rootfs/unsafe-names.tar"
	// MountsJSON lists every mount of the container's OCI spec
	// ([]forensic.Mount): source, options, whether the container could write
	// it, what was examined and the archive holding its content.
	MountsJSON = "data/mounts/mounts.json"
	// MountChangesJSONL holds one JSON object per entry found outside the
	// snapshot (tmpfs, bind-mounted files, volumes), each with its source
	// and mount; their content is in the archives MountArchive names.
	MountChangesJSONL = "data/mounts/changes.jsonl"
	// Bodyfile is a Sleuth Kit body file of the changes, of the snapshot and
	// of the mounts.
	Bodyfile = "data/timeline/bodyfile.txt"
	// PackagesSBOM is the CycloneDX SBOM of the container as found.
	PackagesSBOM = "data/packages/sbom.cdx.json"
	// PackagesIntegrity holds one JSON object per changed file checked
	// against the image's package records.
	PackagesIntegrity = "data/packages/integrity.jsonl"
	// ScanSARIF holds the findings of scan's built-in rules over the
	// changes, as SARIF 2.1.0.
	ScanSARIF = "data/findings/scan.sarif"
	// ImageLayoutDir is the OCI image layout of the container's image.
	ImageLayoutDir = "data/image"
)

// ImagePath returns the bag path of rel (e.g. "index.json" or
// "blobs/sha256/<hex>") inside the image layout.
func ImagePath(rel string) string { return ImageLayoutDir + "/" + rel }

// MountArchive returns the bag path of the plain tar (never an OCI layer)
// holding the content of the mount at index i of the spec, of kind kind:
// data/mounts/NNN-KIND.tar, its entries named relative to the mount's
// destination (for a bind-mounted file, its host file name).
func MountArchive(i int, kind forensic.Source) string {
	return fmt.Sprintf("data/mounts/%03d-%s.tar", i, kind)
}

// payloadRel returns the path of a payload file relative to PayloadDir, as
// package bagit names payload files, or an error for a path outside it.
func payloadRel(name string) (string, error) {
	rel, ok := strings.CutPrefix(name, PayloadDir+"/")
	if !ok || rel == "" || path.Clean(rel) != rel {
		return "", fmt.Errorf("%q is not a payload path (%s/...)", name, PayloadDir)
	}
	return rel, nil
}

// selfVerifying reports the files of a bundle that are outside its tag
// manifests because they change after sealing, and verify themselves.
func selfVerifying(p string) bool {
	return p == CustodyFile || p == AttestationFile
}
