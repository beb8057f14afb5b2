package testdaemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"

	"github.com/ctrforensics/ctrforensics/internal/testimage"
	"github.com/ctrforensics/ctrforensics/internal/testutil"
)

func TestDaemonLifecycle(t *testing.T) {
	ctx, d, c := startDaemon(t, Options{})
	t.Logf("containerd pid %d in %s, namespace %s", d.Pid(), d.Dir, d.Namespace)
	ctx = d.Context(ctx)

	web, err := testimage.WebImage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	img, err := ImportImage(ctx, c, web, "overlayfs")
	if err != nil {
		t.Fatalf("%v\n%s", err, d.LogTail(30))
	}
	built, err := web.Build()
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Target().Digest; got != built.Manifest.Digest {
		t.Errorf("imported manifest digest %s, built %s", got, built.Manifest.Digest)
	}

	ctr, task, err := RunContainer(ctx, c, "web", img, "overlayfs", "/bin/sh", "-c", "sleep 1000")
	if err != nil {
		t.Fatalf("%v\n%s", err, d.LogTail(30))
	}
	if _, _, err := Exec(ctx, task, "echo hacked > /var/www/html/index.html"); err != nil {
		t.Fatal(err)
	}
	out, _, err := Exec(ctx, task, "cat /var/www/html/index.html; id -u; pwd")
	if err != nil {
		t.Fatal(err)
	}
	if want := "hacked\n0\n/var/www/html\n"; out != want {
		t.Errorf("exec output %q, want %q", out, want)
	}
	_, stderr, err := Exec(ctx, task, "echo oops >&2; exit 3")
	if err == nil || !strings.Contains(err.Error(), "status 3") || !strings.Contains(err.Error(), "oops") || stderr != "oops\n" {
		t.Errorf("failing exec: err=%v stderr=%q", err, stderr)
	}

	// StopContainer keeps the container and its snapshot; a new task can
	// be started and sees the earlier change.
	if err := StopContainer(ctx, ctr); err != nil {
		t.Fatal(err)
	}
	if _, err := ctr.Task(ctx, nil); err == nil {
		t.Error("task still exists after StopContainer")
	}
	if _, err := c.SnapshotService("overlayfs").Stat(ctx, "web"); err != nil {
		t.Errorf("snapshot gone after StopContainer: %v", err)
	}

	// Leave a running container behind for Stop to clean up.
	if _, _, err := RunContainer(ctx, c, "web2", img, "overlayfs", "/bin/sh", "-c", "sleep 1000"); err != nil {
		t.Fatal(err)
	}
	shims, err := d.ShimPIDs()
	if err != nil || len(shims) == 0 {
		t.Fatalf("shims before stop: %v, %v", shims, err)
	}
	if mounts, _ := Mounts(d.Dir); len(mounts) == 0 {
		t.Error("no rootfs mount under the daemon dir while a container runs")
	}

	start := time.Now()
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Stop took %v", time.Since(start))
	if err := d.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	checkStopped(t, d, shims)
}

// TestStopAfterDaemonCrash checks the forced path of Stop: the daemon dies
// with running containers, so Stop must find and kill the shims and their
// containers itself and unmount the rootfs.
func TestStopAfterDaemonCrash(t *testing.T) {
	ctx, d, c := startDaemon(t, Options{})
	ctx = d.Context(ctx)

	web, err := testimage.WebImage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	img, err := ImportImage(ctx, c, web, "overlayfs")
	if err != nil {
		t.Fatal(err)
	}
	_, task, err := RunContainer(ctx, c, "victim", img, "overlayfs", "/bin/sh", "-c", "sleep 1000")
	if err != nil {
		t.Fatalf("%v\n%s", err, d.LogTail(30))
	}
	containerPid := int(task.Pid())
	sock := shimSocketPath(d.Address, d.Namespace, "victim")
	if _, err := os.Stat(sock); err != nil {
		t.Errorf("expected shim socket %s: %v", sock, err)
	}

	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-d.exited
	if !processAlive(containerPid) {
		t.Fatal("container died with the daemon; the forced path is not exercised")
	}
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if processAlive(containerPid) {
		t.Errorf("container process %d survived Stop", containerPid)
	}
	checkStopped(t, d, nil)
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("shim socket %s left behind: %v", sock, err)
	}
}

// TestImportLayerFormats checks that containerd unpacks gzip, zstd and
// plain layers and honours the whiteouts written by testimage.
func TestImportLayerFormats(t *testing.T) {
	ctx, d, c := startDaemon(t, Options{})
	ctx = d.Context(ctx)

	base, err := testimage.Busybox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	base = append(base,
		testimage.Dir("/data", 0o755),
		testimage.Reg("/data/gone", 0o644, "x"),
		testimage.Dir("/data/sub", 0o755),
		testimage.Reg("/data/sub/hidden", 0o644, "x"),
	)
	img := &testimage.Image{
		Name: "docker.io/ctrforensics/formats:1",
		Layers: []testimage.Layer{
			{Files: base},
			{Compression: testimage.Zstd, Files: []testimage.File{
				testimage.Whiteout("/data/gone"),
				testimage.Opaque("/data/sub"),
				testimage.Reg("/data/sub/new", 0o4755, "new"),
			}},
			{Compression: testimage.None, Files: []testimage.File{testimage.Reg("/data/plain", 0o600, "plain")}},
		},
	}
	image, err := ImportImage(ctx, c, img, "overlayfs")
	if err != nil {
		t.Fatalf("%v\n%s", err, d.LogTail(30))
	}
	_, task, err := RunContainer(ctx, c, "formats", image, "overlayfs", "/bin/sleep", "1000")
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := Exec(ctx, task, "cd /data && ls -A . sub && stat -c '%a %n' sub/new plain")
	if err != nil {
		t.Fatal(err)
	}
	if want := ".:\nplain\nsub\n\nsub:\nnew\n4755 sub/new\n600 plain\n"; out != want {
		t.Errorf("container view:\n%s\nwant:\n%s", out, want)
	}
}

