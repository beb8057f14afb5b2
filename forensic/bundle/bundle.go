// Package bundle is ctrforensics's evidence bundle: a BagIt bag holding a
// container's acquisition, its acquisition record, an optional DSSE signature
// and a chain of custody. It verifies bundles and appends custody events; the
// bag itself is written by the collector in package snapshot.
package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ctrforensics/ctrforensics/forensic/attest"
	"github.com/ctrforensics/ctrforensics/forensic/bagit"
	"github.com/ctrforensics/ctrforensics/forensic/custody"
	"github.com/ctrforensics/ctrforensics/forensic/procfs"
)

// Paths of a bundle, relative to the bag's root.
const (
	AcquisitionFile = "metadata/acquisition.json"
	AttestationFile = "attestation.dsse.json"
	TagManifest     = "tagmanifest-sha256.txt"
	ImageLayoutDir  = "data/image"
)

// Acquisition is metadata/acquisition.json: who acquired what, where, when,
// how, and every side effect on the host.
type Acquisition struct {
	Tool struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Commit  string `json:"commit"`
		Go      string `json:"go"`
	} `json:"tool"`
	Host       procfs.Host `json:"host"`
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
	Start string `json:"start"`
	End   string `json:"end"`
	// CollectedBy and CollectedAt are what the first custody event must say.
	CollectedBy         string `json:"collected_by"`
	CollectedAt         string `json:"collected_at"`
	DiffMethod          string `json:"diff_method"`
	Changes             int    `json:"changes"`
	Paused              bool   `json:"paused"`
	ImageLayersIncluded bool   `json:"image_layers_included"`
	// ImageBlobsNotExported are referenced blobs containerd did not hold.
	ImageBlobsNotExported []string     `json:"image_blobs_not_exported,omitempty"`
	Algorithms            []string     `json:"algorithms"`
	Notes                 []string     `json:"notes"`
	SideEffects           []SideEffect `json:"side_effects"`
}

// SideEffect is one change made on the host during an acquisition.
type SideEffect struct {
	Time   time.Time `json:"time"`
	Action string    `json:"action"`
	Detail string    `json:"detail"`
}

// Extra reports the files of a bundle that are outside its tag manifests
// because they change after sealing, and verify themselves.
func Extra(p string) bool {
	return p == custody.FileName || p == AttestationFile
}

// Report is the outcome of Verify.
type Report struct {
	Path string
	// Problems lists every failed check, by file.
	Problems []bagit.Problem
	// Signature is "valid (key ID)", "signed, key not checked", "unsigned" or
	// "invalid: why".
	Signature    string
	Custody      []custody.Entry
	Head         string
	Acquisition  *Acquisition
	PayloadFiles int64
	PayloadBytes int64
	Algorithms   []bagit.Algorithm
}

// Valid tells whether every check held.
func (r *Report) Valid() bool { return len(r.Problems) == 0 }

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// PublicKey, when set, must verify the signature and every signed custody event.
	PublicKey ed25519.PublicKey
	// CustodyHead, when set, must be the custody chain's head digest.
	CustodyHead string
}

