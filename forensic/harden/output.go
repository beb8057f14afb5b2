package harden

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// tmpfsOptions are the options of every proposed tmpfs: nothing run from it,
// no setuid, no devices.
const tmpfsOptions = "rw,noexec,nosuid,nodev"

// RunFlags returns the nerdctl/docker run flags that run the container with
// a read-only root filesystem and p's writable directories: a tmpfs for
// temporary and logs, a named volume (volumePrefix plus the path) for state.
func RunFlags(p *Profile, volumePrefix string) []string {
	flags := []string{"--read-only"}
	for _, w := range p.Writable {
		switch w.Class {
		case State:
			flags = append(flags, "--mount", fmt.Sprintf("type=volume,src=%s,dst=%s", volumePrefix+volumeName(w.Path), w.Path))
		default:
			flags = append(flags, "--tmpfs", fmt.Sprintf("%s:%s,size=%dm", w.Path, tmpfsOptions, w.SizeLimit/mib))
		}
	}
	return flags
}

// ShellQuote quotes a word for a POSIX shell when it needs it.
func ShellQuote(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,@+%", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

// volumeName turns a path into a Kubernetes/volume name: lower case letters,
// digits and dashes, at most 63 characters.
func volumeName(p string) string {
	n := strings.Trim(nonName.ReplaceAllString(strings.ToLower(p), "-"), "-")
	if n == "" {
		n = "root"
	}
	if len(n) > 63 {
		n = strings.Trim(n[len(n)-63:], "-")
	}
	return n
}

// KubernetesPatch returns a strategic merge patch (YAML) for a pod spec that
// runs container with a read-only root filesystem and p's writable
// directories as emptyDir volumes (in memory for temporary ones), each with a
// sizeLimit; a state directory is marked for a PersistentVolumeClaim.
func KubernetesPatch(p *Profile, container string) string {
	var b strings.Builder
	q := strconv.Quote
	b.WriteString("spec:\n  containers:\n")
	fmt.Fprintf(&b, "  - name: %s\n    securityContext:\n      readOnlyRootFilesystem: true\n", q(container))
	if len(p.Writable) == 0 {
		return b.String()
	}
	b.WriteString("    volumeMounts:\n")
	for _, w := range p.Writable {
		fmt.Fprintf(&b, "    - name: %s\n      mountPath: %s\n", q(volumeName(w.Path)), q(w.Path))
	}
	b.WriteString("  volumes:\n")
	for _, w := range p.Writable {
		fmt.Fprintf(&b, "  - name: %s\n", q(volumeName(w.Path)))
		if w.Class == State {
			fmt.Fprintf(&b, "    # state (%d bytes observed): use a persistentVolumeClaim to keep it across restarts\n", w.Bytes)
		}
		b.WriteString("    emptyDir:\n")
		if w.Class != State {
			b.WriteString("      medium: Memory\n")
		}
		fmt.Fprintf(&b, "      sizeLimit: %dMi\n", w.SizeLimit/mib)
	}
	return b.String()
}
