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
	// The layer indexes live in directories of this run. "live" is the
	// default on a live daemon (no index: every layer decompressed and
	// checked); "root" the default on a dead host's root, a copy of the
	// daemon's, with the user's cache directory on a tmpfs of its own (the
	// examiner's disk), where its warm-up run keeps the indexes; "index-dir"
	// the live daemon with --index-dir.
	work, err := os.MkdirTemp("/var/tmp", "ctrforensics-imagespeed-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	dead, unmount, err := deadRoot(d.Root, filepath.Join(work, "root"))
	if err != nil {
		return err
	}
	defer unmount()
	cache := filepath.Join(work, "cache")
	if err := os.Mkdir(cache, 0o700); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", cache, "tmpfs", 0, "size=1g,mode=0700"); err != nil {
		return fmt.Errorf("mount a tmpfs on %s: %w", cache, err)
	}
	defer unix.Unmount(cache, 0)
	live := []string{"--address", d.Address, "-n", d.Namespace}
	type binary struct {
		name, path    string
		global, flags []string
		env           []string
	}
	bins := []binary{
		{"live", bin, live, nil, nil},
		{"root", bin, []string{"--root", dead, "-n", d.Namespace}, nil, append(os.Environ(), "XDG_CACHE_HOME="+cache)},
		{"index-dir", bin, live, []string{"--index-dir", filepath.Join(work, "index")}, nil},
	}
	if before != "" {
		bins = append([]binary{{"before", before, live, nil, nil}}, bins...)
	}
	fmt.Printf("\nimage commands, images imported but not unpacked, %d runs, median (peak RSS)\n\n", runs)
	fmt.Printf("%-28s %-9s %-7s %-22s %-22s\n", "image", "binary", "cache", "image files", "image layers")
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
					s, err := timeRunsEnv(b.path, append(append(append([]string{}, b.global...), args...), b.flags...), b.env, blobs, cold, runs)
					if err != nil {
						return err
					}
					row = append(row, fmt.Sprintf("%s (%.0fMiB)", s.dur.Round(time.Millisecond), float64(s.rssKiB)/1024))
				}
				fmt.Printf("%-28s %-9s %-7s %-22s %-22s image cat %s: %s\n", shortRef(tg.ref), b.name, cache, row[0], row[1], tg.cat, row[2])
			}
		}
	}
	fmt.Println("\ncold: the layer blobs are evicted from the page cache (posix_fadvise DONTNEED) before each run.")
	fmt.Println("live: the default on a live daemon, every layer used decompressed and checked; root: the default on a dead host's")
	fmt.Println("--root (here a copy of the daemon's), with the layer indexes its warm-up run kept in the user's cache directory;")
	fmt.Println("index-dir: the live daemon with --index-dir, likewise. The indexes are never evicted (cold: the blobs only).")
	return nil
}

func shortRef(ref string) string { return ref[strings.LastIndexByte(ref, '/')+1:] }

// timeRuns runs bin args runs times (after one warm-up run when warm) and
// returns the median time with the peak RSS of all runs.
func timeRuns(bin string, args, blobs []string, cold bool, runs int) (sample, error) {
	return timeRunsEnv(bin, args, nil, blobs, cold, runs)
}

