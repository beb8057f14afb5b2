package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/ctrforensics/ctrforensics/internal/testdaemon"
	"github.com/ctrforensics/ctrforensics/internal/testimage"
	"github.com/ctrforensics/ctrforensics/mountutil"
)

// syftBin is where a syft built from the Go module proxy is cached, outside
// this module (it is never a dependency of ctrforensics): in a temporary
// module, GOFLAGS=-mod=mod CGO_ENABLED=0 go get
// github.com/anchore/syft/cmd/syft@v1.57.1 && go build -o
// ~/.cache/ctrforensics/bin/syft github.com/anchore/syft/cmd/syft.
func syftBin() string { return filepath.Join(filepath.Dir(diveBin()), "syft") }

// osTypes are the package types of OS package managers, in ctrforensics'
// and syft's vocabulary alike.
var osTypes = map[string]bool{"deb": true, "apk": true, "rpm": true}

// packagesBench compares `packages IMAGE` (and `image files`) with syft on
// the same image saved as a docker archive, on the Debian image and on the
// Debian image with files more files on top, in the same run: medians of
// runs, warm page cache, peak RSS and the OS packages each found. Then
// `packages --verify` of a container of each image with changes changed
// files, whose cost should not depend on the image's size. Last, `packages
// --verify IMAGE` against dpkg --verify --root on the same final filesystem,
// extracted.
func packagesBench(ctx context.Context, bin string, files, changes, runs int) error {
	if _, err := os.Stat(debianTar()); err != nil {
		return fmt.Errorf("no Debian root at %s: run scripts/bench-debian.sh", debianTar())
	}
	syft := ""
	if _, err := os.Stat(syftBin()); err == nil {
		syft = syftBin()
	} else {
		fmt.Fprintf(os.Stderr, "no syft at %s: syft left out\n", syftBin())
	}
	d, c, ctx, stop, err := startDaemon(ctx)
	if err != nil {
		return err
	}
	defer stop()
	deb, err := debianImage(debianTar())
	if err != nil {
		return err
	}
	big := generatedImage("docker.io/bench/debian:files", files, 5)
	big.Layers = append(append([]testimage.Layer{}, deb.Layers...), big.Layers...)
	work, err := os.MkdirTemp("/var/tmp", "ctrforensics-packages-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	cf := []string{"--address", d.Address, "-n", d.Namespace}
	type target struct {
		label, image, root string
		extract            time.Duration
		ctr                client.Container
	}
	var targets []target
	fmt.Printf("\npackages benchmark: page cache warm, %d runs, median (peak RSS), OS packages found\n\n", runs)
	fmt.Printf("%-34s %-36s %12s %10s %8s\n", "image", "command", "median", "peak RSS", "OS pkgs")
	for i, img := range []*testimage.Image{deb, big} {
		label := "Debian bookworm minbase"
		if i == 1 {
			label = fmt.Sprintf("Debian + %d files (7 layers)", files)
		}
		fmt.Fprintf(os.Stderr, "importing and unpacking %s...\n", label)
		ci, err := testdaemon.ImportImage(ctx, c, img, "overlayfs")
		if err != nil {
			return err
		}
		if err := compareImage(bin, syft, cf, label, img.Name, filepath.Join(work, fmt.Sprintf("image%d.tar", i)), runs); err != nil {
			return err
		}
		ctr, err := verifyContainer(ctx, c, fmt.Sprintf("verify-%d", i), ci, deb, changes)
		if err != nil {
			return err
		}
		defer ctr.Delete(context.WithoutCancel(ctx), client.WithSnapshotCleanup)
		start := time.Now()
		root, err := exportRoot(bin, cf, img.Name, filepath.Join(work, fmt.Sprintf("root%d", i)))
		if err != nil {
			return err
		}
		targets = append(targets, target{label, img.Name, root, time.Since(start), ctr})
	}
	fmt.Printf("\npackages --verify, a container with %d changed files (half package files rewritten, half new)\n\n", changes)
	fmt.Printf("%-34s %12s %10s %8s\n", "image", "median", "peak RSS", "results")
	for _, t := range targets {
		args := append(cf, "packages", "--verify", "--format", "json", t.ctr.ID())
		out, err := exec.Command(bin, args...).Output()
		if err != nil {
			return fmt.Errorf("packages --verify %s: %w", t.ctr.ID(), err)
		}
		s, err := timeRuns(bin, args, nil, false, runs)
		if err != nil {
			return err
		}
		fmt.Printf("%-34s %12s %7.0fMiB %8d\n", t.label, s.dur.Round(time.Millisecond), float64(s.rssKiB)/1024, bytes.Count(out, []byte("\n")))
	}
	fmt.Printf("\npackages --verify IMAGE (every package-owned file, from the layers) against dpkg --verify --root on the\nsame final filesystem extracted\n\n")
	fmt.Printf("%-34s %-36s %12s %10s %8s\n", "image", "command", "median", "peak RSS", "flagged")
	for _, t := range targets {
		if err := compareVerify(bin, cf, t.label, t.image, t.root, runs); err != nil {
			return err
		}
		fmt.Printf("%-34s %-36s %12s %10s %8s\n", t.label, "(dpkg's input: image export + tar -x)", t.extract.Round(time.Millisecond), "1 run", "-")
	}
	return nil
}

// exportRoot extracts the final filesystem of image ref into dir, through
// image export.
func exportRoot(bin string, cf []string, ref, dir string) (string, error) {
	archive := dir + ".tar"
	if out, err := exec.Command(bin, append(cf, "image", "export", "-o", archive, ref)...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("image export: %v: %s", err, out)
	}
	defer os.Remove(archive)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	if out, err := exec.Command("tar", "--numeric-owner", "-C", dir, "-xf", archive).CombinedOutput(); err != nil {
		return "", fmt.Errorf("extract %s: %v: %s", archive, err, out)
	}
	return dir, nil
}

// compareVerify prints the rows of packages --verify IMAGE and of dpkg
// --verify --root on the image's extracted final filesystem, with the files
// each flags (results not ok; dpkg prints only those).
func compareVerify(bin string, cf []string, label, ref, root string, runs int) error {
	ours := append(cf, "packages", "--verify", "--format", "json", ref)
	out, err := exec.Command(bin, ours...).Output()
	if err != nil {
		return fmt.Errorf("packages --verify %s: %w", ref, err)
	}
	flagged := bytes.Count(out, []byte("\n")) - bytes.Count(out, []byte(`"status":"ok"`))
	dpkgArgs := []string{"--root=" + root, "--verify"}
	dout, err := exec.Command("dpkg", dpkgArgs...).Output()
	if err != nil {
		return fmt.Errorf("dpkg --verify --root=%s: %w", root, err)
	}
	rows := []struct {
		name, bin string
		args      []string
		flagged   int
	}{
		{"ctrforensics packages --verify", bin, ours, flagged},
		{"dpkg --verify --root DIR", "dpkg", dpkgArgs, bytes.Count(dout, []byte("\n"))},
	}
	for _, r := range rows {
		s, err := timeRuns(r.bin, r.args, nil, false, runs)
		if err != nil {
			return err
		}
		fmt.Printf("%-34s %-36s %12s %7.0fMiB %8d\n", label, r.name, s.dur.Round(time.Millisecond), float64(s.rssKiB)/1024, r.flagged)
	}
	return nil
}

// compareImage prints the rows of one image: packages, image files and syft
// on the image saved to archive.
func compareImage(bin, syft string, cf []string, label, ref, archive string, runs int) error {
	out, err := exec.Command(bin, append(cf, "packages", "--format", "json", ref)...).Output()
	if err != nil {
		return fmt.Errorf("packages %s: %w", ref, err)
	}
	ours, err := countOS(out, false)
	if err != nil {
		return err
	}
	rows := []struct {
		name, bin string
		args      []string
		pkgs      string
	}{
		{"ctrforensics packages", bin, append(cf, "packages", "--format", "json", ref), fmt.Sprint(ours)},
		{"ctrforensics image files", bin, append(cf, "image", "files", ref), "-"},
		{"ctrforensics image files --no-index", bin, append(cf, "image", "files", "--no-index", ref), "-"},
	}
	if syft != "" {
		if out, err := exec.Command(bin, append(cf, "image", "save", "-o", archive, ref)...).CombinedOutput(); err != nil {
			return fmt.Errorf("image save: %v: %s", err, out)
		}
		args := []string{"-q", "-o", "json", "docker-archive:" + archive}
		cmd := exec.Command(syft, args...)
		cmd.Env = append(os.Environ(), "SYFT_CHECK_FOR_APP_UPDATE=false")
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("syft %s: %w", archive, err)
		}
		theirs, err := countOS(out, true)
		if err != nil {
			return err
		}
		rows = append(rows, struct {
			name, bin string
			args      []string
			pkgs      string
		}{"syft -o json docker-archive:FILE", syft, args, fmt.Sprint(theirs)})
	}
	for _, r := range rows {
		s, err := timeRuns(r.bin, r.args, nil, false, runs)
		if err != nil {
			return err
		}
		fmt.Printf("%-34s %-36s %12s %7.0fMiB %8s\n", label, r.name, s.dur.Round(time.Millisecond), float64(s.rssKiB)/1024, r.pkgs)
	}
	return nil
}

