package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/pkg/rootfs"

	"github.com/ctrforensics/ctrforensics/internal/testdaemon"
	"github.com/ctrforensics/ctrforensics/internal/testimage"
)

// commitBench measures `ctrforensics commit` (the container's image plus a
// layer of its changes, as an OCI layout tar) against the double walk
// nerdctl's commit uses: containerd's rootfs.CreateDiff through the diff
// service (both trees mounted, continuity's fs.Changes, a gzip layer written
// to the content store), on containers of images of each size with changes
// files changed, in the same run.
func commitBench(ctx context.Context, bin string, sizes []int, changes, runs int) error {
	d, c, ctx, stop, err := startDaemon(ctx)
	if err != nil {
		return err
	}
	defer stop()
	work, err := os.MkdirTemp("/var/tmp", "ctrforensics-commit-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	type row struct{ ours, base sample }
	rows := map[int]row{}
	for _, files := range sizes {
		fmt.Fprintf(os.Stderr, "commit: image of %d files, container with %d changed files...\n", files, changes)
		ctr, err := benchContainer(ctx, c, files, changes)
		if err != nil {
			return err
		}
		var ours, base []sample
		for i := 0; i < runs; i++ {
			out := filepath.Join(work, fmt.Sprintf("c%d-%d.tar", files, i))
			s, err := timeCommands(exec.Command(bin, "--address", d.Address, "-n", d.Namespace, "commit", "-o", out, ctr.ID()))
			if err != nil {
				return err
			}
			os.Remove(out)
			ours = append(ours, s)
			if s, err = createDiff(ctx, c, ctr); err != nil {
				return err
			}
			base = append(base, s)
		}
		rows[files] = row{ours: withPeak(medianOf(ours), ours), base: medianOf(base)}
		if err := testdaemon.RemoveContainer(context.Background(), ctr); err != nil {
			return err
		}
	}
	fmt.Printf("\ncommit benchmark: %d changed files, %d runs, warm page cache, median shown\n\n", changes, runs)
	fmt.Printf("%-10s %14s %10s %28s %10s\n", "files", "commit", "peak RSS", "rootfs.CreateDiff (nerdctl)", "speedup")
	for _, files := range sizes {
		r := rows[files]
		fmt.Printf("%-10d %14s %7.1fMiB %28s %9.0fx\n", files, r.ours.dur.Round(100*time.Microsecond), float64(r.ours.rssKiB)/1024,
			r.base.dur.Round(time.Millisecond), float64(r.base.dur)/float64(r.ours.dur))
	}
	fmt.Println("\ncommit writes the whole OCI layout (the image's blobs copied, the new layer, config, manifest) and walks")
	fmt.Println("only the upper directory; CreateDiff walks both trees and writes only the new layer.")
	if len(sizes) >= 2 {
		small, big := rows[sizes[0]], rows[sizes[len(sizes)-1]]
		speedup := float64(big.base.dur) / float64(big.ours.dur)
		growth := float64(big.ours.dur) / float64(small.ours.dur)
		fmt.Println("targets:")
		target(fmt.Sprintf("commit >= 20x faster than CreateDiff at %d files", sizes[len(sizes)-1]), speedup >= 20, fmt.Sprintf("%.0fx", speedup))
		target(fmt.Sprintf("commit %d vs %d files within 1.5x", sizes[len(sizes)-1], sizes[0]), growth <= 1.5, fmt.Sprintf("%.2fx", growth))
	}
	return nil
}

func withPeak(s sample, all []sample) sample {
	s.rssKiB = peak(all)
	return s
}

// benchContainer runs a container of a generated image of files files (5
// layers over busybox) in which changes files were written.
func benchContainer(ctx context.Context, c *client.Client, files, changes int) (client.Container, error) {
	base, err := testimage.Busybox(ctx)
	if err != nil {
		return nil, err
	}
	gen := generatedImage(fmt.Sprintf("docker.io/bench/commit:%d", files), files, 5)
	gen.Layers = append([]testimage.Layer{{Files: base, CreatedBy: "busybox"}}, gen.Layers...)
	img, err := testdaemon.ImportImage(ctx, c, gen, "overlayfs")
	if err != nil {
		return nil, err
	}
	ctr, task, err := testdaemon.RunContainer(ctx, c, fmt.Sprintf("commit-%d", files), img, "overlayfs", "/bin/sh", "-c", "sleep 100000")
	if err != nil {
		return nil, err
	}
	script := fmt.Sprintf(`mkdir /changed && i=0 && while [ $i -lt %d ]; do echo change $i > /changed/f$i || exit 1; i=$((i+1)); done`, changes)
	if _, stderr, err := testdaemon.Exec(ctx, task, script); err != nil {
		testdaemon.RemoveContainer(context.Background(), ctr)
		return nil, fmt.Errorf("%v: %s", err, stderr)
	}
	return ctr, nil
}

// createDiff runs what nerdctl's commit runs to build its layer: CreateDiff
// of the container's snapshot through containerd's diff service, under a
// lease removed afterwards (the blob goes with it).
func createDiff(ctx context.Context, c *client.Client, ctr client.Container) (sample, error) {
	info, err := ctr.Info(ctx)
	if err != nil {
		return sample{}, err
	}
	ctx, done, err := c.WithLease(ctx, leases.WithRandomID(), leases.WithExpiration(time.Hour))
	if err != nil {
		return sample{}, err
	}
	defer done(context.Background())
	start := time.Now()
	_, err = rootfs.CreateDiff(ctx, info.SnapshotKey, c.SnapshotService(info.Snapshotter), c.DiffService())
	return sample{dur: time.Since(start)}, err
}

// commitSizes parses the -sizes list.
func commitSizes(list string) []int {
	var out []int
	for _, f := range strings.Split(list, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}
