// Package version reports the build of ctrforensics. Version and Commit are set
// at link time by the Makefile (-ldflags -X); a plain `go build` says "dev".
package version

import (
	"fmt"
	"runtime"
)

// Set by the linker: -X github.com/ctrforensics/ctrforensics/internal/version.Version=...
var (
	// Version is the release, or "dev".
	Version = "dev"
	// Commit is the git commit the binary was built from.
	Commit = "unknown"
)

// String describes the build in one line: version, commit and Go version.
func String() string {
	return fmt.Sprintf("%s (commit %s, %s)", Version, Commit, runtime.Version())
}

// Agent names the tool for logs and bundles, e.g. "ctrforensics/0.1.0".
func Agent() string {
	return "ctrforensics/" + Version
}