// countOS counts the OS packages of a packages JSON-lines output, or of a
// syft JSON document.
func countOS(out []byte, syft bool) (int, error) {
	type pkg struct {
		Type string `json:"type"`
	}
	var all []pkg
	if syft {
		var doc struct {
			Artifacts []pkg `json:"artifacts"`
		}
		if err := json.Unmarshal(out, &doc); err != nil {
			return 0, fmt.Errorf("syft output: %w", err)
		}
		all = doc.Artifacts
	} else {
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(nil, 1<<24)
		for sc.Scan() {
			var p pkg
			if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
				return 0, fmt.Errorf("packages output: %w", err)
			}
			all = append(all, p)
		}
		if err := sc.Err(); err != nil {
			return 0, err
		}
	}
	n := 0
	for _, p := range all {
		if osTypes[p.Type] {
			n++
		}
	}
	return n, nil
}

// verifyContainer creates a container of img (not started) and writes
// changes files into its upper directory: half of them rewrite regular files
// of the Debian image deb under /usr/share/doc, half are new.
func verifyContainer(ctx context.Context, c *client.Client, id string, img client.Image, deb *testimage.Image, changes int) (client.Container, error) {
	ctr, err := c.NewContainer(ctx, id, client.WithSnapshotter("overlayfs"),
		client.WithNewSnapshot(id, img), client.WithNewSpec(oci.WithDefaultSpec()))
	if err != nil {
		return nil, err
	}
	info, err := ctr.Info(ctx)
	if err == nil {
		var upper string
		if upper, err = upperOf(ctx, c, info); err == nil {
			err = writeChanges(upper, deb, changes)
		}
	}
	if err != nil {
		ctr.Delete(context.WithoutCancel(ctx), client.WithSnapshotCleanup)
		return nil, err
	}
	return ctr, nil
}

// upperOf is the upper directory of the overlay snapshot of the container
// info describes.
func upperOf(ctx context.Context, c *client.Client, info containers.Container) (string, error) {
	mounts, err := c.SnapshotService(info.Snapshotter).Mounts(ctx, info.SnapshotKey)
	if err != nil {
		return "", err
	}
	o, err := mountutil.ParseOverlay(mounts[0])
	if err != nil {
		return "", err
	}
	return o.Upper, nil
}

func writeChanges(upper string, deb *testimage.Image, changes int) error {
	var owned []string
	for _, l := range deb.Layers {
		for _, f := range l.Files {
			if f.Type == tar.TypeReg && strings.HasPrefix(f.Path, "/usr/share/doc/") && len(owned) < changes/2 {
				owned = append(owned, f.Path)
			}
		}
	}
	for i := len(owned); i < changes; i++ {
		owned = append(owned, fmt.Sprintf("/changed/new%04d", i))
	}
	for _, p := range owned {
		dst := filepath.Join(upper, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, []byte("changed\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}
