// Package bundle is ctrforensics's evidence format, written and read in one
// place: a BagIt bag (package bagit) holding a container's acquisition, its
// acquisition record (metadata/acquisition.json), an optional DSSE signature
// over the tag manifests (package attest) and a chain of custody (package
// custody). layout.go names every path of a bundle; Writer writes one
// (Create, Put..., Seal, Commit or Abandon), Verify checks one and
// AddCustody extends its chain.
//
// Invariants: a bundle appears at its final path only once sealed (it is
// built under a partial name next to it); after sealing, only the custody
// chain changes, by appending; a tar bundle is never extracted to be read.
package bundle