func TestStartFailureReportsLog(t *testing.T) {
	testutil.RequiresRoot(t)
	bin := t.TempDir()
	fake := "#!/bin/sh\necho 'fake containerd: boom' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "containerd"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(ContainerdEnv, filepath.Join(bin, "containerd"))
	dir := filepath.Join(parentDir(), "ctrforensics-fail-"+filepath.Base(bin))
	d, err := Start(context.Background(), dir)
	if err == nil {
		_ = d.Stop(context.Background())
		t.Fatal("Start succeeded with a failing containerd")
	}
	if !strings.Contains(err.Error(), "fake containerd: boom") || !strings.Contains(err.Error(), "exited") {
		t.Errorf("error lacks log tail or cause: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s not cleaned up: %v", dir, err)
	}
}

func TestEnvironmentChoosesBinaryAndDir(t *testing.T) {
	parent := t.TempDir()
	t.Setenv(DirEnv, parent)
	if got := parentDir(); got != parent {
		t.Errorf("parentDir() = %q with %s=%q", got, DirEnv, parent)
	}
	t.Setenv(ContainerdEnv, filepath.Join(parent, "missing-containerd"))
	if _, err := containerdBinary(); err == nil || !strings.Contains(err.Error(), ContainerdEnv) {
		t.Errorf("containerdBinary() with a missing %s: %v, want an error naming it", ContainerdEnv, err)
	}
	if got := searchPath("/opt/ctrd/bin"); !strings.HasPrefix(got, "/opt/ctrd/bin:") {
		t.Errorf("searchPath does not put containerd's own directory first: %q", got)
	}
}

func TestRejectsTmpfs(t *testing.T) {
	testutil.RequiresRoot(t)
	if err := checkFilesystem("/dev/shm"); err == nil {
		t.Error("checkFilesystem accepted /dev/shm")
	}
}

func TestIsShimFor(t *testing.T) {
	addr := "/var/tmp/x/containerd.sock"
	for _, tc := range []struct {
		argv []string
		want bool
	}{
		{[]string{"/usr/bin/containerd-shim-runc-v2", "-namespace", "n", "-id", "web", "-address", addr}, true},
		{[]string{"containerd-shim-runc-v2", "--address=" + addr}, true},
		{[]string{"containerd-shim-runc-v2", "-a", "unix://" + addr}, true},
		{[]string{"containerd-shim-runc-v2", "-address", "/run/containerd/containerd.sock"}, false},
		{[]string{"containerd-shim-runc-v2", "-address"}, false},
		{[]string{"/usr/bin/containerd", "-address", addr}, false},
		{[]string{"containerd-shim-runc-v2", "-id", "-address", "x", "-address", addr}, false},
		{[]string{"containerd-shim-runc-v2", "-debug", "-namespace", "n", "-address", addr}, true},
		{[]string{"containerd-shim-runc-v2", "-id", "-address", "-address", addr}, true},
		{nil, false},
	} {
		if got := isShimFor(tc.argv, addr); got != tc.want {
			t.Errorf("isShimFor(%q) = %v, want %v", tc.argv, got, tc.want)
		}
	}
}

func TestParseHelpers(t *testing.T) {
	ppid, state, ok := parseStat([]byte("42 (a) b) weird) S 7 42 42 0 -1"))
	if !ok || ppid != 7 || state != 'S' {
		t.Errorf("parseStat = %d %c %v", ppid, state, ok)
	}
	if got := unescapeMountinfo(`/var/tmp/a\040b\134c`); got != `/var/tmp/a b\c` {
		t.Errorf("unescapeMountinfo = %q", got)
	}
	if got := unescapeMountinfo(`/x\04`); got != `/x\04` {
		t.Errorf("unescapeMountinfo(short) = %q", got)
	}
}

// startDaemon starts a private containerd with opts for a test that needs
// root, and a client of it; both are closed when the test ends, the daemon by
// a Stop that must succeed (again, if the test stopped it). ctx ends then too,
// or after three minutes.
func startDaemon(t *testing.T, opts Options) (context.Context, *Daemon, *client.Client) {
	t.Helper()
	testutil.RequiresRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	d, err := StartWith(ctx, "", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Stop(context.Background()); err != nil {
			t.Errorf("stop at cleanup: %v", err)
		}
	})
	c, err := d.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return ctx, d, c
}

// checkStopped checks that Stop left nothing of d behind: none of shims (the
// shim pids seen before) alive and no other shim, no mount under its
// directory nor the directory, no cgroup or runc state of its namespace.
func checkStopped(t *testing.T, d *Daemon, shims []int) {
	t.Helper()
	for _, p := range shims {
		if processAlive(p) {
			t.Errorf("shim %d alive after Stop", p)
		}
	}
	if left, err := d.ShimPIDs(); err != nil || len(left) > 0 {
		t.Errorf("shims left: %v (%v)", left, err)
	}
	if mounts, err := Mounts(d.Dir); err != nil || len(mounts) > 0 {
		t.Errorf("mounts left under %s: %v (%v)", d.Dir, mounts, err)
	}
	if _, err := os.Stat(d.Dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists: %v", d.Dir, err)
	}
	if left, _ := filepath.Glob("/sys/fs/cgroup/*/" + d.Namespace); len(left) > 0 {
		t.Errorf("cgroups left behind: %v", left)
	}
	if _, err := os.Stat("/run/containerd/runc/" + d.Namespace); !os.IsNotExist(err) {
		t.Errorf("runc state left behind: %v", err)
	}
}
