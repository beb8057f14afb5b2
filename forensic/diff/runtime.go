package diff

import (
	"github.com/ctrforensics/ctrforensics/forensic"

	"path"
	"sort"
	"strings"
)

// MarkRuntime flags the changes the container runtime made rather than a process
// of the container: the mount points named in the container's OCI spec (runc
// creates them in the container's filesystem when the image lacks them), and
// directories whose only changes below are such mount points and whose own
// metadata differs at most in mtime.
func MarkRuntime(changes []forensic.Change, mountpoints []string) {
	dests := make(map[string]bool, len(mountpoints))
	for _, m := range mountpoints {
		dests[path.Clean("/"+m)] = true
	}
	order := make([]int, len(changes))
	depths := make([]int, len(changes)) // counted once: a path may be long
	for i := range order {
		order[i], depths[i] = i, depth(changes[i].Path)
	}
	// Deepest first, so that a directory is decided after everything below it.
	sort.SliceStable(order, func(a, b int) bool { return depths[order[a]] > depths[order[b]] })
	// below counts, per directory, the runtime and other changes beneath it;
	// each change adds its own counts to its parent, which is decided later.
	type below struct{ runtime, other int }
	counts := make(map[string]*below)
	for _, i := range order {
		c := &changes[i]
		b := counts[c.Path]
		if b == nil {
			b = &below{}
		}
		switch {
		case c.Kind != forensic.Deleted && dests[c.Path]:
			c.Runtime = true
		case c.Kind != forensic.Deleted && c.Meta.Type == forensic.TypeDir && b.runtime+b.other > 0:
			c.Runtime = b.other == 0 && onlyMtime(c.Fields)
		}
		parent := parentPath(c.Path)
		if counts[parent] == nil {
			counts[parent] = &below{}
		}
		counts[parent].runtime += b.runtime
		counts[parent].other += b.other
		if c.Runtime {
			counts[parent].runtime++
		} else {
			counts[parent].other++
		}
	}
}

func onlyMtime(fields []forensic.Field) bool {
	for _, f := range fields {
		if f != forensic.FieldMtime {
			return false
		}
	}
	return true
}

func depth(p string) int { return strings.Count(p, "/") }

func parentPath(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}