// Verify checks a bundle (directory, tar or gzip-compressed tar) without
// extracting it: the bag's completeness and every digest, Payload-Oxum, the OCI
// image layout's blobs, the signature and the chain of custody. The error is
// for a bundle that cannot be read at all.
func Verify(ctx context.Context, p string, opts VerifyOptions) (*Report, error) {
	res, err := bagit.Verify(ctx, p, bagit.Options{Extra: Extra, Keep: keep})
	if err != nil {
		return nil, err
	}
	r := &Report{Path: p, Problems: res.Problems, PayloadFiles: res.PayloadFiles, PayloadBytes: res.PayloadBytes, Algorithms: res.Algorithms}
	for _, name := range res.Oversized {
		if !strings.HasPrefix(name, ImageLayoutDir+"/") { // layer blobs may be large
			r.problem(name, "unreadable", "larger than 16 MiB: not a file ctrforensics wrote")
		}
	}
	if b, ok := res.Files[AcquisitionFile]; ok {
		r.Acquisition = &Acquisition{}
		if err := json.Unmarshal(b, r.Acquisition); err != nil {
			r.problem(AcquisitionFile, "bagit", "not an acquisition record: "+err.Error())
			r.Acquisition = nil
		}
	} else {
		r.problem(AcquisitionFile, "missing", "the acquisition record is missing")
	}
	bagDigest := digestOf(res.Files[TagManifest])
	r.checkSignature(res.Files[AttestationFile], res.Files, opts.PublicKey)
	r.checkCustody(res.Files[custody.FileName], bagDigest, opts)
	r.checkLayout(res)
	sort.SliceStable(r.Problems, func(i, j int) bool { return r.Problems[i].Path < r.Problems[j].Path })
	return r, nil
}

// keep names the files whose content Verify needs: small ones, and under
// data/image the JSON documents (bagit does not return files over 16 MiB, so
// large layer blobs are only hashed).
func keep(p string) bool {
	switch p {
	case custody.FileName, AttestationFile, AcquisitionFile, TagManifest, "tagmanifest-sha512.txt":
		return true
	}
	return strings.HasPrefix(p, ImageLayoutDir+"/")
}

func (r *Report) problem(p, check, detail string) {
	r.Problems = append(r.Problems, bagit.Problem{Path: p, Check: check, Detail: detail})
}

