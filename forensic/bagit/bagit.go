// Package bagit writes, packs and verifies BagIt 1.0 bags (RFC 8493), the
// integrity layer of an evidence bundle.
//
// A bag is a directory holding bagit.txt, bag-info.txt, one payload manifest
// per algorithm (manifest-<alg>.txt), one tag manifest per algorithm
// (tagmanifest-<alg>.txt), optional tag files and the payload under data/.
// Manifest lines are "<lowercase hex>  <path>" with paths relative to the bag
// root, so that "sha256sum -c manifest-sha256.txt" run in the bag checks the
// payload too (except for names holding CR, LF or %, which RFC 8493 requires
// to be percent-encoded).
package bagit

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"path"
	"strings"
)

// Algorithm names a checksum algorithm as it appears in manifest file names.
type Algorithm string

// The algorithms a bag may use.
const (
	MD5    Algorithm = "md5"
	SHA1   Algorithm = "sha1"
	SHA256 Algorithm = "sha256"
	SHA512 Algorithm = "sha512"
)

// Field is one bag-info.txt line.
type Field struct {
	Label, Value string
}

// Names of the tag files the package writes and reads.
const (
	bagitTxt     = "bagit.txt"
	bagInfoTxt   = "bag-info.txt"
	fetchTxt     = "fetch.txt"
	payloadDir   = "data"
	payloadRoot  = "data/"
	bagitVersion = "1.0"
)

// Labels of bag-info.txt the package reads or fills in.
const (
	labelOxum = "Payload-Oxum"
	labelDate = "Bagging-Date"
)

// algIndex numbers the known algorithms for compact per-file state.
type algIndex uint8

const (
	idxMD5 algIndex = iota
	idxSHA1
	idxSHA256
	idxSHA512
	numAlgs
)

// algSpec describes one algorithm.
type algSpec struct {
	name Algorithm
	size int
	new  func() hash.Hash
}

// algSpecs is the constant table of known algorithms, indexed by algIndex.
var algSpecs = [numAlgs]algSpec{
	idxMD5:    {MD5, md5.Size, md5.New},
	idxSHA1:   {SHA1, sha1.Size, sha1.New},
	idxSHA256: {SHA256, sha256.Size, sha256.New},
	idxSHA512: {SHA512, sha512.Size, sha512.New},
}

// algSet is a set of algorithms, one bit per algIndex.
type algSet uint8

const (
	allAlgs     algSet = 1<<numAlgs - 1
	defaultAlgs algSet = 1<<idxSHA256 | 1<<idxSHA512
)

func (s algSet) has(i algIndex) bool { return s&(1<<i) != 0 }

func (s algSet) with(i algIndex) algSet { return s | 1<<i }

// list returns the algorithms of s in table order.
func (s algSet) list() []Algorithm {
	var out []Algorithm
	for i := algIndex(0); i < numAlgs; i++ {
		if s.has(i) {
			out = append(out, algSpecs[i].name)
		}
	}
	return out
}

// lookupAlg returns the index of a known algorithm.
func lookupAlg(a Algorithm) (algIndex, bool) {
	for i, spec := range algSpecs {
		if spec.name == a {
			return algIndex(i), true
		}
	}
	return 0, false
}

// ParseAlgorithms parses a comma-separated list such as "sha256,sha512".
// Names are case-insensitive and may be surrounded by spaces; duplicates are
// dropped. An unknown or empty name is an error naming it.
func ParseAlgorithms(csv string) ([]Algorithm, error) {
	var set algSet
	var out []Algorithm
	for _, name := range strings.Split(csv, ",") {
		a := Algorithm(strings.ToLower(strings.TrimSpace(name)))
		i, ok := lookupAlg(a)
		if !ok {
			return nil, fmt.Errorf("parse algorithms %q: unknown algorithm %q (want md5, sha1, sha256 or sha512)", csv, name)
		}
		if !set.has(i) {
			set = set.with(i)
			out = append(out, a)
		}
	}
	return out, nil
}

// algSetOf converts algorithms to a set, defaulting to sha256 and sha512.
func algSetOf(algs []Algorithm) (algSet, error) {
	if len(algs) == 0 {
		return defaultAlgs, nil
	}
	var set algSet
	for _, a := range algs {
		i, ok := lookupAlg(a)
		if !ok {
			return 0, fmt.Errorf("unknown algorithm %q", a)
		}
		set = set.with(i)
	}
	return set, nil
}

// manifestName returns the manifest or tag manifest file name for algorithm i.
func manifestName(tag bool, i algIndex) string {
	if tag {
		return "tagmanifest-" + string(algSpecs[i].name) + ".txt"
	}
	return "manifest-" + string(algSpecs[i].name) + ".txt"
}

// parseManifestName reports whether name (a bag-relative path) is a payload or
// tag manifest at the bag root, and for which algorithm, known or not.
func parseManifestName(name string) (alg Algorithm, tag, isManifest bool) {
	rest, tag := strings.CutPrefix(name, "tag")
	rest, ok := strings.CutPrefix(rest, "manifest-")
	if !ok || strings.Contains(rest, "/") {
		return "", false, false
	}
	rest, ok = strings.CutSuffix(rest, ".txt")
	if !ok || rest == "" {
		return "", false, false
	}
	return Algorithm(rest), tag, true
}

// encodePath percent-encodes CR, LF and % as RFC 8493 requires of manifest
// file paths.
func encodePath(p string) string {
	if !strings.ContainsAny(p, "\r\n%") {
		return p
	}
	r := strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
	return r.Replace(p)
}

// decodePath reverses encodePath. Other percent sequences are left alone, as
// RFC 8493 encodes nothing else.
func decodePath(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	r := strings.NewReplacer("%25", "%", "%0D", "\r", "%0d", "\r", "%0A", "\n", "%0a", "\n")
	return r.Replace(p)
}

// checkRel reports why rel is not a clean relative slash-separated path
// without "." or ".." components, or "" when it is one.
func checkRel(rel string) string {
	switch {
	case rel == "":
		return "empty path"
	case strings.HasPrefix(rel, "/"):
		return "absolute path"
	case strings.ContainsRune(rel, 0):
		return "NUL byte in path"
	}
	for rest := rel; rest != ""; {
		var c string
		c, rest, _ = strings.Cut(rest, "/")
		if c == ".." {
			return `".." in path`
		}
	}
	if path.Clean(rel) != rel {
		return "path is not canonical (empty or \".\" component, or trailing slash)"
	}
	return ""
}

// oneLine makes s safe for a one-line Problem detail.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}
