package bundle

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"sort"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ctrforensics/ctrforensics/forensic/attest"
	"github.com/ctrforensics/ctrforensics/forensic/bagit"
	"github.com/ctrforensics/ctrforensics/forensic/custody"
)

// Report is the outcome of Verify.
type Report struct {
	Path string
	// Problems lists every failed check, by file.
	Problems []bagit.Problem
	// Signature is "valid (key ID)", "signed, key not checked", "unsigned" or
	// "invalid: why".
	Signature string
	Custody   []custody.Entry
	// Unprotected are the sequence numbers of the custody events no trusted
	// signature protects, accepted because of AllowUnsignedCustody.
	Unprotected []int
	Head        string
	// Bag is the digest of the bag's tagmanifest-sha256.txt, as the custody
	// events name it.
	Bag          string
	Acquisition  *Acquisition
	PayloadFiles int64
	PayloadBytes int64
	Algorithms   []bagit.Algorithm

	// firstEvent is the digest of the first custody event the attestation
	// names.
	firstEvent string
}

// Valid tells whether every check held.
func (r *Report) Valid() bool { return len(r.Problems) == 0 }

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Keys, when any is given, are the trusted public keys (one per examiner
	// of the chain): the attestation must verify with one of them, and every
	// custody event must be signed by one of them.
	Keys []ed25519.PublicKey
	// AllowUnsignedCustody accepts custody events without a signature under
	// Keys; the report lists them as unprotected.
	AllowUnsignedCustody bool
	// CustodyHead, when set, must be the custody chain's head digest.
	CustodyHead string
	// Custody, when set, is the chain to check instead of the bag's own
	// custody.jsonl: a chain kept next to a bag that cannot be appended to
	// (an object in write-once storage). It must begin with every line of
	// the bag's own chain.
	Custody []byte
}

// Verify checks a bundle (directory, tar or gzip-compressed tar) without
// extracting it: the bag's completeness and every digest, Payload-Oxum, the OCI
// image layout's blobs, the signature and the chain of custody. p itself may
// be a symlink, which is followed; nothing inside the bundle is. The error is
// for a bundle that cannot be read at all (bagit.ErrNotTar for a file that is
// not a tar).
func Verify(ctx context.Context, p string, opts VerifyOptions) (*Report, error) {
	resolved, err := filepath.EvalSymlinks(p)
	if err != nil {
		return nil, fmt.Errorf("verify bundle: %w", err)
	}
	res, err := bagit.Verify(ctx, resolved, bagit.Options{Extra: selfVerifying, Keep: keep})
	if err != nil {
		return nil, err
	}
	return report(p, res, opts), nil
}

// VerifyStream checks a tar or gzip-compressed tar bundle that is not a local
// file, as Verify does: open returns the stream from its start and is called
// once per pass (see bagit.VerifyStream); name is how the report names it.
func VerifyStream(ctx context.Context, name string, open func() (io.ReadCloser, error), opts VerifyOptions) (*Report, error) {
	res, err := bagit.VerifyStream(ctx, open, bagit.Options{Extra: selfVerifying, Keep: keep})
	if err != nil {
		return nil, err
	}
	return report(name, res, opts), nil
}

// report checks what bagit found against the bundle's own rules.
func report(p string, res *bagit.Result, opts VerifyOptions) *Report {
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
	r.Bag = digestOf(res.Files[TagManifest])
	r.checkSignature(res.Files[AttestationFile], res.Files, opts.Keys)
	r.checkCustody(res.Files[CustodyFile], r.Bag, opts)
	r.checkLayout(res)
	sort.SliceStable(r.Problems, func(i, j int) bool { return r.Problems[i].Path < r.Problems[j].Path })
	return r
}

