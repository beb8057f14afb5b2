// Package harden derives, from a container's observed changes (its diff
// against its image), what it needs to run with a read-only root filesystem:
// the smallest set of directories that must stay writable, each with the
// bytes written there and a class (temporary, state, logs), and, separately,
// the drift: changes that must never be made writable (image files whose
// content changed, new executables, new files in web roots and system
// directories). The article's defaced index.html and dropped shell.php are
// drift, never writable. What the container wrote in the writable tmpfs
// mounts of its spec (read through the task's mount namespace) says which of
// them a read-only run must keep writable, and which options what was found
// there justifies (an executable dropped in /dev/shm: noexec; it is drift
// too).
//
// Invariants: Derive is a pure function of the changes; a change is either in
// the writable set or in the drift, never both; the writable directories
// never nest; everything is sorted, so the same changes give the same
// profile. It only knows what was observed: a path the workload writes later
// is not covered (callers say how long the container ran).
package harden

import (
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/ctrforensics/ctrforensics/forensic"
)

// Class says what a writable directory holds, which decides its mount.
type Class string

// The classes.
const (
	// Temporary: tmp, run, lock and pid files, caches, sockets -> tmpfs.
	Temporary Class = "temporary"
	// State: data the workload keeps (/var/lib/..., data directories) -> a volume.
	State Class = "state"
	// Logs: /var/log and *.log -> tmpfs (or log to stdout).
	Logs Class = "logs"
)

// Writable is one directory that must stay writable.
type Writable struct {
	Path  string `json:"path"`
	Class Class  `json:"class"`
	// Bytes and Files are what the container wrote below Path.
	Bytes int64 `json:"bytes"`
	Files int   `json:"files"`
	// SizeLimit is the proposed size of a tmpfs or emptyDir: twice the
	// observed bytes, at least 1 MiB, rounded up to a MiB.
	SizeLimit int64 `json:"size_limit"`
}

// Drift is one change that must not be made writable.
type Drift struct {
	Kind   forensic.Kind `json:"kind"`
	Path   string        `json:"path"`
	Reason string        `json:"reason"`
}

// Profile is what Derive found.
type Profile struct {
	Writable []Writable `json:"writable"`
	Drift    []Drift    `json:"drift"`
	// Tmpfs has one entry per writable tmpfs mount of the spec.
	Tmpfs []Tmpfs `json:"tmpfs"`
}

// webRoots are directories web servers serve files from.
var webRoots = []string{"/var/www", "/srv/www", "/srv/http", "/usr/share/nginx/html", "/usr/local/apache2/htdocs",
	"/usr/local/nginx/html", "/var/lib/nginx/html", "/opt/lampp/htdocs"}

// systemDirs hold the system's programs and configuration.
var systemDirs = []string{"/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot"}

// anchors are the directories whose direct subdirectories are one writable
// unit each ("/var/lib/mysql", "/run/nginx"), with their class.
var anchors = []struct {
	dir   string
	class Class
	// whole says the directory itself is the unit (/tmp), not its children.
	whole bool
}{
	{"/tmp", Temporary, true}, {"/var/tmp", Temporary, true}, {"/dev/shm", Temporary, true},
	{"/run/lock", Temporary, false}, {"/var/run/lock", Temporary, false}, {"/run", Temporary, false},
	{"/var/run", Temporary, false}, {"/var/lock", Temporary, false}, {"/var/cache", Temporary, false},
	{"/var/log", Logs, false}, {"/var/lib", State, false}, {"/var/spool", State, false},
}

