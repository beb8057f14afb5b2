package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/oci"
	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/internal/testdaemon"
)

// offlineBench measures `diff` of a container of a files-file image with
// changes changed files read from a disk root (--root, a read-only bind mount
// of the daemon's root, whose databases the running daemon holds locked, so
// that they are copied first: the slower case) against the same diff through
// the socket.
func offlineBench(ctx context.Context, bin string, files, changes, runs int) error {
	d, c, ctx, stop, err := startDaemon(ctx)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(os.Stderr, "building and unpacking an image of %d files...\n", files)
	img, err := testdaemon.ImportImage(ctx, c, generatedImage("docker.io/bench/files:offline", files, 5), "overlayfs")
	if err != nil {
		return err
	}
	ctr, err := c.NewContainer(ctx, "offline-bench", client.WithSnapshotter("overlayfs"),
		client.WithNewSnapshot("offline-bench", img), client.WithNewSpec(oci.WithDefaultSpec()))
	if err != nil {
		return err
	}
	defer ctr.Delete(context.WithoutCancel(ctx), client.WithSnapshotCleanup)
	if err := changeUpper(ctx, c, ctr, changes); err != nil {
		return err
	}
	work, err := os.MkdirTemp("/var/tmp", "ctrforensics-offline-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	root := filepath.Join(work, "root")
	if err := bindReadOnly(d.Root, root); err != nil {
		return err
	}
	defer unix.Unmount(root, 0)
	source := [][]string{{"--address", d.Address}, {"--root", root}}
	results := make([][]sample, len(source))
	for i := 0; i < runs; i++ {
		for j, src := range source {
			args := append(src, "-n", d.Namespace, "diff", "--format", "json", "offline-bench")
			s, err := timeCommands(exec.Command(bin, args...))
			if err != nil {
				return fmt.Errorf("diff %v: %w", src, err)
			}
			results[j] = append(results[j], s)
		}
	}
	ls, offs := results[0], results[1]
	ml, mo := medianOf(ls), medianOf(offs)
	ratio := float64(mo.dur) / float64(ml.dur)
	fmt.Printf("\noffline diff benchmark: %d files in 5 layers, %d changed files, %d runs each (alternating), median shown\n\n", files, changes, runs)
	fmt.Printf("%-44s %12s %10s %10s\n", "command", "median", "vs live", "peak RSS")
	fmt.Printf("%-44s %12s %10s %7.1fMiB\n", "diff --address (live daemon)", ml.dur.Round(100*time.Microsecond), "1.00x", float64(peak(ls))/1024)
	fmt.Printf("%-44s %12s %9.2fx %7.1fMiB\n", "diff --root (databases locked: copied first)", mo.dur.Round(100*time.Microsecond), ratio, float64(peak(offs))/1024)
	verdict := "met"
	if ratio > 1.2 {
		verdict = "MISSED"
	}
	fmt.Println("targets:")
	fmt.Printf("  %-48s %-10s %s\n", "offline diff within 1.2x of live diff", fmt.Sprintf("%.2fx", ratio), verdict)
	return nil
}

// changeUpper writes changes files into the container's upper directory: half
// of them new, half replacing files of the image.
func changeUpper(ctx context.Context, c *client.Client, ctr client.Container, changes int) error {
	info, err := ctr.Info(ctx)
	if err != nil {
		return err
	}
	upper, err := upperOf(ctx, c, info)
	if err != nil {
		return err
	}
	dir := filepath.Join(upper, "l0", "d0000")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := 0; i < changes; i++ {
		name := fmt.Sprintf("new%04d", i)
		if i%2 == 1 {
			name = fmt.Sprintf("f%07d", i)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte("changed\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// bindReadOnly bind-mounts dir read-only and private at at, as a disk image
// is mounted.
func bindReadOnly(dir, at string) error {
	if err := os.Mkdir(at, 0o700); err != nil {
		return err
	}
	if err := unix.Mount(dir, at, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s: %w", dir, err)
	}
	for _, flags := range []uintptr{unix.MS_PRIVATE, unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY} {
		if err := unix.Mount("", at, "", flags, ""); err != nil {
			unix.Unmount(at, 0)
			return fmt.Errorf("make %s private and read-only: %w", at, err)
		}
	}
	return nil
}
