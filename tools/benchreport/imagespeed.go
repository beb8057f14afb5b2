package main

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/platforms"
	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/internal/testimage"
)

// debianTar is where a debootstrap'ed Debian root is cached as a tar
// (scripts/bench-debian.sh makes it); the suite builds a two-layer gzip
// image of it when it is there.
func debianTar() string {
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "ctrforensics", "debian-bookworm-minbase.tar")
}

// imageSpeedBench measures the image commands on images imported but not
// unpacked, for bin and, when before is set, an older binary in the same run:
// `image files`, `image layers` and `image cat` of a small file, page cache
// warm and cold (the layer blobs evicted before each run), medians of runs,
// with peak RSS.
func imageSpeedBench(ctx context.Context, bin, before string, files, runs int) error {
	d, c, ctx, stop, err := startDaemon(ctx)
	if err != nil {
		return err
	}
	defer stop()
	type target struct {
		ref, cat string
	}
	var targets []target
	if _, err := os.Stat(debianTar()); err == nil {
		fmt.Fprintln(os.Stderr, "building a Debian image in two gzip layers from", debianTar(), "...")
		img, err := debianImage(debianTar())
		if err != nil {
			return err
		}
		if err := importOnly(ctx, c, img); err != nil {
			return err
		}
		targets = append(targets, target{img.Name, "/etc/debian_version"})
	} else {
		fmt.Fprintln(os.Stderr, "no", debianTar(), "(scripts/bench-debian.sh makes it): Debian image left out")
	}
	fmt.Fprintf(os.Stderr, "building an image of %d files in 5 layers (not unpacked)...\n", files)
	gen := generatedImage("docker.io/bench/speed:files", files, 5)
	if err := importOnly(ctx, c, gen); err != nil {
		return err
	}
	first := 4 * (files / 5) // the top layer's first file
	targets = append(targets, target{gen.Name, fmt.Sprintf("/l4/d%04d/f%07d", first/1000, first)})
	// The layer indexes live in a directory of this run: "now" reads them
	// (its warm-up run writes them), "no-index" reads every layer again.
	index, err := os.MkdirTemp("/var/tmp", "ctrforensics-imagespeed-index-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(index)
	type binary struct {
		name, path string
		flags      []string
	}
	bins := []binary{{"now", bin, []string{"--index-dir", index}}, {"no-index", bin, []string{"--no-index"}}}
	if before != "" {
		bins = append([]binary{{"before", before, nil}}, bins...)
	}
	cf := []string{"--address", d.Address, "-n", d.Namespace}
	fmt.Printf("\nimage commands, images imported but not unpacked, %d runs, median (peak RSS)\n\n", runs)
	fmt.Printf("%-28s %-8s %-7s %-22s %-22s\n", "image", "binary", "cache", "image files", "image layers")
	for _, tg := range targets {
		blobs, err := blobFiles(ctx, c, d.Root, tg.ref)
		if err != nil {
			return err
		}
		for _, cold := range []bool{false, true} {
			for _, b := range bins {
				cache := "warm"
				if cold {
					cache = "cold"
				}
				row := []string{}
				for _, args := range [][]string{{"image", "files", tg.ref}, {"image", "layers", tg.ref}, {"image", "cat", tg.ref, tg.cat}} {
					s, err := timeRuns(b.path, append(append(cf, args...), b.flags...), blobs, cold, runs)
					if err != nil {
						return err
					}
					row = append(row, fmt.Sprintf("%s (%.0fMiB)", s.dur.Round(time.Millisecond), float64(s.rssKiB)/1024))
				}
				fmt.Printf("%-28s %-8s %-7s %-22s %-22s image cat %s: %s\n", shortRef(tg.ref), b.name, cache, row[0], row[1], tg.cat, row[2])
			}
		}
	}
	fmt.Println("\ncold: the layer blobs are evicted from the page cache (posix_fadvise DONTNEED) before each run.")
	fmt.Println("now: with the layer indexes its first (warm-up) run kept; no-index: --no-index, every layer decompressed and checked.")
	return nil
}

func shortRef(ref string) string { return ref[strings.LastIndexByte(ref, '/')+1:] }

// timeRuns runs bin args runs times (after one warm-up run when warm) and
// returns the median time with the peak RSS of all runs.
func timeRuns(bin string, args, blobs []string, cold bool, runs int) (sample, error) {
	var ss []sample
	for i := -1; i < runs; i++ {
		if cold {
			if err := evict(blobs); err != nil {
				return sample{}, err
			}
		} else if i < 0 {
			if _, err := timeCommands(exec.Command(bin, args...)); err != nil {
				return sample{}, err
			}
			continue
		}
		if i < 0 {
			continue
		}
		s, err := timeCommands(exec.Command(bin, args...))
		if err != nil {
			return sample{}, err
		}
		ss = append(ss, s)
	}
	m := medianOf(ss)
	m.rssKiB = peak(ss)
	return m, nil
}

// evict drops files from the page cache.
func evict(paths []string) error {
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		f.Close()
		if err != nil {
			return fmt.Errorf("evict %s: %w", p, err)
		}
	}
	return nil
}

