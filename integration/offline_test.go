package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/ctrforensics/ctrforensics/internal/fdio"
	"github.com/ctrforensics/ctrforensics/internal/testdaemon"
	"github.com/ctrforensics/ctrforensics/internal/testimage"
	"github.com/ctrforensics/ctrforensics/mountutil"
)

// readOnlyRoot bind-mounts the daemon's root read-only at a private
// directory, as a disk image of a dead host is mounted, and returns it.
func readOnlyRoot(t *testing.T, at string) string {
	t.Helper()
	return roBind(t, h.daemon.Root, at)
}

// offline runs ctrforensics on the disk root root, without the daemon.
func offline(t *testing.T, root string, args ...string) result {
	t.Helper()
	return h.cliWith(t, nil, append([]string{"--root", root, "-n", h.daemon.Namespace}, args...)...)
}

func mustOffline(t *testing.T, root string, args ...string) string {
	t.Helper()
	r := offline(t, root, args...)
	if r.code != 0 {
		t.Fatalf("ctrforensics --root %s %s: exit %d\nstderr: %s", root, strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// liveTask is where a disk root answers otherwise: no runtime tells the task
// state or its pid.
var liveTask = regexp.MustCompile(`"status":"[a-z ]+"(,"pid":[0-9]+)?`)

// TestOfflineMatchesLive runs the diff scenarios and a native container on the
// daemon and asks the same questions through the socket and through a
// read-only disk root while the daemon holds its databases locked: ls, diff
// JSON and the image commands answer the same; a collect from the root
// verifies and records the copied databases; nothing under the root changes,
// not even an access time.
func TestOfflineMatchesLive(t *testing.T) {
	suspect(t)
	var ids []string
	var first *container
	for i, sc := range scenarios(t) {
		c := h.runContainer(t, fmt.Sprintf("offline-%d", i), "overlayfs")
		h.attack(t, c, sc.script)
		ids = append(ids, c.id)
		if first == nil {
			first = c
		}
	}
	native := h.runContainer(t, "offline-native", "native")
	h.attack(t, native, scenarios(t)[0].script)
	ids = append(ids, native.id)

	web := h.images["overlayfs"].Name()
	upper := h.upperDir(t, first)
	lowers := layerDirs(t, first)
	ownPath := filepath.Join(upper, "var/www/html/shell.php")
	layerPath := filepath.Join(lowers[len(lowers)-1], "etc/passwd")
	queries := [][]string{{"ls", "--format", "json"}, {"image", "ls", "--format", "json"},
		{"image", "files", "--digest", "--format", "json", web},
		{"image", "files", "--digest", "--format", "json", testimage.SuspectImageName},
		{"image", "history", "--format", "json", testimage.SuspectImageName},
		{"image", "layers", "--show-hidden", testimage.SuspectImageName},
		{"image", "cat", "--layer", "1", testimage.SuspectImageName, "/root/.ssh/id_rsa"}}
	for _, id := range ids {
		queries = append(queries, []string{"diff", "--format", "json", id})
	}
	queries = append(queries, []string{"owner", "--format", "json", ownPath}, []string{"owner", "--format", "json", layerPath})
	live := make([]string, len(queries))
	for i, q := range queries {
		live[i] = h.mustCLI(t, q...)
	}
	archives := t.TempDir()
	for _, cmd := range []string{"save", "export"} {
		h.mustCLI(t, "image", cmd, "-o", filepath.Join(archives, cmd+"-live.tar"), testimage.SuspectImageName)
	}
	checkOwner(t, live[len(live)-2], "active", []string{ids[0]}, "")
	checkOwner(t, live[len(live)-1], "committed", ids[:len(ids)-1], web)
	settle(t)

	root := readOnlyRoot(t, filepath.Join(t.TempDir(), "evidence"))
	before, host := captureTree(t, root), captureHost(t)
	compareOffline(t, root, queries, live)
	// Image commands read layer blobs straight from the disk root's content
	// directory, digests checked, as live ones read the daemon's.
	if r := offline(t, root, "image", "files", "-v", testimage.SuspectImageName); r.code != 0 ||
		!strings.Contains(r.stderr, "layer blobs read straight from the content store directory "+filepath.Join(root, "io.containerd.content.v1.content")) {
		t.Errorf("image files -v --root: exit %d, stderr %s", r.code, r.stderr)
	}
	// What a disk root cannot hold is said, never skipped in silence.
	if r := offline(t, root, "diff", ids[0]); !strings.Contains(r.stderr, "note: tmpfs /dev, /dev/shm, /run: not examined") {
		t.Errorf("diff --root of a container with tmpfs mounts: no note on stderr:\n%s", r.stderr)
	}

	for _, cmd := range []string{"save", "export"} { // the same bytes both ways
		p := filepath.Join(archives, cmd+"-offline.tar")
		mustOffline(t, root, "image", cmd, "-o", p, testimage.SuspectImageName)
		if a, b := fileSHA(t, filepath.Join(archives, cmd+"-live.tar")), fileSHA(t, p); a != b {
			t.Errorf("image %s: --root wrote %s, --address %s", cmd, b, a)
		}
	}

	table := mustOffline(t, root, "owner", strings.Replace(layerPath, h.daemon.Root, root, 1))
	for _, want := range []string{"(committed)", "in snapshot: /etc/passwd", web + " (layer 1 of ", "shared:      yes",
		ids[0] + " ", "image layer", "unknown (offline)"} {
		if !strings.Contains(table, want) {
			t.Errorf("owner table lacks %q:\n%s", want, table)
		}
	}

	out := filepath.Join(t.TempDir(), "bag")
	res := mustOffline(t, root, "collect", "-o", out, "--examiner", "alice", ids[0])
	if !strings.Contains(res, "collected container "+ids[0]) {
		t.Errorf("collect said %q", res)
	}
	if v := h.mustCLI(t, "verify", out); !strings.Contains(v, "result:    VALID") {
		t.Errorf("offline bag does not verify:\n%s", v)
	}
	checkDiskRootRecord(t, out, root, true)

	mnt := filepath.Join(t.TempDir(), "view")
	mustOffline(t, root, "mount", "--state-dir", h.stateDir, ids[0], mnt)
	if b, err := os.ReadFile(filepath.Join(mnt, "var/www/html/shell.php")); err != nil || !strings.Contains(string(b), "eval") {
		t.Errorf("offline mount does not show the web shell: %q, %v", b, err)
	}
	if r := h.cliWith(t, nil, "umount", "--state-dir", h.stateDir, mnt); r.code != 0 || !strings.Contains(r.stdout, "mount "+mnt) {
		t.Errorf("umount of an offline mount: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}

	compareTrees(t, "disk root", before, captureTree(t, root))
	compareHost(t, "after offline commands", host, captureHost(t))

	// The root as it is on the host, writable: atimes older than mtimes first,
	// so that any read would move them; measured through the read-only bind.
	ageAtimes(t, h.daemon.Root)
	before = captureTree(t, root)
	for _, q := range queries { // the answers differ from live only by the atimes just set
		mustOffline(t, h.daemon.Root, q...)
	}
	out = filepath.Join(t.TempDir(), "bag")
	mustOffline(t, h.daemon.Root, "collect", "-o", out, ids[0])
	checkDiskRootRecord(t, out, h.daemon.Root, true) // the daemon holds it: its lock is tried, nothing read
	compareTrees(t, "writable disk root", before, captureTree(t, root))
}

// settle waits until the daemon has stopped writing its databases: after
// the live runs released their leases, its garbage collector removes their
// views in the background.
func settle(t *testing.T) {
	t.Helper()
	dbs := []string{"io.containerd.metadata.v1.bolt/meta.db", "io.containerd.snapshotter.v1.overlayfs/metadata.db",
		"io.containerd.snapshotter.v1.native/metadata.db"}
	stamp := func() string {
		var s string
		for _, db := range dbs {
			var st unix.Stat_t
			if err := unix.Stat(filepath.Join(h.daemon.Root, db), &st); err == nil {
				s += fmt.Sprint(st.Mtim, " ")
			}
		}
		return s
	}
	last, stable := stamp(), 0
	for deadline := time.Now().Add(time.Minute); stable < 3 && time.Now().Before(deadline); {
		time.Sleep(time.Second)
		if now := stamp(); now == last {
			stable++
		} else {
			last, stable = now, 0
		}
	}
}

// compareOffline asks queries of the disk root root and expects what the
// daemon answered (live), but for the task state, and for owner's path,
// which is under root.
func compareOffline(t *testing.T, root string, queries [][]string, live []string) {
	t.Helper()
	for i, q := range queries {
		start := time.Now()
		if q[0] == "owner" { // the same path, under the disk root
			q = []string{"owner", "--format", "json", strings.Replace(q[3], h.daemon.Root, root, 1)}
		}
		got := mustOffline(t, root, q...)
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("%s took %s offline: waiting on the daemon's lock?", strings.Join(q, " "), d)
		}
		want := live[i]
		switch q[0] {
		case "ls":
			want = liveTask.ReplaceAllString(want, `"status":"unknown (offline)"`)
		case "owner":
			want = liveTask.ReplaceAllString(strings.ReplaceAll(want, h.daemon.Root, root), `"status":"unknown (offline)"`)
		case "diff":
			want = snapshotOnly(want)
		}
		if got != want {
			t.Errorf("--root %s %s: --root (got) and --address (want) differ:\n%s", root, strings.Join(q, " "),
				firstDifferences(tableLines(got), tableLines(want)))
		}
	}
}

// snapshotOnly keeps the lines of diff's JSON that come from the snapshot:
// a dead host's tmpfs died with its tasks, and the host sources of its bind
// mounts are not on the examiner's machine, so --root has only those.
func snapshotOnly(jsonl string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(jsonl, "\n") {
		if !strings.Contains(line, `"source":"`) {
			b.WriteString(line)
		}
	}
	return b.String()
}

// ageAtimes sets the access time of every entry below dir a day before its
// modification time: with relatime, any read then moves it. It works through
// descriptors, for trees deeper than PATH_MAX.
func ageAtimes(t *testing.T, dir string) {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ageBelow(t, fd)
	unix.Close(fd)
	ageEntry(t, unix.AT_FDCWD, dir)
}

func ageBelow(t *testing.T, dirfd int) {
	t.Helper()
	names, err := fdio.ReadNames(dirfd)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if fd, err := unix.Openat(dirfd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err == nil {
			ageBelow(t, fd)
			unix.Close(fd)
		}
		ageEntry(t, dirfd, n) // a directory after its entries: listing it moved its atime
	}
}

func ageEntry(t *testing.T, dirfd int, name string) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
	ts := []unix.Timespec{{Sec: st.Mtim.Sec - 86400}, {Nsec: unix.UTIME_OMIT}}
	if err := unix.UtimesNanoAt(dirfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
}

// checkOwner checks what `owner --format json` said: the snapshot's kind, the
// containers that use it, and the image that has it as its first layer.
func checkOwner(t *testing.T, out, kind string, ctrs []string, image string) {
	t.Helper()
	var o struct {
		Kind, Namespace string
		Shared          bool
		Within          string `json:"path_in_snapshot"`
		Images          []struct {
			Name  string
			Layer int
		}
		Containers []struct {
			ID       string
			OwnLayer bool `json:"own_layer"`
		}
	}
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		t.Fatalf("owner: %v: %s", err, out)
	}
	var got []string
	for _, c := range o.Containers {
		got = append(got, c.ID)
		if c.OwnLayer != (kind == "active") {
			t.Errorf("owner: container %s own_layer %v for a %s snapshot", c.ID, c.OwnLayer, kind)
		}
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(ctrs))
	if o.Kind != kind || o.Namespace != h.daemon.Namespace || !slices.Equal(got, want) || o.Shared != (kind == "committed") {
		t.Errorf("owner: kind %s namespace %s shared %v containers %v; want %s %s %v %v", o.Kind, o.Namespace, o.Shared, got,
			kind, h.daemon.Namespace, kind == "committed", want)
	}
	hasImage := slices.ContainsFunc(o.Images, func(i struct {
		Name  string
		Layer int
	}) bool {
		return i.Name == image && i.Layer == 1
	})
	if (image != "") != hasImage {
		t.Errorf("owner: images %+v, want %q as layer 1", o.Images, image)
	}
}

// checkDiskRootRecord checks that the acquisition record names the disk root
// and that meta.db and the overlay snapshotter's metadata.db were copied
// (locked says the daemon's lock was seen: a root on a writable mount is
// copied without trying it), with the original's digests.
func checkDiskRootRecord(t *testing.T, bag, root string, locked bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bag, "metadata", "acquisition.json"))
	if err != nil {
		t.Fatal(err)
	}
	var acq struct {
		Container struct {
			TaskStatus string `json:"task_status"`
		} `json:"container"`
		DiskRoot *struct {
			Source    string `json:"source"`
			Path      string `json:"path"`
			Databases []struct {
				Path           string
				Locked, Copied bool
				Before         string `json:"sha256_before"`
				After          string `json:"sha256_after"`
				Copy           string `json:"sha256_copy"`
			} `json:"databases"`
		} `json:"disk_root"`
	}
	if err := json.Unmarshal(b, &acq); err != nil {
		t.Fatal(err)
	}
	if acq.Container.TaskStatus != "unknown (offline)" {
		t.Errorf("task status %q offline", acq.Container.TaskStatus)
	}
	d := acq.DiskRoot
	if d == nil || d.Source != "disk root" || d.Path != root {
		t.Fatalf("acquisition record does not name the disk root %s: %s", root, b)
	}
	want := map[string]bool{filepath.Join(root, "io.containerd.metadata.v1.bolt/meta.db"): false,
		filepath.Join(root, "io.containerd.snapshotter.v1.overlayfs/metadata.db"): false}
	for _, db := range d.Databases {
		if _, ok := want[db.Path]; !ok {
			continue
		}
		want[db.Path] = true
		if db.Locked != locked || !db.Copied || !strings.HasPrefix(db.Before, "sha256:") || db.After == "" || db.Copy == "" {
			t.Errorf("database %s not recorded as copied (locked %v) with its digests: %+v", db.Path, locked, db)
		}
	}
	for p, seen := range want {
		if !seen {
			t.Errorf("acquisition record lacks database %s", p)
		}
	}
}

// TestOfflineUsageErrors: --root with --address, or a directory that holds no
// containerd root, is one line and exit 2; the top of a disk is searched for
// the usual roots, and the one found is named.
func TestOfflineUsageErrors(t *testing.T) {
	top := t.TempDir()
	root := readOnlyRoot(t, filepath.Join(top, "var/lib/rancher/k3s/agent/containerd"))
	r := h.cliWith(t, nil, "--root", top, "-n", h.daemon.Namespace, "ls")
	if r.code != 0 || !strings.Contains(r.stderr, "using containerd root "+root) {
		t.Errorf("--root TOP: exit %d, stderr %q", r.code, r.stderr)
	}
	ctx := h.ctx(t)
	zfs := containers.Container{ID: "offline-zfs", Runtime: containers.RuntimeInfo{Name: "io.containerd.runc.v2"},
		Snapshotter: "zfs", SnapshotKey: "offline-zfs", Spec: &anypb.Any{TypeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Spec", Value: []byte("{}")}}
	if _, err := h.client.ContainerService().Create(ctx, zfs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.client.ContainerService().Delete(context.WithoutCancel(ctx), zfs.ID); err != nil {
			t.Error(err)
		}
	})
	empty := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--root", root, "--address", h.daemon.Address, "ls"}, "--root and --address exclude each other"},
		{[]string{"--root", empty, "ls"}, "is not a containerd root"},
		{[]string{"--root", root, "-n", h.daemon.Namespace, "diff", zfs.ID}, "snapshotter zfs is not supported offline"},
	} {
		r := h.cliWith(t, nil, tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line with %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

// TestOfflineCRIPods reads the pods of TestCRI's daemon from its root while
// it runs: ls (sandboxes included) and owner of a pod container's file name
// the same pods as the socket, from the CRI records and, on containerd 2.x,
// the sandbox store of meta.db.
func TestOfflineCRIPods(t *testing.T) {
	ch := startCRI(t)
	ctx := namespaces.WithNamespace(h.ctx(t), testdaemon.CRINamespace)
	c, err := ch.daemon.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, err := c.ContainerService().Get(ctx, ch.ids["web-1/php"])
	if err != nil {
		t.Fatal(err)
	}
	mounts, err := c.SnapshotService(info.Snapshotter).Mounts(ctx, info.SnapshotKey)
	if err != nil {
		t.Fatal(err)
	}
	o, err := mountutil.ParseOverlay(mounts[0])
	if err != nil {
		t.Fatal(err)
	}
	owner := []string{"owner", "--format", "json", filepath.Join(o.Upper, "etc/passwd")}
	for _, q := range [][]string{{"ls", "-A", "--all", "--format", "json"}, owner} {
		live := ch.mustCLI(t, q...)
		r := h.cliWith(t, nil, append([]string{"--root", ch.daemon.Root, "-n", testdaemon.CRINamespace}, q...)...)
		if r.code != 0 {
			t.Fatalf("--root %v: exit %d: %s", q, r.code, r.stderr)
		}
		want := liveTask.ReplaceAllString(live, `"status":"unknown (offline)"`)
		if r.stdout != want {
			t.Errorf("%v: --root (got) and --address (want) differ:\n%s", q, firstDifferences(tableLines(r.stdout), tableLines(want)))
		}
		if !strings.Contains(r.stdout, `"pod":"web-1"`) {
			t.Errorf("%v offline names no pod web-1:\n%s", q, r.stdout)
		}
	}
}

func fileSHA(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha(b)
}
