package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/ctrforensics/ctrforensics/internal/testdaemon"
	"github.com/ctrforensics/ctrforensics/internal/testimage"
)

// imageBench measures `image files` against mounting the image's snapshot
// read-only and walking it with filepath.WalkDir, on an image of files files
// in 5 layers, and the peak RSS of `image files` on an image of bigFiles files.
func imageBench(ctx context.Context, bin string, files, bigFiles, runs int) error {
	d, c, ctx, stop, err := startDaemon(ctx)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(os.Stderr, "building and unpacking an image of %d files in 5 layers...\n", files)
	if _, err := testdaemon.ImportImage(ctx, c, generatedImage("docker.io/bench/files:100k", files, 5), "overlayfs"); err != nil {
		return err
	}
	work, err := os.MkdirTemp("/var/tmp", "ctrforensics-image-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	cf := []string{"--address", d.Address, "-n", d.Namespace}
	mnt := filepath.Join(work, "mnt")
	var ours, base []sample
	for i := 0; i < runs; i++ {
		s, err := timeCommands(exec.Command(bin, append(cf, "image", "files", "docker.io/bench/files:100k")...))
		if err != nil {
			return err
		}
		ours = append(ours, s)
		if s, err = mountAndWalk(bin, cf, mnt, "docker.io/bench/files:100k"); err != nil {
			return err
		}
		base = append(base, s)
	}
	fmt.Fprintf(os.Stderr, "building an image of %d files (not unpacked)...\n", bigFiles)
	if err := importOnly(ctx, c, generatedImage("docker.io/bench/files:1m", bigFiles, 5)); err != nil {
		return err
	}
	big, err := timeCommands(exec.Command(bin, append(cf, "image", "files", "--format", "json", "docker.io/bench/files:1m")...))
	if err != nil {
		return err
	}
	fmt.Printf("\nimage files benchmark: %d files in 5 layers, %d runs, median shown\n\n", files, runs)
	fmt.Printf("%-34s %12s %10s %10s\n", "method", "median", "vs base", "peak RSS")
	mo, mb := medianOf(ours), medianOf(base)
	fmt.Printf("%-34s %12s %9.2fx %7.1fMiB\n", "image files (reads the layer blobs)", mo.dur.Round(time.Millisecond), float64(mo.dur)/float64(mb.dur), float64(peak(ours))/1024)
	fmt.Printf("%-34s %12s %10s %10s\n", "mount read-only + WalkDir + umount", mb.dur.Round(time.Millisecond), "1.00x", "-")
	fmt.Printf("%-34s %12s %10s %7.1fMiB\n", fmt.Sprintf("image files, %d files", bigFiles), big.dur.Round(time.Millisecond), "-", float64(big.rssKiB)/1024)
	fmt.Println("\nThe walk needs the image unpacked and a mount; image files needs neither, and it also gives each path's layer.")
	fmt.Println("targets:")
	verdict := "met"
	if big.rssKiB >= 300<<10 {
		verdict = "MISSED"
	}
	fmt.Printf("  %-48s %-10s %s\n", fmt.Sprintf("image files peak RSS under 300 MiB at %d files", bigFiles), fmt.Sprintf("%.0fMiB", float64(big.rssKiB)/1024), verdict)
	return nil
}

// startDaemon starts a private containerd for a benchmark and returns a
// client, a context in its namespace, and what stops it all.
func startDaemon(ctx context.Context) (*testdaemon.Daemon, *client.Client, context.Context, func(), error) {
	d, err := testdaemon.Start(ctx, "")
	if err != nil {
		return nil, nil, nil, nil, err
	}
	c, err := d.Client()
	if err != nil {
		d.Stop(context.Background())
		return nil, nil, nil, nil, err
	}
	stop := func() {
		c.Close()
		d.Stop(context.Background())
	}
	return d, c, namespaces.WithNamespace(ctx, d.Namespace), stop, nil
}

// generatedImage has files small files spread over layers layers, in
// directories of 1,000.
func generatedImage(name string, files, layers int) *testimage.Image {
	img := &testimage.Image{Name: name}
	per := files / layers
	for l := 0; l < layers; l++ {
		var fs []testimage.File
		for i := l * per; i < (l+1)*per; i++ {
			if i%1000 == 0 {
				fs = append(fs, testimage.Dir(fmt.Sprintf("/l%d/d%04d", l, i/1000), 0o755))
			}
			fs = append(fs, testimage.Reg(fmt.Sprintf("/l%d/d%04d/f%07d", l, i/1000, i), 0o644, "x"))
		}
		fs = append([]testimage.File{testimage.Dir(fmt.Sprintf("/l%d", l), 0o755)}, fs...)
		img.Layers = append(img.Layers, testimage.Layer{Files: fs, CreatedBy: fmt.Sprintf("layer %d", l)})
	}
	return img
}

// mountAndWalk is what a responder would otherwise do: mount the image
// read-only, walk it, unmount.
func mountAndWalk(bin string, cf []string, mnt, ref string) (sample, error) {
	start := time.Now()
	if out, err := exec.Command(bin, append(cf, "mount", ref, mnt)...).CombinedOutput(); err != nil {
		return sample{}, fmt.Errorf("mount: %v: %s", err, out)
	}
	n := 0
	werr := filepath.WalkDir(mnt, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		_, err = e.Info()
		n++
		return err
	})
	if out, err := exec.Command(bin, append(cf, "umount", mnt)...).CombinedOutput(); err != nil {
		return sample{}, fmt.Errorf("umount: %v: %s", err, out)
	}
	return sample{dur: time.Since(start), changes: n}, werr
}

// importOnly imports an image without unpacking it.
func importOnly(ctx context.Context, c *client.Client, img *testimage.Image) error {
	built, err := img.Build()
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { _, err := built.WriteTo(pw); pw.CloseWithError(err) }()
	_, err = c.Import(ctx, pr)
	return err
}
