package snapshot

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/ctrforensics/ctrforensics/snapshot/contentdir"
)

// TestErrors checks the typed errors satisfy errdefs, wrapped or not, and
// carry no CLI wording (flags or commands): the CLI adds its own hints.
func TestErrors(t *testing.T) {
	many := make([]string, 10)
	for i := range many {
		many[i] = fmt.Sprintf("c0ffee%02d", i)
	}
	tests := []struct {
		err      error
		notFound bool
		want     string
	}{
		{&NotFoundError{Kind: "container", Name: "web", Namespace: "k8s.io"}, true, `container "web" not found in namespace "k8s.io"`},
		{&NamespaceNotFoundError{Namespace: "k8s", Existing: []string{"default", "k8s.io"}}, true,
			`namespace "k8s" does not exist (the daemon has: default, k8s.io)`},
		{&AmbiguousError{Prefix: "c0", Namespace: "default", Candidates: many[:2]}, false,
			`container ID prefix "c0" is ambiguous in namespace "default": it matches c0ffee00, c0ffee01`},
		{&AmbiguousError{Prefix: "c0", Namespace: "default", Candidates: many}, false, "c0ffee07 and 2 more"},
		{&PlatformError{Platform: "linux/s390x", Offered: []string{"linux/amd64"}}, false, "no manifest for linux/s390x; it has: linux/amd64"},
		{&UnreachableError{Address: "/x.sock", Err: errors.New("refused")}, false, "cannot reach containerd at /x.sock: refused"},
		{&NoRootError{Dir: "/mnt/e"}, false, "/mnt/e is not a containerd root (no io.containerd.metadata.v1.bolt/meta.db)"},
		{&NoRootError{Dir: "/mnt/e", Candidates: []string{"/mnt/e/a", "/mnt/e/b"}}, false, "several containerd roots: /mnt/e/a, /mnt/e/b"},
		{&UnsupportedSnapshotterError{Snapshotter: "zfs"}, false, "snapshotter zfs is not supported offline (only overlayfs and native)"},
		{&contentdir.CorruptBlobError{Digest: "sha256:ab", Path: "/b/ab"}, false, "blob sha256:ab at /b/ab does not match its digest"},
		{&DiskRootError{Op: OpCreateImage}, false, "cannot create an image from a disk root: a disk root is never written"},
		{&DiskRootError{Op: OpPause}, false, "cannot pause a task from a disk root: no task runs on a disk root"},
		{&NotSnapshotPathError{Path: "/etc/passwd"}, false, "/etc/passwd is not inside a snapshot directory"},
	}
	for _, tt := range tests {
		wrapped := fmt.Errorf("diff: %w", tt.err)
		if errdefs.IsNotFound(wrapped) != tt.notFound {
			t.Errorf("%v: errdefs.IsNotFound = %v, want %v", tt.err, !tt.notFound, tt.notFound)
		}
		msg := tt.err.Error()
		if !strings.Contains(msg, tt.want) {
			t.Errorf("%q, want %q", msg, tt.want)
		}
		if strings.Contains(msg, "--") || strings.Contains(msg, "ctrforensics") {
			t.Errorf("%q names a flag or a command", msg)
		}
	}
	if !errdefs.IsInvalidArgument(&AmbiguousError{}) {
		t.Error("an ambiguous prefix is not errdefs.IsInvalidArgument")
	}
}