// timeRunsEnv is timeRuns with env as the command's environment (nil: this
// process's).
func timeRunsEnv(bin string, args, env, blobs []string, cold bool, runs int) (sample, error) {
	command := func() *exec.Cmd {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		return cmd
	}
	var ss []sample
	for i := -1; i < runs; i++ {
		if cold {
			if err := evict(blobs); err != nil {
				return sample{}, err
			}
		} else if i < 0 {
			if _, err := timeCommands(command()); err != nil {
				return sample{}, err
			}
			continue
		}
		if i < 0 {
			continue
		}
		s, err := timeCommands(command())
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

// diveBench compares `image files` and `image layers` with what a user would
// otherwise run on the same images saved as docker archives: dive's analysis
// (`dive --ci --source docker-archive`) and syft's catalog (`syft -o json
// docker-archive:`), on the Debian image, on an image of files files in 5
// layers and, when bigFiles > 0 (the long report), on one of bigFiles files,
// measured once there: dive and syft take minutes on it. Page cache warm,
// medians of runs, peak RSS, ratios to `image files`, and issue 14's targets.
func diveBench(ctx context.Context, bin string, files, bigFiles, runs int) error {
	if _, err := os.Stat(diveBin()); err != nil {
		return fmt.Errorf("no dive at %s: build it with GOBIN=%s go install github.com/wagoodman/dive@v0.13.1", diveBin(), filepath.Dir(diveBin()))
	}
	if _, err := os.Stat(syftBin()); err != nil {
		return fmt.Errorf("no syft at %s: see syftBin in tools/benchreport/packages.go", syftBin())
	}
	if _, err := os.Stat(debianTar()); err != nil {
		return fmt.Errorf("no Debian root at %s: run scripts/bench-debian.sh", debianTar())
	}
	d, c, ctx, stop, err := startDaemon(ctx)
	if err != nil {
		return err
	}
	defer stop()
	work, err := os.MkdirTemp("/var/tmp", "ctrforensics-dive-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	deb, err := debianImage(debianTar())
	if err != nil {
		return err
	}
	type target struct {
		label string
		img   *testimage.Image
		runs  int
	}
	targets := []target{{"Debian (2 gzip layers)", deb, runs},
		{fmt.Sprintf("%dk files, 5 layers", files/1000), generatedImage("docker.io/bench/dive:files", files, 5), runs}}
	if bigFiles > 0 {
		targets = append(targets, target{fmt.Sprintf("%dk files, 5 layers", bigFiles/1000), generatedImage("docker.io/bench/dive:big", bigFiles, 5), 1})
	}
	cf := []string{"--address", d.Address, "-n", d.Namespace}
	fmt.Printf("\nimage files and layers against dive and syft on the same image saved as a docker archive, page cache warm,\n"+
		"median of %d runs after a warm-up (the big image: 1 run), peak RSS, time as a multiple of image files'\n\n", runs)
	fmt.Printf("%-26s %-34s %10s %10s %8s\n", "image", "command", "median", "peak RSS", "x files")
	var verdicts []string
	for i, tg := range targets {
		fmt.Fprintf(os.Stderr, "importing %s...\n", tg.label)
		if err := importOnly(ctx, c, tg.img); err != nil {
			return err
		}
		archive := filepath.Join(work, fmt.Sprintf("image%d.tar", i))
		if out, err := exec.Command(bin, append(cf, "image", "save", "-o", archive, tg.img.Name)...).CombinedOutput(); err != nil {
			return fmt.Errorf("image save: %v: %s", err, out)
		}
		// dive exits 0 on its CI rules; its report must show it analyzed the image.
		if out, err := exec.Command(diveBin(), "--ci", "--source", "docker-archive", archive).CombinedOutput(); err != nil || !strings.Contains(strings.ToLower(string(out)), "efficiency") {
			return fmt.Errorf("dive did not analyze %s: %v: %s", tg.label, err, out)
		}
		rows := []struct {
			name, bin string
			args      []string
		}{
			{"ctrforensics image files", bin, append(cf, "image", "files", tg.img.Name)},
			{"ctrforensics image layers", bin, append(cf, "image", "layers", tg.img.Name)},
			{"dive --ci (docker archive)", diveBin(), []string{"--ci", "--source", "docker-archive", archive}},
			{"syft -o json docker-archive:FILE", syftBin(), []string{"-q", "-o", "json", "docker-archive:" + archive}},
		}
		got := make([]sample, len(rows))
		for j, r := range rows {
			cmd := exec.Command(r.bin, r.args...)
			cmd.Env = append(os.Environ(), "SYFT_CHECK_FOR_APP_UPDATE=false")
			if tg.runs == 1 {
				got[j], err = timeCommands(cmd)
			} else {
				got[j], err = timeRunsEnv(r.bin, r.args, cmd.Env, nil, false, tg.runs)
			}
			if err != nil {
				return fmt.Errorf("%s on %s: %w", r.name, tg.label, err)
			}
			fmt.Printf("%-26s %-34s %10s %7.0fMiB %7.1fx\n", tg.label, r.name, got[j].dur.Round(time.Millisecond),
				float64(got[j].rssKiB)/1024, float64(got[j].dur)/float64(got[0].dur))
		}
		files, dive, syft := got[0].dur, got[2].dur, got[3].dur
		if i == 0 {
			verdicts = append(verdicts, verdict(fmt.Sprintf("image files at most dive's time on %s", tg.label), files <= dive))
			continue
		}
		verdicts = append(verdicts, verdict(fmt.Sprintf("image files >= 10x faster than dive and syft at %s", tg.label),
			dive >= 10*files && syft >= 10*files))
	}
	fmt.Println("\nissue 14 targets:")
	for _, v := range verdicts {
		fmt.Println("  " + v)
	}
	return nil
}

// verdict says whether a target was met.
func verdict(target string, met bool) string {
	if met {
		return target + ": met"
	}
	return target + ": MISSED"
}

// deadRoot makes at dir a containerd root no daemon holds, as a dead host's
// disk, from the live root root: a copy of its meta.db beside hard links to
// its content store's files (the same inodes: evicting the originals evicts
// them), bind-mounted read-only at dir+"-ro" as a dead host's disk is
// mounted. It returns the mount and what unmounts it.
func deadRoot(root, dir string) (string, func(), error) {
	meta := filepath.Join("io.containerd.metadata.v1.bolt", "meta.db")
	if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(meta)), 0o700); err != nil {
		return "", nil, err
	}
	if out, err := exec.Command("cp", filepath.Join(root, meta), filepath.Join(dir, meta)).CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("copy %s: %v: %s", meta, err, out)
	}
	content := filepath.Join(root, "io.containerd.content.v1.content")
	if out, err := exec.Command("cp", "-al", content, dir).CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("link %s: %v: %s", content, err, out)
	}
	ro := dir + "-ro"
	if err := os.Mkdir(ro, 0o700); err != nil {
		return "", nil, err
	}
	if err := unix.Mount(dir, ro, "", unix.MS_BIND, ""); err != nil {
		return "", nil, fmt.Errorf("bind %s: %w", dir, err)
	}
	unmount := func() { unix.Unmount(ro, unix.MNT_DETACH) }
	for _, flags := range []uintptr{unix.MS_PRIVATE, unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY} {
		if err := unix.Mount("", ro, "", flags, ""); err != nil {
			unmount()
			return "", nil, fmt.Errorf("mount %s read-only: %w", ro, err)
		}
	}
	return ro, unmount, nil
}