func digestOf(b []byte) string {
	if b == nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// checkSignature verifies the DSSE envelope: its statement must name the tag
// manifests with their current digests, and with a key its signature must hold.
func (r *Report) checkSignature(env []byte, files map[string][]byte, key ed25519.PublicKey) {
	if env == nil {
		r.Signature = "unsigned"
		if key != nil {
			r.problem(AttestationFile, "signature", "a public key was given but the bundle is not signed")
		}
		return
	}
	var e attest.Envelope
	if err := json.Unmarshal(env, &e); err != nil {
		r.Signature = "invalid: " + err.Error()
		r.problem(AttestationFile, "signature", "not a DSSE envelope: "+err.Error())
		return
	}
	st, err := e.Open(key)
	if err != nil {
		r.Signature = "invalid: " + err.Error()
		r.problem(AttestationFile, "signature", err.Error())
		return
	}
	for _, s := range st.Subject {
		want, ok := files[s.Name]
		if !ok || strings.TrimPrefix(digestOf(want), "sha256:") != s.Digest["sha256"] {
			r.Signature = "invalid: " + s.Name + " is not what was signed"
			r.problem(s.Name, "signature", "differs from the signed statement (sha256 "+s.Digest["sha256"]+")")
			return
		}
	}
	if len(st.Subject) == 0 {
		r.problem(AttestationFile, "signature", "the signed statement names no tag manifest")
	}
	if key == nil {
		r.Signature = "signed, key not checked (give --pubkey)"
		return
	}
	r.Signature = "valid (key " + attest.KeyID(key)[:16] + ")"
}

func (r *Report) checkCustody(chain []byte, bag string, opts VerifyOptions) {
	if chain == nil {
		r.problem(custody.FileName, "custody", "the chain of custody is missing")
		return
	}
	entries, err := custody.Read(bytes.NewReader(chain))
	r.Custody, r.Head = entries, custody.Head(entries)
	if err != nil {
		r.problem(custody.FileName, "custody", err.Error())
		return
	}
	want := custody.Expect{Bag: bag, Key: opts.PublicKey, Head: opts.CustodyHead}
	if r.Acquisition != nil {
		want.Collector, want.CollectedAt = r.Acquisition.CollectedBy, r.Acquisition.CollectedAt
	}
	for _, msg := range custody.Verify(entries, want) {
		r.problem(custody.FileName, "custody", msg)
	}
}

// checkLayout checks the image layout: every blob index.json reaches is
// present (layers only when the acquisition says they were included) with the
// size its descriptor gives, and is named by its sha256.
func (r *Report) checkLayout(res *bagit.Result) {
	idx, ok := res.Files[ImageLayoutDir+"/index.json"]
	if !ok {
		return // no image layout: noted in the acquisition record
	}
	layers := r.Acquisition != nil && r.Acquisition.ImageLayersIncluded
	for name, sum := range res.SHA256 {
		if want := path.Base(name); want != sum {
			r.problem(name, "oci", "blob content has sha256 "+sum)
		}
	}
	var index ocispec.Index
	if err := json.Unmarshal(idx, &index); err != nil {
		r.problem(ImageLayoutDir+"/index.json", "oci", err.Error())
		return
	}
	seen := map[string]bool{}
	for _, d := range index.Manifests {
		r.checkBlob(res, d, layers, seen)
	}
}

// checkBlob checks one descriptor's blob and, for a manifest or an index,
// the blobs it references; seen stops cycles in a hostile layout.
func (r *Report) checkBlob(res *bagit.Result, d ocispec.Descriptor, layers bool, seen map[string]bool) {
	if err := d.Digest.Validate(); err != nil {
		r.problem(ImageLayoutDir, "oci", fmt.Sprintf("a descriptor (%s) has a bad digest %q: %v", d.MediaType, d.Digest, err))
		return
	}
	name := path.Join(ImageLayoutDir, ocispec.ImageBlobsDir, d.Digest.Algorithm().String(), d.Digest.Encoded())
	if seen[name] {
		return
	}
	seen[name] = true
	if _, ok := res.SHA256[name]; !ok {
		if (layers || !isLayer(d.MediaType)) && !r.notExported(d.Digest.String()) {
			r.problem(name, "oci", "blob "+string(d.Digest)+" ("+d.MediaType+") is missing")
		}
		return
	}
	if !isManifestOrIndex(d.MediaType) {
		return
	}
	content, kept := res.Files[name]
	if !kept {
		r.problem(name, "oci", "a "+d.MediaType+" too large to check (over 16 MiB, or past 64 MiB of documents)")
		return
	}
	if int64(len(content)) != d.Size {
		r.problem(name, "oci", fmt.Sprintf("blob is %d bytes, its descriptor says %d", len(content), d.Size))
	}
	var children struct {
		Config    *ocispec.Descriptor  `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
		Manifests []ocispec.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(content, &children); err != nil {
		r.problem(name, "oci", "not a manifest or index: "+err.Error())
		return
	}
	if children.Config != nil {
		r.checkBlob(res, *children.Config, layers, seen)
	}
	for _, c := range append(children.Layers, children.Manifests...) {
		r.checkBlob(res, c, layers, seen)
	}
}

// notExported tells whether the acquisition record says containerd did not
// hold the blob when it was collected.
func (r *Report) notExported(d string) bool {
	if r.Acquisition == nil {
		return false
	}
	for _, m := range r.Acquisition.ImageBlobsNotExported {
		if m == d {
			return true
		}
	}
	return false
}

func isManifestOrIndex(mediaType string) bool {
	switch mediaType {
	case ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
		"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json":
		return true
	}
	return false
}

func isLayer(mediaType string) bool {
	return strings.Contains(mediaType, "layer") || strings.Contains(mediaType, "rootfs")
}

// errNoBag says a path holds no bag ctrforensics can append to.
var errNoBag = errors.New("not an evidence bundle")

// ReadCustody returns a bundle's chain of custody and the digest of its tag
// manifest.
func ReadCustody(p string) ([]custody.Entry, string, error) {
	files, err := readRootFiles(p, custody.FileName, TagManifest)
	if err != nil {
		return nil, "", err
	}
	if files[TagManifest] == nil {
		return nil, "", fmt.Errorf("%s: %w (no %s)", p, errNoBag, TagManifest)
	}
	chain, err := custody.Read(bytes.NewReader(files[custody.FileName]))
	return chain, digestOf(files[TagManifest]), err
}

// AddCustody appends an event to a bundle's chain of custody and returns the
// new head digest. No other file of the bag changes; a tar is rewritten with
// every other entry byte for byte the same.
func AddCustody(p, action, actor, note string, key ed25519.PrivateKey) (string, error) {
	chain, bag, err := ReadCustody(p)
	if err != nil {
		return "", err
	}
	line, err := custody.Next(chain, time.Now(), action, actor, note, bag, key)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	if fi.IsDir() {
		err = appendLine(filepath.Join(p, custody.FileName), line)
	} else {
		err = rewriteTar(p, line)
	}
	if err != nil {
		return "", fmt.Errorf("append custody event to %s: %w", p, err)
	}
	return custody.LineDigest(line), nil
}

func appendLine(file string, line []byte) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readRootFiles returns the content of the named files at the root of a bag
// directory or tar.
func readRootFiles(p string, names ...string) (map[string][]byte, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	if fi.IsDir() {
		for _, n := range names {
			if b, err := readNoFollow(filepath.Join(p, n)); err == nil {
				out[n] = b
			}
		}
		return out, nil
	}
	err = eachTarEntry(p, func(name string, hdr *tar.Header, r io.Reader) error {
		for _, n := range names {
			if name == n && hdr.Typeflag == tar.TypeReg {
				b, err := io.ReadAll(io.LimitReader(r, 64<<20))
				if err != nil {
					return err
				}
				out[n] = b
			}
		}
		return nil
	})
	return out, err
}

// readNoFollow reads a small file of a bag, refusing a symlink.
func readNoFollow(p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 64<<20))
}

// eachTarEntry calls fn for each entry of a (gzip-compressed) tar bag with its
// name relative to the bag root (the top-level directory stripped).
func eachTarEntry(p string, fn func(rel string, hdr *tar.Header, r io.Reader) error) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := maybeGunzip(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if err := fn(stripTop(hdr.Name), hdr, tr); err != nil {
			return err
		}
	}
}

func stripTop(name string) string {
	name = strings.TrimPrefix(name, "./")
	if _, rest, ok := strings.Cut(name, "/"); ok {
		return rest
	}
	return ""
}

func maybeGunzip(f *os.File) (io.Reader, error) {
	var magic [2]byte
	n, _ := io.ReadFull(f, magic[:])
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if n == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		return gzip.NewReader(f)
	}
	return f, nil
}

// rewriteTar copies a tar bag with line appended to its custody chain, into a
// new file renamed over the old one.
func rewriteTar(p string, line []byte) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	gz := false
	var magic [2]byte
	if n, _ := io.ReadFull(f, magic[:]); n == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz = true
	}
	tmp := p + PartialSuffix
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	err = copyTarAppending(p, out, gz, line)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// PartialSuffix marks a file being rewritten.
const PartialSuffix = ".custody-partial"

func copyTarAppending(p string, out io.Writer, gz bool, line []byte) error {
	appended := false
	var w io.Writer = out
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(out)
		w = zw
	}
	tw := tar.NewWriter(w)
	err := eachTarEntry(p, func(rel string, hdr *tar.Header, r io.Reader) error {
		if rel != custody.FileName {
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			_, err := io.Copy(tw, r)
			return err
		}
		old, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		appended = true
		h := *hdr
		h.Size = int64(len(old) + len(line))
		h.ModTime = time.Now()
		if err := tw.WriteHeader(&h); err != nil {
			return err
		}
		_, err = tw.Write(append(old, line...))
		return err
	})
	if err != nil {
		return err
	}
	if !appended {
		return fmt.Errorf("%s has no %s to append to", p, custody.FileName)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if zw != nil {
		return zw.Close()
	}
	return nil
}