// keep names the files whose content Verify needs: small ones, and under
// data/image the JSON documents (bagit does not return files over 16 MiB, so
// large layer blobs are only hashed).
func keep(p string) bool {
	switch p {
	case CustodyFile, AttestationFile, AcquisitionFile, TagManifest, TagManifestSHA512:
		return true
	}
	return strings.HasPrefix(p, ImageLayoutDir+"/")
}

func (r *Report) problem(p, check, detail string) {
	r.Problems = append(r.Problems, bagit.Problem{Path: p, Check: check, Detail: detail})
}

// checkSignature verifies the DSSE envelope: its statement must name the tag
// manifests with their current digests, and with keys one of its signatures
// must verify with one of them.
func (r *Report) checkSignature(env []byte, files map[string][]byte, keys []ed25519.PublicKey) {
	if env == nil {
		r.Signature = "unsigned"
		if len(keys) > 0 {
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
	st, err := e.Open(keys...)
	switch {
	case errors.Is(err, attest.ErrUnsigned):
		r.Signature = "unsigned (the attestation carries no signature)"
		r.problem(AttestationFile, "signature", "the attestation carries no signature: removed, or never signed")
		return
	case err != nil:
		r.Signature = "invalid: " + err.Error()
		r.problem(AttestationFile, "signature", err.Error())
		return
	}
	if !r.checkSubjects(st, files) {
		return
	}
	var pred predicate
	if json.Unmarshal(st.Predicate, &pred) == nil {
		r.firstEvent = pred.CustodyFirstEvent
	}
	if len(keys) == 0 {
		r.Signature = "signed, key not checked (no public key given)"
		return
	}
	r.Signature = "valid (key " + attest.KeyID(e.Signer(keys...))[:16] + ")"
}

// checkSubjects checks that the statement names the tag manifests with their
// current digests.
func (r *Report) checkSubjects(st *attest.Statement, files map[string][]byte) bool {
	for _, s := range st.Subject {
		want, ok := files[s.Name]
		if !ok || strings.TrimPrefix(digestOf(want), "sha256:") != s.Digest["sha256"] {
			r.Signature = "invalid: " + s.Name + " is not what was signed"
			r.problem(s.Name, "signature", "differs from the signed statement (sha256 "+s.Digest["sha256"]+")")
			return false
		}
	}
	if len(st.Subject) == 0 {
		r.problem(AttestationFile, "signature", "the signed statement names no tag manifest")
	}
	return true
}

func (r *Report) checkCustody(chain []byte, bag string, opts VerifyOptions) {
	if chain == nil {
		r.problem(CustodyFile, "custody", "the chain of custody is missing")
		return
	}
	if opts.Custody != nil {
		if !bytes.HasPrefix(opts.Custody, chain) {
			r.problem(CustodyFile, "custody", "the chain kept next to the bag does not begin with the bag's own chain: "+
				"one of them was edited, or the record belongs to another bag")
		}
		chain = opts.Custody
	}
	entries, err := custody.Read(bytes.NewReader(chain))
	r.Custody, r.Head = entries, custody.Head(entries)
	if err != nil {
		r.problem(CustodyFile, "custody", err.Error())
		return
	}
	want := custody.Expect{Bag: bag, FirstEvent: r.firstEvent, Keys: opts.Keys,
		AllowUnsigned: opts.AllowUnsignedCustody, Head: opts.CustodyHead}
	if r.Acquisition != nil {
		want.Collector, want.CollectedAt = r.Acquisition.CollectedBy, r.Acquisition.CollectedAt
	}
	found := custody.Verify(entries, want)
	for _, msg := range found.Problems {
		r.problem(CustodyFile, "custody", msg)
	}
	r.Unprotected = found.Unprotected
}

// checkLayout checks the image layout: every blob index.json reaches is
// present (layers only when the acquisition says they were included) with the
// size its descriptor gives, and is named by its sha256.
func (r *Report) checkLayout(res *bagit.Result) {
	idx, ok := res.Files[ImagePath("index.json")]
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
		r.problem(ImagePath("index.json"), "oci", err.Error())
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
