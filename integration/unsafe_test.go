package integration

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/pkg/archive"

	"github.com/ctrforensics/ctrforensics/internal/treestate"
)

// TestCollectUnsafeNames collects a container holding names an OCI layer
// reads as whiteouts (".wh.passwd" would delete /etc/passwd, ".wh..wh..opq"
// would empty /etc) and a deleted directory: changes.tar must carry none of
// those names, unsafe-names.tar must carry them, changes.jsonl must list every
// entry lost with the directory, and applying changes.tar onto the image with
// containerd's applier, then extracting unsafe-names.tar as plain files, must
// give exactly the container's filesystem.
func TestCollectUnsafeNames(t *testing.T) {
	c := h.runContainer(t, "unsafe-names", "overlayfs")
	h.attack(t, c, `echo attacker > /etc/.wh.passwd && echo y > /etc/.wh..wh..opq && mkdir /tmp/.wh.var &&
echo p > /tmp/.wh.var/payload && rm -rf /opt/data`)
	table := h.mustCLI(t, "diff", c.id)
	if want := "C /etc\nA /etc/.wh..wh..opq\nA /etc/.wh.passwd\nC /opt\nD /opt/data\nC /tmp\nA /tmp/.wh.var\nA /tmp/.wh.var/payload\n"; table != want {
		t.Errorf("diff table:\n%s\nwant:\n%s", table, want)
	}
	bag := filepath.Join(t.TempDir(), "bag")
	r := h.cli(t, "collect", "-o", bag, c.id)
	if r.code != 0 {
		t.Fatalf("collect: exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "4 changes whose names an OCI layer reads as whiteouts are in data/rootfs/unsafe-names.tar") ||
		!strings.Contains(r.stderr, "/etc/.wh.passwd: left out of the OCI layer") {
		t.Errorf("collect does not say what it left out of changes.tar: %q", r.stderr)
	}
	if v := h.mustCLI(t, "verify", bag); !strings.Contains(v, "VALID") {
		t.Errorf("verify:\n%s", v)
	}
	read := func(p string) []byte { return bagFile(t, bag, p) }
	var lost []string
	for _, ch := range decodeChanges(t, string(read("data/rootfs/changes.jsonl"))) {
		if ch.LostWith != nil {
			lost = append(lost, ch.Path+" "+*ch.LostWith)
		}
		if ch.Path == "/etc/.wh.passwd" && str(ch.Digest) != sha([]byte("attacker\n")) {
			t.Errorf("changes.jsonl: /etc/.wh.passwd digest %s", str(ch.Digest))
		}
	}
	if want := []string{"/opt/data/customers.csv /opt/data", "/opt/data/notes.txt /opt/data", "/opt/data/report.txt /opt/data"}; !reflect.DeepEqual(lost, want) {
		t.Errorf("changes.jsonl lost entries %q, want %q", lost, want)
	}
	layer, extra := read("data/rootfs/changes.tar"), read("data/rootfs/unsafe-names.tar")
	var whiteouts []string
	for name := range tarEntries(t, layer) {
		if strings.Contains("/"+name, "/.wh.") {
			whiteouts = append(whiteouts, name)
		}
	}
	if !reflect.DeepEqual(whiteouts, []string{"opt/.wh.data"}) {
		t.Errorf("changes.tar whiteouts %q, want only opt/.wh.data", whiteouts)
	}
	entries := tarEntries(t, extra)
	if e := entries["etc/.wh.passwd"]; e.content != "attacker\n" || len(entries) != 4 {
		t.Errorf("unsafe-names.tar: %d entries, etc/.wh.passwd %+v", len(entries), e)
	}

	image, ctr := filepath.Join(t.TempDir(), "image"), filepath.Join(t.TempDir(), "ctr")
	h.mustCLI(t, "mount", "--state-dir", h.stateDir, h.images["overlayfs"].Name(), image)
	defer h.mustCLI(t, "umount", "--state-dir", h.stateDir, image)
	h.mustCLI(t, "mount", "--state-dir", h.stateDir, c.id, ctr)
	defer h.mustCLI(t, "umount", "--state-dir", h.stateDir, ctr)
	replay := filepath.Join(t.TempDir(), "replay")
	if out, err := exec.Command("cp", "-a", image, replay).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	if _, err := archive.Apply(h.ctx(t), replay, bytes.NewReader(layer)); err != nil {
		t.Fatalf("containerd applies changes.tar: %v", err)
	}
	want := describeTree(t, ctr)
	safe := func(m map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			if !strings.Contains("/"+k, "/.wh.") {
				out[k] = v
			}
		}
		return out
	}
	sameTree(t, "changes.tar applied to the image", describeTree(t, replay), safe(want))
	cmd := exec.Command("tar", "-xpf", "-", "-C", replay, "--xattrs", "--xattrs-include=*")
	cmd.Stdin = bytes.NewReader(extra)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar -x unsafe-names.tar: %v\n%s", err, out)
	}
	// Extracting sets the mtimes of the directories that receive the entries.
	sameTree(t, "then unsafe-names.tar extracted", treestate.WithoutDirTimes(describeTree(t, replay)), treestate.WithoutDirTimes(want))
}

// describeTree describes every entry below root (treestate.Describe).
func describeTree(t *testing.T, root string) map[string]string {
	t.Helper()
	m, err := treestate.Describe(root)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sameTree(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if diffs := treestate.Diff(got, want); len(diffs) > 0 {
		t.Errorf("%s: differs from the container's filesystem:\n%s", what, strings.Join(diffs, "\n"))
	}
}
