package packages

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strconv"
)

// Status is the integrity of one file against its package's record.
type Status string

// The results of a file's check.
const (
	// OK: the content matches the record (and mode and owner where recorded).
	OK Status = "ok"
	// Modified: the content, mode or owner differs from the record.
	Modified Status = "modified"
	// ConfigModified: a configuration file differs from the record (expected
	// of a configured system, reported all the same).
	ConfigModified Status = "config-modified"
	// Missing: a recorded file is gone (or is no longer a regular file).
	Missing Status = "missing"
	// NotOwned: a new file in a directory that holds package files.
	NotOwned Status = "not-owned"
	// DatabaseChanged: a package database or record file itself changed.
	DatabaseChanged Status = "db-changed"
)

// Result is the check of one file.
type Result struct {
	Path    string `json:"path"`
	Status  Status `json:"status"`
	Package string `json:"package,omitempty"`
	Version string `json:"version,omitempty"`
	Type    Type   `json:"type,omitempty"`
	// Recorded is the path as the record names it, when it differs (merged
	// /usr, diversions).
	Recorded  string `json:"recorded_path,omitempty"`
	Algorithm string `json:"algorithm,omitempty"`
	Expected  string `json:"expected,omitempty"`
	Actual    string `json:"actual,omitempty"`
	// Changed names what differs: content, mode, uid, gid.
	Changed []string `json:"changed,omitempty"`
	Config  bool     `json:"config,omitempty"`
}

// Target is a path to check, with what the diff says of it.
type Target struct {
	Path  string
	Added bool
}

// Stat is what the verifier needs of a file on disk.
type Stat struct {
	Regular  bool
	Mode     uint32 // permission, setuid, setgid and sticky bits
	UID, GID uint32
}

// Check compares one file, found at p with st and content r (nil when it
// does not exist), with its record.
func Check(p string, recorded string, rec Owned, st *Stat, r io.Reader) (Result, error) {
	actual := ""
	if h := newHash(rec.Algorithm); h != nil && r != nil && st != nil && st.Regular {
		if _, err := io.Copy(h, r); err != nil {
			return compare(p, recorded, rec, st, ""), fmt.Errorf("hash %s: %w", esc(p), err)
		}
		actual = hex.EncodeToString(h.Sum(nil))
	}
	return compare(p, recorded, rec, st, actual), nil
}

// compare is Check once the content's digest (hex, in rec.Algorithm; empty
// when not computed) is known.
func compare(p string, recorded string, rec Owned, st *Stat, actual string) Result {
	res := Result{Path: p, Package: rec.Package, Version: rec.Version, Type: rec.Type, Algorithm: rec.Algorithm,
		Expected: rec.Digest, Config: rec.Config}
	if recorded != p {
		res.Recorded = recorded
	}
	if st == nil || !st.Regular {
		res.Status = Missing
		return res
	}
	if actual != "" {
		res.Actual = actual
		if res.Actual != rec.Digest {
			res.Changed = append(res.Changed, "content")
		}
	}
	if rec.HasOwner {
		if st.Mode&0o7777 != rec.Mode&0o7777 {
			res.Changed = append(res.Changed, "mode")
		}
		if st.UID != rec.UID {
			res.Changed = append(res.Changed, "uid")
		}
		if st.GID != rec.GID {
			res.Changed = append(res.Changed, "gid")
		}
	}
	switch {
	case len(res.Changed) == 0:
		res.Status = OK
	case rec.Config:
		res.Status = ConfigModified
	default:
		res.Status = Modified
	}
	return res
}

func newHash(alg string) hash.Hash {
	switch alg {
	case "md5":
		return md5.New()
	case "sha1":
		return sha1.New()
	case "sha256":
		return sha256.New()
	}
	return nil
}

func decodeBase64Hex(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	return hex.EncodeToString(b), err
}

func decodeBase64URLHex(s string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return hex.EncodeToString(b), err
}

func parseUint(s string, base int) (uint32, error) {
	n, err := strconv.ParseUint(s, base, 32)
	return uint32(n), err
}