// blobFiles lists the files of an image's layer blobs in the daemon's root.
func blobFiles(ctx context.Context, c *client.Client, root, ref string) ([]string, error) {
	img, err := c.ImageService().Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	m, err := images.Manifest(ctx, c.ContentStore(), img.Target, platforms.Default())
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range m.Layers {
		out = append(out, filepath.Join(root, "io.containerd.content.v1.content", "blobs", l.Digest.Algorithm().String(), l.Digest.Encoded()))
	}
	return out, nil
}

// debianImage splits a root filesystem tar into two gzip layers: /usr/share
// and /var in the second, everything else in the first, as a Dockerfile that
// adds documentation and package lists on top of a base would.
func debianImage(p string) (*testimage.Image, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var base, top []testimage.File
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		name := "/" + strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/")
		if name == "/" || name == "/." {
			continue
		}
		fl := testimage.File{Path: strings.TrimSuffix(name, "/"), Type: h.Typeflag, Mode: h.Mode & 0o7777, UID: h.Uid, GID: h.Gid,
			Linkname: h.Linkname, ModTime: h.ModTime, Devmajor: h.Devmajor, Devminor: h.Devminor}
		if h.Typeflag == tar.TypeLink {
			fl.Linkname = "/" + strings.TrimPrefix(strings.TrimPrefix(h.Linkname, "./"), "/")
		}
		if h.Typeflag == tar.TypeReg {
			if fl.Content, err = io.ReadAll(tr); err != nil {
				return nil, err
			}
		}
		for k, v := range h.PAXRecords {
			if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if fl.Xattrs == nil {
					fl.Xattrs = map[string]string{}
				}
				fl.Xattrs[x] = v
			}
		}
		if strings.HasPrefix(fl.Path, "/usr/share/") || strings.HasPrefix(fl.Path, "/var/") {
			top = append(top, fl)
		} else {
			base = append(base, fl)
		}
	}
	sort.SliceStable(top, func(i, j int) bool { return top[i].Path < top[j].Path })
	return &testimage.Image{Name: "docker.io/bench/debian:bookworm", Layers: []testimage.Layer{
		{Files: base, CreatedBy: "ADD rootfs.tar /"},
		{Files: top, CreatedBy: "RUN apt-get update"},
	}}, nil
}

// diveBin is where a dive built from the Go module proxy is cached
// (GOBIN=~/.cache/ctrforensics/bin go install github.com/wagoodman/dive@v0.13.1,
// outside this module: it is never a dependency of ctrforensics).
func diveBin() string {
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "ctrforensics", "bin", "dive")
}

// diveBench compares `image files` and `image layers` on the Debian image with
// dive's analysis of the same image saved as a docker archive (`dive --ci
// --source docker-archive`), page cache warm, medians of runs.
func diveBench(ctx context.Context, bin string, runs int) error {
	if _, err := os.Stat(diveBin()); err != nil {
		return fmt.Errorf("no dive at %s: build it with GOBIN=%s go install github.com/wagoodman/dive@v0.13.1", diveBin(), filepath.Dir(diveBin()))
	}
	if _, err := os.Stat(debianTar()); err != nil {
		return fmt.Errorf("no Debian root at %s: run scripts/bench-debian.sh", debianTar())
	}
	d, c, ctx, stop, err := startDaemon(ctx)
	if err != nil {
		return err
	}
	defer stop()
	img, err := debianImage(debianTar())
	if err != nil {
		return err
	}
	if err := importOnly(ctx, c, img); err != nil {
		return err
	}
	work, err := os.MkdirTemp("/var/tmp", "ctrforensics-dive-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	cf := []string{"--address", d.Address, "-n", d.Namespace}
	archive := filepath.Join(work, "debian.tar")
	if out, err := exec.Command(bin, append(cf, "image", "save", "-o", archive, img.Name)...).CombinedOutput(); err != nil {
		return fmt.Errorf("image save: %v: %s", err, out)
	}
	// dive exits 0 on its CI rules; its report must show it analyzed the image.
	out, err := exec.Command(diveBin(), "--ci", "--source", "docker-archive", archive).CombinedOutput()
	if err != nil || !strings.Contains(strings.ToLower(string(out)), "efficiency") {
		return fmt.Errorf("dive did not analyze the image: %v: %s", err, out)
	}
	fmt.Printf("\nDebian image (2 gzip layers), page cache warm, %d runs, median (peak RSS)\n\n", runs)
	for _, m := range []struct {
		name string
		args []string
		bin  string
	}{
		{"ctrforensics image files", append(cf, "image", "files", img.Name), bin},
		{"ctrforensics image layers", append(cf, "image", "layers", img.Name), bin},
		{"dive --ci (docker archive)", []string{"--ci", "--source", "docker-archive", archive}, diveBin()},
	} {
		s, err := timeRuns(m.bin, m.args, nil, false, runs)
		if err != nil {
			return err
		}
		fmt.Printf("%-30s %10s %7.0fMiB\n", m.name, s.dur.Round(time.Millisecond), float64(s.rssKiB)/1024)
	}
	return nil
}