// Derive computes the profile of changes. The snapshot's changes give the
// writable directories and the drift: paths the runtime created and
// deletions lost with a directory are left out; a directory listed only as
// the parent of a change says nothing by itself. The changes found in the
// writable tmpfs mounts among mounts (the spec's, as ExamineMounts records
// them) give each such mount its advice (Tmpfs), and an executable dropped
// in one is drift. Changes in other mounts (volumes, bind-mounted files)
// are left out.
func Derive(changes []forensic.Change, mounts []forensic.Mount) *Profile {
	p := &Profile{Writable: []Writable{}, Drift: []Drift{}}
	units := map[string]*Writable{}
	hasChild := childDirs(changes)
	p.Tmpfs, p.Drift = deriveTmpfs(mounts, changes)
	for i := range changes {
		c := &changes[i]
		if c.Source != forensic.SourceSnapshot || c.Runtime || c.LostWith != "" || c.CopyUpOnly {
			continue
		}
		isDir := c.Meta != nil && c.Meta.Type == forensic.TypeDir
		if isDir && (c.Kind == forensic.Changed || hasChild[c.Path]) {
			continue // a parent of changes, or a directory whose content decides
		}
		if reason := driftReason(c); reason != "" {
			p.Drift = append(p.Drift, Drift{Kind: c.Kind, Path: c.Path, Reason: reason})
			continue
		}
		dir, class := unit(c.Path, isDir)
		w := units[dir]
		if w == nil {
			w = &Writable{Path: dir, Class: class}
			units[dir] = w
		}
		if !isDir {
			w.Files++
			if c.Meta != nil && c.Meta.Type == forensic.TypeFile {
				w.Bytes += c.Meta.Size
			}
		}
	}
	p.Writable = merge(units)
	sort.Slice(p.Drift, func(i, j int) bool { return p.Drift[i].Path < p.Drift[j].Path })
	return p
}

// childDirs marks every directory that has a changed entry below it.
func childDirs(changes []forensic.Change) map[string]bool {
	m := map[string]bool{}
	for _, c := range changes {
		if c.Source != forensic.SourceSnapshot || c.Runtime || c.LostWith != "" {
			continue
		}
		for d := path.Dir(c.Path); d != "/" && d != "."; d = path.Dir(d) {
			m[d] = true
		}
	}
	return m
}

// driftReason says why a change must not be made writable, or "".
func driftReason(c *forensic.Change) string {
	switch c.Kind {
	case forensic.Deleted:
		return "a file of the image was deleted"
	case forensic.Changed:
		if changed, _ := c.ContentChanged(); changed {
			return "content of a file of the image changed"
		}
		return "metadata of a file of the image changed"
	}
	if c.Meta != nil && c.Meta.Type == forensic.TypeFile && c.Meta.Mode&0o111 != 0 {
		return "new executable file"
	}
	if within(c.Path, webRoots) {
		return "new file in a web root"
	}
	if within(c.Path, systemDirs) {
		return "new file in a system directory"
	}
	return ""
}

func within(p string, dirs []string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// unit returns the writable directory a path belongs to and its class.
func unit(p string, isDir bool) (string, Class) {
	dir := path.Dir(p)
	if isDir {
		dir = p
	}
	for _, a := range anchors {
		rest, ok := strings.CutPrefix(dir, a.dir)
		if !ok || (rest != "" && rest[0] != '/') {
			continue
		}
		if a.whole || rest == "" {
			return a.dir, a.class
		}
		first, _, _ := strings.Cut(rest[1:], "/")
		return a.dir + "/" + first, a.class
	}
	switch {
	case strings.HasSuffix(p, ".log"):
		return dir, Logs
	case strings.HasSuffix(p, ".pid"), strings.HasSuffix(p, ".lock"), strings.HasSuffix(p, ".sock"):
		return dir, Temporary
	}
	return dir, State
}

// merge drops the directories inside another, adding their counts to it,
// and sorts the result.
func merge(units map[string]*Writable) []Writable {
	dirs := make([]string, 0, len(units))
	for d := range units {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	out := []Writable{}
	for _, d := range dirs {
		w := *units[d]
		if i := slices.IndexFunc(out, func(o Writable) bool { return o.Path == "/" || strings.HasPrefix(d, o.Path+"/") }); i >= 0 {
			out[i].Bytes += w.Bytes
			out[i].Files += w.Files
			continue
		}
		out = append(out, w)
	}
	for i := range out {
		out[i].SizeLimit = sizeLimit(out[i].Bytes)
	}
	return out
}

// mib is a mebibyte.
const mib = 1 << 20

// sizeLimit is twice bytes, at least 1 MiB, rounded up to a MiB.
func sizeLimit(bytes int64) int64 {
	n := max(2*bytes, mib)
	return (n + mib - 1) / mib * mib
}
