// Package integration tests ctrforensics against a real containerd daemon and
// runc: a private daemon is started for the package, test images are built in
// Go and imported, containers run under runc and attackers are played with
// task exec. The CLI is run as a separate process, as a user would run it.
package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/ctrforensics/ctrforensics/internal/testdaemon"
	"github.com/ctrforensics/ctrforensics/internal/testimage"
	"github.com/ctrforensics/ctrforensics/internal/testutil"
	"github.com/ctrforensics/ctrforensics/mountutil"
)

// harness is the daemon and images every test of the package shares.
type harness struct {
	daemon *testdaemon.Daemon
	client *client.Client
	// bin is the CLI, alone in a temporary directory.
	bin string
	// images maps a snapshotter to the web image unpacked for it.
	images map[string]client.Image
	// stateDir is where the CLI records its browsing mounts.
	stateDir string
}

// h is set up once by TestMain: starting containerd and importing images for
// every test would multiply the run time.
var h *harness

func TestMain(m *testing.M) {
	if run, code := testutil.RequiresRootM(); !run {
		os.Exit(code)
	}
	var code int
	err := func() error {
		ctx := context.Background()
		var err error
		h, err = setup(ctx)
		if err != nil {
			return err
		}
		defer func() {
			if err := h.daemon.Stop(context.Background()); err != nil {
				fmt.Fprintln(os.Stderr, "stop containerd:", err)
				code = 1
			}
			os.RemoveAll(h.stateDir)
			os.RemoveAll(filepath.Dir(h.bin))
		}()
		code = m.Run()
		return nil
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration setup:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(ctx context.Context) (*harness, error) {
	bin, err := cliBinary()
	if err != nil {
		return nil, err
	}
	// A run killed before its teardown (a CI timeout, a SIGKILL) leaves its
	// daemon's directory and mounts; they would show in every host snapshot.
	removed, err := testdaemon.RemoveStale(time.Minute)
	for _, dir := range removed {
		fmt.Fprintf(os.Stderr, "removed %s, which a killed test run left\n", dir)
	}
	if err != nil {
		return nil, err
	}
	d, err := testdaemon.Start(ctx, "")
	if err != nil {
		return nil, err
	}
	c, err := d.Client()
	if err != nil {
		d.Stop(ctx)
		return nil, err
	}
	stateDir, err := os.MkdirTemp("", "ctrforensics-state-")
	if err != nil {
		d.Stop(ctx)
		return nil, err
	}
	hs := &harness{daemon: d, client: c, bin: bin, images: map[string]client.Image{}, stateDir: stateDir}
	web, err := testimage.WebImage(ctx)
	if err != nil {
		d.Stop(ctx)
		return nil, err
	}
	for _, sn := range []string{"overlayfs", "native"} {
		img, err := testdaemon.ImportImage(d.Context(ctx), c, web, sn)
		if err != nil {
			d.Stop(ctx)
			return nil, err
		}
		hs.images[sn] = img
	}
	return hs, nil
}

// cliBinary returns the ctrforensics binary in a temporary directory every
// user can reach (for the test that runs it unprivileged): a copy of
// $CTRFORENSICS_BIN (set by make test), or one built now.
func cliBinary() (string, error) {
	dir, err := os.MkdirTemp("", "ctrforensics-bin-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "ctrforensics")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/ctrforensics")
	if src := os.Getenv("CTRFORENSICS_BIN"); src != "" {
		cmd = exec.Command("cp", src, bin)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("get ctrforensics binary: %v\n%s", err, out)
	}
	return bin, nil
}

// ctx returns a context in the daemon's namespace, cancelled at the end of the test.
func (hs *harness) ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), hs.daemon.Namespace), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// importArchive imports an image archive (a testimage build) into the
// daemon's namespace and returns the images created.
func (hs *harness) importArchive(t testing.TB, archive io.WriterTo, opts ...client.ImportOpt) []images.Image {
	t.Helper()
	pr, pw := io.Pipe()
	go func() { _, err := archive.WriteTo(pw); pw.CloseWithError(err) }()
	imgs, err := hs.client.Import(hs.ctx(t), pr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return imgs
}

// result is the outcome of one CLI run.
type result struct {
	stdout, stderr string
	code           int
}

// cli runs ctrforensics against the test daemon and namespace.
func (hs *harness) cli(t testing.TB, args ...string) result {
	t.Helper()
	return hs.cliWith(t, nil, append([]string{"--address", hs.daemon.Address, "-n", hs.daemon.Namespace}, args...)...)
}

// cliWith runs ctrforensics with exactly args, adjusting the command with
// prepare when given.
func (hs *harness) cliWith(t testing.TB, prepare func(*exec.Cmd), args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, hs.bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if prepare != nil {
		prepare(cmd)
	}
	err := cmd.Run()
	var exitErr *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("run ctrforensics %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("ctrforensics %s did not finish in time (hang?)", strings.Join(args, " "))
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// mustCLI runs ctrforensics and fails the test unless it exits 0.
func (hs *harness) mustCLI(t testing.TB, args ...string) string {
	t.Helper()
	r := hs.cli(t, args...)
	if r.code != 0 {
		t.Fatalf("ctrforensics %s: exit %d\nstderr: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// container is a running test container.
type container struct {
	id          string
	snapshotter string
	ctr         client.Container
	task        client.Task
}

// runContainer starts a container of the web image that sleeps, and removes
// it at the end of the test.
func (hs *harness) runContainer(t testing.TB, id, snapshotter string) *container {
	t.Helper()
	ctx := hs.ctx(t)
	ctr, task, err := testdaemon.RunContainer(ctx, hs.client, id, hs.images[snapshotter], snapshotter,
		"/bin/sh", "-c", "sleep 100000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := testdaemon.RemoveContainer(context.WithoutCancel(ctx), ctr); err != nil {
			t.Errorf("remove container %s: %v", id, err)
		}
	})
	return &container{id: id, snapshotter: snapshotter, ctr: ctr, task: task}
}

// attack runs a shell script inside the container, as an attacker would.
func (hs *harness) attack(t testing.TB, c *container, script string) {
	t.Helper()
	if _, stderr, err := testdaemon.Exec(hs.ctx(t), c.task, script); err != nil {
		t.Fatalf("attack in %s: %v (%s)", c.id, err, stderr)
	}
}

// upperDir returns the container's overlay upper directory.
func (hs *harness) upperDir(t testing.TB, c *container) string {
	t.Helper()
	ctx := hs.ctx(t)
	info, err := c.ctr.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mounts, err := hs.client.SnapshotService(info.Snapshotter).Mounts(ctx, info.SnapshotKey)
	if err != nil {
		t.Fatal(err)
	}
	o, err := mountutil.ParseOverlay(mounts[0])
	if err != nil {
		t.Fatal(err)
	}
	return o.Upper
}

// nobody makes a command run as the unprivileged user nobody.
func nobody(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
}
