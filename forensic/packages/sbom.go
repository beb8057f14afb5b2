package packages

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// Subject is what an SBOM describes: an image or a container.
type Subject struct {
	// Kind is "image" or "container".
	Kind string
	// Name is the image reference or the container ID.
	Name string
	// Digest is the image's manifest digest, when known.
	Digest string
	// Tool names the producing tool and its version ("ctrforensics 1.2").
	Tool string
	// Time is the document's creation time.
	Time time.Time
}

// WriteCycloneDX writes inv as a CycloneDX 1.6 JSON BOM: the subject as the
// metadata component, one library or operating-system component per package
// with a unique bom-ref, its purl and licences.
func WriteCycloneDX(w io.Writer, subj Subject, inv *Inventory) error {
	bom := cdx.NewBOM()
	bom.SerialNumber = "urn:uuid:" + uuidOf("cyclonedx", subj, inv)
	root := &cdx.Component{BOMRef: "subject", Type: cdx.ComponentTypeContainer, Name: subj.Name, Version: subj.Digest}
	bom.Metadata = &cdx.Metadata{
		Timestamp: subj.Time.UTC().Format(time.RFC3339),
		Component: root,
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{
			{Type: cdx.ComponentTypeApplication, Name: toolName(subj), Version: toolVersion(subj)}}},
	}
	comps := make([]cdx.Component, 0, len(inv.Packages)+1)
	deps := make([]string, 0, len(inv.Packages))
	if inv.Distro.ID != "" {
		comps = append(comps, cdx.Component{BOMRef: "os", Type: cdx.ComponentTypeOS, Name: inv.Distro.ID,
			Version: inv.Distro.VersionID, Description: inv.Distro.Name})
		deps = append(deps, "os")
	}
	for i, p := range inv.Packages {
		ref := "pkg-" + strconv.Itoa(i)
		c := cdx.Component{BOMRef: ref, Type: cdx.ComponentTypeLibrary, Name: p.Name, Version: p.Version, PackageURL: p.PURL}
		if len(p.Licenses) > 0 {
			ls := cdx.Licenses{}
			for _, l := range p.Licenses {
				ls = append(ls, cdx.LicenseChoice{License: &cdx.License{Name: l}})
			}
			c.Licenses = &ls
		}
		props := []cdx.Property{{Name: "ctrforensics:package:type", Value: string(p.Type)},
			{Name: "ctrforensics:package:source", Value: p.Source}}
		if p.Layer != nil {
			props = append(props, cdx.Property{Name: "ctrforensics:package:layer", Value: strconv.Itoa(*p.Layer)})
		}
		if p.Origin != "" {
			props = append(props, cdx.Property{Name: "ctrforensics:package:origin", Value: string(p.Origin)})
		}
		c.Properties = &props
		comps = append(comps, c)
		deps = append(deps, ref)
	}
	bom.Components = &comps
	bom.Dependencies = &[]cdx.Dependency{{Ref: "subject", Dependencies: &deps}}
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_6); err != nil {
		return fmt.Errorf("write CycloneDX: %w", err)
	}
	return nil
}

// WriteSPDX writes inv as an SPDX 2.3 JSON document: the document DESCRIBES
// the subject's package, which CONTAINS every package (each with its purl as
// a PACKAGE-MANAGER reference).
func WriteSPDX(w io.Writer, subj Subject, inv *Inventory) error {
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      subj.Kind + " " + subj.Name,
		DocumentNamespace: "https://ctrforensics.invalid/spdx/" + subj.Kind + "/" + uuidOf("spdx", subj, inv),
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: toolName(subj) + "-" + toolVersion(subj)}},
			Created:  subj.Time.UTC().Format(time.RFC3339),
		},
	}
	root := &spdx.Package{PackageName: subj.Name, PackageSPDXIdentifier: "Subject", PackageVersion: subj.Digest,
		PackageDownloadLocation: "NOASSERTION", PackageLicenseConcluded: "NOASSERTION",
		PackageLicenseDeclared: "NOASSERTION", PackageCopyrightText: "NOASSERTION"}
	doc.Packages = []*spdx.Package{root}
	doc.Relationships = []*spdx.Relationship{{RefA: common.MakeDocElementID("", "DOCUMENT"),
		RefB: common.MakeDocElementID("", "Subject"), Relationship: common.TypeRelationshipDescribe}}
	for i, p := range inv.Packages {
		id := common.ElementID("Package-" + strconv.Itoa(i))
		sp := &spdx.Package{PackageName: p.Name, PackageSPDXIdentifier: id, PackageVersion: p.Version,
			PackageDownloadLocation: "NOASSERTION", PackageLicenseConcluded: "NOASSERTION",
			PackageLicenseDeclared: spdxLicense(p.Licenses), PackageCopyrightText: "NOASSERTION",
			PackageSourceInfo: "read from " + p.Source,
			PackageExternalReferences: []*spdx.PackageExternalReference{
				{Category: common.CategoryPackageManager, RefType: "purl", Locator: p.PURL}}}
		doc.Packages = append(doc.Packages, sp)
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{RefA: common.MakeDocElementID("", "Subject"),
			RefB: common.MakeDocElementID("", string(id)), Relationship: common.TypeRelationshipContains})
	}
	if err := spdxjson.Write(doc, w, spdxjson.Indent("  ")); err != nil {
		return fmt.Errorf("write SPDX: %w", err)
	}
	return nil
}

// spdxID matches a licence that is a plain SPDX expression of identifiers.
var spdxID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+-]*( (AND|OR|WITH) [A-Za-z0-9][A-Za-z0-9.+-]*)*$`)

// spdxLicense returns the declared licence when the recorded text is an SPDX
// expression, NOASSERTION otherwise (free text is no valid licenseDeclared).
func spdxLicense(ls []string) string {
	if len(ls) == 1 && spdxID.MatchString(ls[0]) {
		return ls[0]
	}
	return "NOASSERTION"
}

func toolName(s Subject) string {
	n, _, _ := strings.Cut(s.Tool, " ")
	if n == "" {
		return "ctrforensics"
	}
	return n
}

func toolVersion(s Subject) string {
	_, v, _ := strings.Cut(s.Tool, " ")
	if v == "" {
		return "unknown"
	}
	return v
}

// uuidOf derives a version 5 style UUID from the document's content, so the
// same inventory gives the same serial number and namespace.
func uuidOf(kind string, subj Subject, inv *Inventory) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00", kind, subj.Kind, subj.Name, subj.Digest, subj.Time.UTC().Format(time.RFC3339Nano))
	for _, p := range inv.Packages {
		fmt.Fprintf(h, "%s\x00%s\x00", p.PURL, p.Source)
	}
	b := h.Sum(nil)[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b)
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}
