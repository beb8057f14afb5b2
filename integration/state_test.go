package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/snapshots"
	"golang.org/x/sys/unix"
)

// treeState records, for every entry below a root, everything a command must
// leave as it was: type, mode, owner, size, content digest, all three times
// and the extended attributes.
type treeState map[string]string

// captureTree walks root with descriptors (so a tree deeper than PATH_MAX is
// fine) and reads files with O_NOATIME, so that capturing changes nothing.
func captureTree(t testing.TB, root string) treeState {
	t.Helper()
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOATIME|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s: %v", root, err)
	}
	defer unix.Close(fd)
	st := treeState{}
	st["/"] = entryState(t, fd, ".")
	captureDir(t, fd, "", st)
	return st
}

func captureDir(t testing.TB, dirfd int, dir string, st treeState) {
	names := dirNames(t, dirfd)
	for _, name := range names {
		p := dir + "/" + name
		st[p] = entryState(t, dirfd, name)
		var s unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &s, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
		if s.Mode&unix.S_IFMT == unix.S_IFDIR {
			sub, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_NOATIME|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatalf("open %q: %v", p, err)
			}
			captureDir(t, sub, p, st)
			unix.Close(sub)
		}
	}
}

func dirNames(t testing.TB, dirfd int) []string {
	dup, err := unix.Dup(dirfd)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(dup), "dir")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return names
}

func entryState(t testing.TB, dirfd int, name string) string {
	var s unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &s, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
	content := ""
	if s.Mode&unix.S_IFMT == unix.S_IFREG {
		fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NOATIME|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("open %q: %v", name, err)
		}
		f := os.NewFile(uintptr(fd), name)
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		content = hex.EncodeToString(h.Sum(nil))
	}
	xattrs := listXattrs(dirfd, name)
	return fmt.Sprintf("mode=%o uid=%d gid=%d size=%d sha=%s mtime=%d.%d atime=%d.%d ctime=%d.%d xattrs=%s",
		s.Mode, s.Uid, s.Gid, s.Size, content, s.Mtim.Sec, s.Mtim.Nsec, s.Atim.Sec, s.Atim.Nsec, s.Ctim.Sec, s.Ctim.Nsec, xattrs)
}

// listXattrs names the attributes of an entry through an O_PATH descriptor.
func listXattrs(dirfd int, name string) string {
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return "?"
	}
	defer unix.Close(fd)
	buf := make([]byte, 64<<10)
	n, err := unix.Listxattr(fmt.Sprintf("/proc/self/fd/%d", fd), buf)
	if err != nil {
		return "?" + err.Error()
	}
	return strings.ReplaceAll(string(buf[:n]), "\x00", ",")
}

// compareTrees fails the test on any entry that differs.
func compareTrees(t testing.TB, what string, before, after treeState) {
	t.Helper()
	var diffs []string
	for p, b := range before {
		if a, ok := after[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("%q vanished", p))
		} else if a != b {
			diffs = append(diffs, fmt.Sprintf("%q\n    before %s\n    after  %s", p, b, a))
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("%q appeared", p))
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		t.Fatalf("%s changed (%d entries):\n%s", what, len(diffs), strings.Join(diffs[:min(len(diffs), 10)], "\n"))
	}
}

// hostState is what the daemon and the kernel hold that a command might leave
// behind: mounts, leases, snapshots, containers and images.
type hostState struct {
	mounts     []string
	leases     []string
	snapshots  []string
	containers []string
	images     []string
}

func captureHost(t testing.TB) hostState {
	t.Helper()
	ctx := h.ctx(t)
	var hs hostState
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 4 && !otherDaemon(f[4]) && !foreignTempMount(f[4]) {
			hs.mounts = append(hs.mounts, f[4]) // the mount point
		}
	}
	ls, err := h.client.LeasesService().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		hs.leases = append(hs.leases, l.ID)
	}
	for _, sn := range []string{"overlayfs", "native"} {
		err := h.client.SnapshotService(sn).Walk(ctx, func(_ context.Context, info snapshots.Info) error {
			hs.snapshots = append(hs.snapshots, sn+"/"+info.Name)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	ctrs, err := h.client.ContainerService().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ctrs {
		hs.containers = append(hs.containers, c.ID+" "+c.SnapshotKey)
	}
	imgs, err := h.client.ImageService().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range imgs {
		hs.images = append(hs.images, i.Name+" "+i.Target.Digest.String())
	}
	for _, s := range [][]string{hs.mounts, hs.leases, hs.snapshots, hs.containers, hs.images} {
		sort.Strings(s)
	}
	return hs
}

// otherDaemon tells a mount of another private containerd (other test
// packages run theirs in parallel) from anything this package's commands
// could have left.
func otherDaemon(mountpoint string) bool {
	if !strings.Contains(mountpoint, "/ctrforensics-containerd-") {
		return false
	}
	return !strings.HasPrefix(mountpoint, h.daemon.Dir+"/")
}

// foreignTempMount tells a temporary mount held by a live ctrforensics process
// that this package did not start (other packages and users run theirs on the
// same host) from one this package's commands could have left.
func foreignTempMount(mountpoint string) bool {
	for _, elem := range strings.Split(mountpoint, "/") {
		rest, ok := strings.CutPrefix(elem, "ctrforensics-mount-")
		if !ok {
			rest, ok = strings.CutPrefix(elem, "ctrforensics-run-")
		}
		if !ok {
			continue
		}
		pid, _, _ := strings.Cut(rest, "-")
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return false // dead: whatever it left counts
		}
		// The fields after the command name (which may hold spaces): state, ppid.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		return len(f) > 1 && f[1] != strconv.Itoa(os.Getpid())
	}
	return false
}

func compareHost(t testing.TB, what string, before, after hostState) {
	t.Helper()
	check := func(kind string, b, a []string) {
		if strings.Join(b, "\n") != strings.Join(a, "\n") {
			t.Errorf("%s: %s changed\nbefore: %v\nafter:  %v", what, kind, b, a)
		}
	}
	check("mounts", before.mounts, after.mounts)
	check("leases", before.leases, after.leases)
	check("snapshots", before.snapshots, after.snapshots)
	check("containers", before.containers, after.containers)
	check("images", before.images, after.images)
}

// layerDirs returns the image layer directories below a container's upper.
func layerDirs(t testing.TB, c *container) []string {
	t.Helper()
	ctx := h.ctx(t)
	info, err := c.ctr.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mounts, err := h.client.SnapshotService(info.Snapshotter).Mounts(ctx, info.SnapshotKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range mounts[0].Options {
		if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
			return strings.Split(v, ":")
		}
	}
	t.Fatal("no lowerdir")
	return nil
}
