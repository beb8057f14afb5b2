package testdaemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/errdefs"

	"github.com/ctrforensics/ctrforensics/internal/testimage"
)

// ImportImage builds img, imports it into the daemon behind c (in the
// namespace of ctx, or c's default namespace) and unpacks it for
// snapshotter (e.g. "overlayfs"; "" means the client's default).
func ImportImage(ctx context.Context, c *client.Client, img *testimage.Image, snapshotter string) (client.Image, error) {
	built, err := img.Build()
	if err != nil {
		return nil, fmt.Errorf("build image %q: %w", img.Name, err)
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := built.WriteTo(pw)
		pw.CloseWithError(err)
	}()
	imgs, err := c.Import(ctx, pr)
	pr.CloseWithError(errors.New("import finished")) // unblock the writer on early failure
	if err != nil {
		return nil, fmt.Errorf("import image %q: %w", img.Name, err)
	}
	var image client.Image
	for _, rec := range imgs {
		if rec.Name == img.Name {
			image = client.NewImage(c, rec)
			break
		}
	}
	if image == nil {
		return nil, fmt.Errorf("import image %q: not among imported images %v", img.Name, imageNames(imgs))
	}
	if err := image.Unpack(ctx, snapshotter); err != nil {
		return nil, fmt.Errorf("unpack image %q for snapshotter %q: %w", img.Name, snapshotter, err)
	}
	return image, nil
}

// RunContainer creates container id from img with a new snapshot (key id)
// in snapshotter, using the image config and, when given, args as the
// process arguments, and starts its task under io.containerd.runc.v2 with
// null IO. On failure nothing is left behind.
func RunContainer(ctx context.Context, c *client.Client, id string, img client.Image, snapshotter string, args ...string) (client.Container, client.Task, error) {
	specOpts := []oci.SpecOpts{oci.WithImageConfig(img)}
	if len(args) > 0 {
		specOpts = append(specOpts, oci.WithProcessArgs(args...))
	}
	ctr, err := c.NewContainer(ctx, id,
		client.WithImage(img),
		client.WithSnapshotter(snapshotter),
		client.WithNewSnapshot(id, img),
		client.WithRuntime(plugins.RuntimeRuncV2, nil),
		client.WithNewSpec(specOpts...),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("create container %s: %w", id, err)
	}
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		cleanupErr := ctr.Delete(context.WithoutCancel(ctx), client.WithSnapshotCleanup)
		return nil, nil, errors.Join(fmt.Errorf("create task %s: %w", id, err), cleanupErr)
	}
	if err := task.Start(ctx); err != nil {
		cleanupErr := RemoveContainer(context.WithoutCancel(ctx), ctr)
		return nil, nil, errors.Join(fmt.Errorf("start task %s: %w", id, err), cleanupErr)
	}
	return ctr, task, nil
}

// Exec runs `/bin/sh -c script` inside the running task, with the task's
// process spec (user, env, cwd), and returns its stdout and stderr. It
// fails if the exit status is not 0; the error then includes stderr.
func Exec(ctx context.Context, task client.Task, script string) (stdout, stderr string, err error) {
	spec, err := task.Spec(ctx)
	if err != nil {
		return "", "", fmt.Errorf("exec in %s: get spec: %w", task.ID(), err)
	}
	if spec.Process == nil {
		return "", "", fmt.Errorf("exec in %s: spec has no process", task.ID())
	}
	pspec := *spec.Process
	pspec.Args = []string{"/bin/sh", "-c", script}
	pspec.Terminal = false
	pspec.ConsoleSize = nil

	suffix, err := randomHex(6)
	if err != nil {
		return "", "", err
	}
	execID := "exec-" + suffix
	var outBuf, errBuf bytes.Buffer
	creator := cio.NewCreator(cio.WithStreams(nil, &outBuf, &errBuf), cio.WithFIFODir(os.TempDir()))
	proc, err := task.Exec(ctx, execID, &pspec, creator)
	if err != nil {
		return "", "", fmt.Errorf("exec in %s: %w", task.ID(), err)
	}
	cleanup := context.WithoutCancel(ctx)
	statusC, err := proc.Wait(ctx)
	if err != nil {
		_, delErr := proc.Delete(cleanup, client.WithProcessKill)
		return "", "", errors.Join(fmt.Errorf("exec in %s: wait: %w", task.ID(), err), delErr)
	}
	if err := proc.Start(ctx); err != nil {
		_, delErr := proc.Delete(cleanup, client.WithProcessKill)
		return "", "", errors.Join(fmt.Errorf("exec in %s: start: %w", task.ID(), err), delErr)
	}
	var status client.ExitStatus
	select {
	case status = <-statusC:
	case <-ctx.Done():
		_, delErr := proc.Delete(cleanup, client.WithProcessKill)
		return "", "", errors.Join(fmt.Errorf("exec in %s: %w", task.ID(), ctx.Err()), delErr)
	}
	// Drain the output FIFOs completely before reading the buffers.
	proc.IO().Wait()
	if _, err := proc.Delete(cleanup); err != nil {
		return "", "", fmt.Errorf("exec in %s: delete process: %w", task.ID(), err)
	}
	stdout, stderr = outBuf.String(), errBuf.String()
	code, _, err := status.Result()
	if err != nil {
		return stdout, stderr, fmt.Errorf("exec in %s: %w", task.ID(), err)
	}
	if code != 0 {
		return stdout, stderr, fmt.Errorf("exec in %s: %q exited with status %d: %s", task.ID(), script, code, strings.TrimSpace(stderr))
	}
	return stdout, stderr, nil
}

// StopContainer kills the container's task (SIGKILL to all its
// processes), waits for it and deletes the task. The container and its
// snapshot are kept. A container without a task is left as is.
func StopContainer(ctx context.Context, ctr client.Container) error {
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop container %s: load task: %w", ctr.ID(), err)
	}
	ctx, cancel := context.WithTimeout(ctx, perTaskTimeout)
	defer cancel()
	if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("stop container %s: delete task: %w", ctr.ID(), err)
	}
	return nil
}

// RemoveContainer stops the container's task (see StopContainer) and
// deletes the container together with its snapshot.
func RemoveContainer(ctx context.Context, ctr client.Container) error {
	if err := StopContainer(ctx, ctr); err != nil {
		return err
	}
	if err := ctr.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", ctr.ID(), err)
	}
	return nil
}

// removeContainer is RemoveContainer with a bounded duration, for Stop.
func removeContainer(ctx context.Context, ctr client.Container) error {
	ctx, cancel := context.WithTimeout(ctx, perTaskTimeout+5*time.Second)
	defer cancel()
	return RemoveContainer(ctx, ctr)
}

// imageNames lists the names of imported images, for error messages.
func imageNames(imgs []images.Image) []string {
	names := make([]string, 0, len(imgs))
	for _, i := range imgs {
		names = append(names, i.Name)
	}
	return names
}
