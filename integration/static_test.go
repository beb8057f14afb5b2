package integration

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/containerd/v2/plugins"

	"github.com/ctrforensics/ctrforensics/internal/testdaemon"
	"github.com/ctrforensics/ctrforensics/internal/testimage"
)

// TestStaticBinaryRunsWithoutLibc runs the CLI binary under test inside a
// container whose root filesystem holds that one file and nothing else: no
// libc, no loader, no /etc. A responder copies this binary onto a node of an
// unknown distribution; it must not need anything there.
func TestStaticBinaryRunsWithoutLibc(t *testing.T) {
	ctx := h.ctx(t)
	bin, err := os.ReadFile(h.bin)
	if err != nil {
		t.Fatal(err)
	}
	img, err := testdaemon.ImportImage(ctx, h.client, &testimage.Image{
		Name:   "docker.io/ctrforensics/static-only:1",
		Layers: []testimage.Layer{{Files: []testimage.File{testimage.Reg("/ctrforensics", 0o755, string(bin))}, CreatedBy: "COPY ctrforensics /"}},
	}, "overlayfs")
	if err != nil {
		t.Fatal(err)
	}
	ctr, err := h.client.NewContainer(ctx, "static-only",
		client.WithImage(img), client.WithSnapshotter("overlayfs"), client.WithNewSnapshot("static-only", img),
		client.WithRuntime(plugins.RuntimeRuncV2, nil),
		client.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("/ctrforensics", "--version")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ctr.Delete(context.WithoutCancel(ctx), client.WithSnapshotCleanup); err != nil {
			t.Errorf("remove container: %v", err)
		}
	})
	var stdout, stderr bytes.Buffer
	task, err := ctr.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, &stdout, &stderr)))
	if err != nil {
		t.Fatal(err)
	}
	defer task.Delete(context.WithoutCancel(ctx), client.WithProcessKill)
	exited, err := task.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var status client.ExitStatus
	select {
	case status = <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("ctrforensics --version did not exit within 30s in an empty root filesystem")
	}
	// The task's output is copied asynchronously: close the IO before reading it.
	if io := task.IO(); io != nil {
		io.Wait()
		io.Close()
	}
	if status.ExitCode() != 0 {
		t.Fatalf("ctrforensics --version in an empty root filesystem: exit %d, stderr %q", status.ExitCode(), stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "ctrforensics version ") {
		t.Errorf("--version printed %q, want a line starting %q", stdout.String(), "ctrforensics version ")
	}
}
