package harden

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ctrforensics/ctrforensics/forensic"
)

// Tmpfs is what the container was seen to write in one writable tmpfs mount
// of its runtime spec (/dev/shm, /run...), whose entries the diff lists
// beside the snapshot's, and what that says for a read-only run.
type Tmpfs struct {
	// Path is the mount's destination in the container.
	Path string `json:"path"`
	// Examined says its entries were read (through the running task's mount
	// namespace); Note says why not (a tmpfs dies with its task).
	Examined bool   `json:"examined"`
	Note     string `json:"note,omitempty"`
	// Files and Bytes are the entries (directories and the runtime's own
	// entries left out) and the bytes of its regular files.
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
	// Executables are its executable regular files.
	Executables []string `json:"executables"`
	// KeepWritable says the container wrote there: a read-only run must keep
	// the mount writable.
	KeepWritable bool `json:"keep_writable"`
	// AddOptions are the mount options what was found justifies and the spec
	// lacks: noexec (an executable was dropped), nosuid (a setuid or setgid
	// file), nodev (a device node).
	AddOptions []string `json:"add_options"`
}

// tmpfsDrift is the reason of an executable dropped in a tmpfs mount.
const tmpfsDrift = "new executable file in a tmpfs mount"

// deriveTmpfs advises on every writable tmpfs mount of mounts from the
// changes found in it (Source tmpfs, Mount its destination), and returns the
// drift those changes are: the executables dropped there.
func deriveTmpfs(mounts []forensic.Mount, changes []forensic.Change) ([]Tmpfs, []Drift) {
	out := []Tmpfs{}
	byMount := map[string]*Tmpfs{}
	for _, m := range mounts {
		if m.Kind != forensic.SourceTmpfs || !m.Writable {
			continue
		}
		out = append(out, Tmpfs{Path: m.Destination, Examined: m.Examined, Note: m.Note, Executables: []string{}, AddOptions: []string{}})
	}
	for i := range out {
		byMount[out[i].Path] = &out[i]
	}
	drift := []Drift{}
	found := map[string]map[string]bool{} // mount -> option -> justified
	for i := range changes {
		c := &changes[i]
		t := byMount[c.Mount]
		if c.Source != forensic.SourceTmpfs || t == nil || c.Runtime || c.Meta == nil || c.Meta.Type == forensic.TypeDir {
			continue
		}
		t.Files++
		if found[t.Path] == nil {
			found[t.Path] = map[string]bool{}
		}
		switch c.Meta.Type {
		case forensic.TypeFile:
			t.Bytes += c.Meta.Size
			if c.Meta.Mode&0o111 != 0 {
				t.Executables = append(t.Executables, c.Path)
				drift = append(drift, Drift{Kind: c.Kind, Path: c.Path, Reason: tmpfsDrift + " (" + t.Path + ")"})
				found[t.Path]["noexec"] = true
			}
			if c.Meta.Mode&0o6000 != 0 {
				found[t.Path]["nosuid"] = true
			}
		case forensic.TypeChar, forensic.TypeBlock:
			found[t.Path]["nodev"] = true
		}
	}
	for i := range out {
		t := &out[i]
		t.KeepWritable = t.Files > 0
		opts := specOptions(mounts, t.Path)
		for _, o := range []string{"noexec", "nosuid", "nodev"} {
			if found[t.Path][o] && !opts[o] {
				t.AddOptions = append(t.AddOptions, o)
			}
		}
		sort.Strings(t.Executables)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, drift
}

// specOptions are the options of the spec's mount at dest.
func specOptions(mounts []forensic.Mount, dest string) map[string]bool {
	opts := map[string]bool{}
	for _, m := range mounts {
		if m.Destination == dest {
			for _, o := range m.Options {
				opts[o] = true
			}
		}
	}
	return opts
}

// TmpfsAdvice is one line of advice on a tmpfs mount, for people: what was
// found there and what to do about it.
func TmpfsAdvice(t Tmpfs) string {
	switch {
	case !t.Examined && strings.HasPrefix(t.Note, "not examined"):
		return t.Note
	case !t.Examined:
		return "not examined: " + t.Note
	case !t.KeepWritable:
		return "nothing written seen"
	}
	var b strings.Builder
	b.WriteString("written: keep it writable")
	if len(t.AddOptions) > 0 {
		b.WriteString("; mount it " + strings.Join(t.AddOptions, ","))
	}
	if n := len(t.Executables); n > 0 {
		fmt.Fprintf(&b, "; %d executable(s) dropped there (drift)", n)
	}
	return b.String()
}
