// Package version reports the build of ctrforensics. Version and Commit are
// set at link time by the Makefile (-ldflags -X). A plain `go build` inside a
// git checkout still records its commit: Go stamps it into the build info,
// and Info falls back to it, so no binary reports an unknown source.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by the linker: -X github.com/ctrforensics/ctrforensics/internal/version.Version=...
var (
	// Version is the release, or "dev".
	Version = "dev"
	// Commit is the git commit the binary was built from.
	Commit = "unknown"
)

// Build describes the running binary.
type Build struct {
	// Version is the release (from the linker), or "dev".
	Version string
	// Commit is the git commit, from the linker or else from Go's VCS
	// stamp ("unknown" when neither has it). A commit from the VCS stamp
	// of a dirty tree ends in "-dirty".
	Commit string
	// Go is the Go release the binary was built with.
	Go string
}

// Info returns the build of the running binary.
func Info() Build {
	b := Build{Version: Version, Commit: Commit, Go: runtime.Version()}
	if b.Commit != "unknown" && b.Commit != "" {
		return b
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		b.Commit = vcsCommit(info.Settings)
	}
	return b
}

// vcsCommit returns the short commit of Go's VCS build settings, with
// "-dirty" when the tree had changes, or "unknown".
func vcsCommit(settings []debug.BuildSetting) string {
	var rev string
	var dirty bool
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "unknown"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

// String describes the build in one line: version, commit and Go version.
func String() string {
	b := Info()
	return fmt.Sprintf("%s (commit %s, %s)", b.Version, b.Commit, b.Go)
}
