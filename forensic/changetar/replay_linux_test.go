package changetar

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/pkg/archive"

	"github.com/ctrforensics/ctrforensics/forensic/diff"
	"github.com/ctrforensics/ctrforensics/internal/treestate"
)

func TestUnsafeName(t *testing.T) {
	for p, want := range map[string]bool{
		"/etc/passwd": false, "/etc/.wh.passwd": true, "/etc/.wh..wh..opq": true, "/tmp/.wh.d/f": true,
		"/tmp/x.wh.y": false, "/tmp/.whx": false, "/.wh.": true,
	} {
		if got := UnsafeName(p); got != want {
			t.Errorf("UnsafeName(%q) = %v, want %v", p, got, want)
		}
	}
}

// TestReplayUnsafeNames plays an attack with names an OCI layer reads as
// whiteouts, archives the changes of each diff method, applies changes.tar
// onto a copy of the image with containerd's applier and checks it gives the
// container's filesystem but for the unsafe names (nothing of the image is
// deleted by them), then extracts the unsafe-name archive as plain files and
// checks the result is exactly the container's filesystem.
func TestReplayUnsafeNames(t *testing.T) {
	f := newOverlay(t, map[string]string{
		"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\n", "/etc/group": "root:x:0:\n",
		"/opt/data/one": "1\n", "/opt/data/sub/two": "2\n", "/srv/keep/a": "a\n", "/tmp/": "",
	})
	m := f.merged
	must(t, os.WriteFile(m+"/etc/.wh.passwd", []byte("attacker\n"), 0o600))
	must(t, os.WriteFile(m+"/etc/.wh..wh..opq", []byte("y"), 0o644))
	must(t, os.Mkdir(m+"/tmp/.wh.keep", 0o700))
	must(t, os.WriteFile(m+"/tmp/.wh.keep/payload", []byte("p\n"), 0o755))
	must(t, os.Link(m+"/etc/.wh.passwd", m+"/tmp/hardlink")) // links to an unsafe name
	must(t, os.WriteFile(m+"/etc/group", []byte("root:x:0:\nevil:x:0:\n"), 0o644))
	must(t, os.RemoveAll(m+"/opt/data"))
	must(t, os.WriteFile(m+"/opt/data", []byte("a file now\n"), 0o644)) // its entries are lost with it
	must(t, os.RemoveAll(m+"/srv/keep"))                                // a deleted directory

	fast, ro := f.readOnly(t)
	walk, err := diff.TreeDiff(context.Background(), ro, f.lower, diff.Options{})
	must(t, err)
	container := snapshotTree(t, ro)
	unsafe := []string{"etc/.wh..wh..opq", "etc/.wh.passwd", "tmp/.wh.keep", "tmp/.wh.keep/payload"}
	for _, d := range []*diff.Diff{{Changes: fast, Method: diff.MethodOverlay}, walk} {
		t.Run(string(d.Method), func(t *testing.T) {
			var layer, extra bytes.Buffer
			st, err := WriteChangesTar(context.Background(), &layer, ro, d.Changes, Options{})
			must(t, err)
			ust, err := WriteUnsafeTar(context.Background(), &extra, ro, d.Changes, Options{})
			must(t, err)
			var paths []string
			for _, c := range UnsafeChanges(d.Changes) {
				paths = append(paths, strings.TrimPrefix(c.Path, "/"))
			}
			if !reflect.DeepEqual(paths, unsafe) {
				t.Errorf("unsafe changes %q, want %q", paths, unsafe)
			}
			for _, p := range unsafe {
				if !slices.ContainsFunc(st.Notes, func(n string) bool { return strings.HasPrefix(n, "/"+p+": left out of the OCI layer") }) {
					t.Errorf("no note for %s: %q", p, st.Notes)
				}
			}
			if len(ust.Notes) != 0 {
				t.Errorf("unsafe archive notes %q", ust.Notes)
			}

			replay := filepath.Join(t.TempDir(), "replay")
			if out, err := exec.Command("cp", "-a", f.lower, replay).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v\n%s", err, out)
			}
			if _, err := archive.Apply(context.Background(), replay, bytes.NewReader(layer.Bytes())); err != nil {
				t.Fatalf("containerd applies changes.tar: %v", err)
			}
			want := maps(container, func(p string) bool { return !UnsafeName("/" + p) })
			compareTrees(t, "changes.tar applied", snapshotTree(t, replay), want)

			cmd := exec.Command("tar", "-xpf", "-", "-C", replay, "--xattrs", "--xattrs-include=*")
			cmd.Stdin = &extra
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("tar -x of the unsafe names: %v\n%s", err, out)
			}
			// Extracting touches the directories holding the entries; the
			// hard link to an unsafe name became a copy.
			compareTrees(t, "unsafe names extracted too", treestate.WithoutDirTimes(snapshotTree(t, replay)), treestate.WithoutDirTimes(container))
		})
	}
}

// snapshotTree describes every entry below root (treestate.Describe).
func snapshotTree(t *testing.T, root string) map[string]string {
	t.Helper()
	m, err := treestate.Describe(root)
	must(t, err)
	return m
}

// maps returns the entries of m whose paths keep says to keep.
func maps(m map[string]string, keep func(string) bool) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if keep(k) {
			out[k] = v
		}
	}
	return out
}

func compareTrees(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if diffs := treestate.Diff(got, want); len(diffs) > 0 {
		t.Errorf("%s: the tree differs from the container's:\n%s", what, strings.Join(diffs, "\n"))
	}
}
