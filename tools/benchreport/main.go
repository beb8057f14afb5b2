// Command benchreport prints the benchmark report of `make bench`: the overlay
// fast path of `ctrforensics diff` against the read-only double walk (ours, and
// continuity's fs.Changes plus hashing, the method docker diff and nerdctl diff
// use), and against a floor (a bare walk of the upper directory that hashes its
// files), on images of 10k and 100k files with 100 changed files. Each run is a
// separate process, so that its peak RSS can be read. It is a report, not a test:
// it always exits 0 once it has measured.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/continuity/fs"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/forensic/diff"
	"github.com/ctrforensics/ctrforensics/internal/benchtree"
)

var methods = []string{"overlay", "walk", "continuity", "floor"}

func main() {
	worker := flag.String("worker", "", "internal: run one method once and print its time")
	upper := flag.String("upper", "", "internal: upper directory")
	lower := flag.String("lower", "", "internal: image layer")
	merged := flag.String("merged", "", "internal: read-only merged mount")
	runs := flag.Int("runs", 7, "runs per method and size")
	sizes := flag.String("sizes", "10000,100000", "image sizes in files")
	changes := flag.Int("changes", 100, "changed files per image")
	suites := flag.String("suites", "diff,bundle,image,imagespeed,dive,commit,offline,sparse,scan,packages,s3",
		"which benchmarks: diff, bundle, image, imagespeed, dive, commit, offline, sparse, scan, packages, s3; imagesame (with -before: outputs compared)")
	bin := flag.String("bin", "bin/ctrforensics", "the ctrforensics binary, for the bundle suite")
	bundleMiB := flag.Int("bundle-mib", 1024, "changed data of the bundle benchmark, in MiB")
	bundleFiles := flag.Int("bundle-files", 10000, "files of the bundle benchmark")
	imageFiles := flag.Int("image-files", 100000, "files of the image files benchmark")
	long := flag.Bool("long", false, "the long report: the dive suite adds the -big-image-files image (dive and syft take minutes on it)")
	bigImageFiles := flag.Int("big-image-files", 1000000, "files of the image whose listing's peak RSS is measured")
	sparseGiB := flag.Int("sparse-gib", 2, "logical size of the sparse file of the sparse benchmark, in GiB")
	before := flag.String("before", "", "an older ctrforensics binary to measure in the same run (sparse and imagespeed suites), or to compare outputs with (imagesame)")
	uploadFile := flag.String("upload", "", "internal: upload FILE to the -to object (the s3 suite's baseline)")
	uploadTo := flag.String("to", "", "internal: the object of -upload, s3://BUCKET/KEY")
	flag.Parse()
	if *uploadFile != "" {
		if err := uploadWorker(*uploadFile, *uploadTo); err != nil {
			fmt.Fprintln(os.Stderr, "benchreport upload:", err)
			os.Exit(1)
		}
		return
	}
	if *worker != "" {
		if err := runWorker(*worker, *upper, *lower, *merged); err != nil {
			fmt.Fprintln(os.Stderr, "benchreport worker:", err)
			os.Exit(1)
		}
		return
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "benchreport: needs root: it mounts overlayfs and runs containerd")
		os.Exit(2)
	}
	for _, s := range strings.Split(*suites, ",") {
		var err error
		switch s {
		case "diff":
			err = report(*sizes, *changes, *runs)
		case "bundle":
			abs, aerr := filepath.Abs(*bin)
			if aerr != nil {
				err = aerr
				break
			}
			err = bundleBench(context.Background(), abs, *bundleFiles, *bundleMiB, 3)
		case "image":
			abs, aerr := filepath.Abs(*bin)
			if aerr != nil {
				err = aerr
				break
			}
			err = imageBench(context.Background(), abs, *imageFiles, *bigImageFiles, 3)
		case "imagespeed":
			abs, aerr := filepath.Abs(*bin)
			if aerr != nil {
				err = aerr
				break
			}
			err = imageSpeedBench(context.Background(), abs, *before, *imageFiles, *runs)
		case "imagesame":
			abs, aerr := filepath.Abs(*bin)
			if aerr != nil {
				err = aerr
				break
			}
			err = imageSameBench(context.Background(), abs, *before, *imageFiles)
		case "dive":
			abs, aerr := filepath.Abs(*bin)
			if aerr != nil {
				err = aerr
				break
			}
			big := 0
			if *long {
				big = *bigImageFiles
			}
			err = diveBench(context.Background(), abs, *imageFiles, big, *runs)
		case "commit":
			abs, aerr := filepath.Abs(*bin)
			if aerr != nil {
				err = aerr
				break
			}
			err = commitBench(context.Background(), abs, commitSizes(*sizes), *changes, 5)
		case "scan":
			abs, aerr := filepath.Abs(*bin)
			if aerr != nil {
				err = aerr
				break
			}
			err = scanBench(context.Background(), abs, filepath.Join(filepath.Dir(abs), "ctrforensics-yara"), commitSizes(*sizes), *changes, 5)
		case "sparse":
			abs, aerr := filepath.Abs(*bin)
			if aerr != nil {
				err = aerr
				break
			}
			err = sparseBench(context.Background(), abs, *before, *sparseGiB, 3)
		case "packages":
			abs, aerr := filepath.Abs(*bin)
			if aerr != nil {
				err = aerr
				break
			}
			err = packagesBench(context.Background(), abs, *imageFiles, *changes, *runs)
		case "s3":
			abs, aerr := filepath.Abs(*bin)
			if aerr != nil {
				err = aerr
				break
			}
			err = s3Bench(context.Background(), abs, *bundleFiles, *bundleMiB, 3)
		case "offline":
			abs, aerr := filepath.Abs(*bin)
			if aerr != nil {
				err = aerr
				break
			}
			err = offlineBench(context.Background(), abs, *imageFiles, *changes, *runs)
		default:
			err = fmt.Errorf("unknown suite %q", s)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchreport:", err)
			os.Exit(2)
		}
	}
}

// runWorker runs one method and prints "<nanoseconds> <changes found>".
func runWorker(method, upper, lower, merged string) error {
	ctx := context.Background()
	start := time.Now()
	var n int
	switch method {
	case "overlay":
		d, err := diff.OverlayDiff(ctx, upper, lower, diff.Options{})
		if err != nil {
			return err
		}
		n = len(d.Changes)
	case "walk":
		d, err := diff.TreeDiff(ctx, merged, lower, diff.Options{})
		if err != nil {
			return err
		}
		n = len(d.Changes)
	case "continuity":
		err := fs.Changes(ctx, lower, merged, func(k fs.ChangeKind, p string, fi os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			n++
			if k != fs.ChangeKindDelete && fi.Mode().IsRegular() {
				_, err := hashFile(filepath.Join(merged, p))
				return err
			}
			return nil
		})
		if err != nil {
			return err
		}
	case "floor":
		err := filepath.WalkDir(upper, func(p string, e iofs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			n++
			if e.Type().IsRegular() {
				_, err := hashFile(p)
				return err
			}
			return nil
		})
		if err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown method %q", method)
	}
	fmt.Println(time.Since(start).Nanoseconds(), n)
	return nil
}

func hashFile(p string) (digest.Digest, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return digest.SHA256.FromReader(f)
}

type sample struct {
	dur     time.Duration
	rssKiB  int64
	changes int
}

type result struct {
	method  string
	files   int
	samples []sample
}

func (r result) median() time.Duration {
	d := make([]time.Duration, len(r.samples))
	for i, s := range r.samples {
		d[i] = s.dur
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

func (r result) peakRSS() int64 {
	var m int64
	for _, s := range r.samples {
		m = max(m, s.rssKiB)
	}
	return m
}

func report(sizeList string, changes, runs int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	base, err := os.MkdirTemp("/var/tmp", "ctrforensics-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(base)
	fmt.Printf("ctrforensics diff benchmark: %d changed files, %d runs per method, warm page cache, median shown\n\n", changes, runs)
	all := map[string]map[int]result{}
	var files []int
	for _, s := range strings.Split(sizeList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("bad size %q", s)
		}
		files = append(files, n)
		res, err := measureSize(self, filepath.Join(base, s), n, changes, runs)
		if err != nil {
			return err
		}
		for _, r := range res {
			if all[r.method] == nil {
				all[r.method] = map[int]result{}
			}
			all[r.method][n] = r
		}
	}
	printTable(os.Stdout, all, files)
	printTargets(os.Stdout, all, files)
	return nil
}

func measureSize(self, dir string, files, changes, runs int) ([]result, error) {
	fmt.Fprintf(os.Stderr, "building an image of %d files...\n", files)
	f, err := benchtree.Build(dir, files, changes)
	if err != nil {
		return nil, err
	}
	merged := filepath.Join(dir, "ro")
	if err := os.Mkdir(merged, 0o755); err != nil {
		return nil, err
	}
	opts := fmt.Sprintf("lowerdir=%s:%s,index=off", f.Upper, f.Lower)
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY, opts); err != nil {
		return nil, fmt.Errorf("mount read-only overlay: %w", err)
	}
	defer unix.Unmount(merged, 0)
	var out []result
	for _, m := range methods {
		r := result{method: m, files: files}
		for i := 0; i < runs; i++ {
			s, err := runOnce(self, m, f.Upper, f.Lower, merged)
			if err != nil {
				return nil, err
			}
			r.samples = append(r.samples, s)
		}
		fmt.Fprintf(os.Stderr, "  %-10s %8d files: %v\n", m, files, r.median())
		out = append(out, r)
	}
	return out, nil
}

func runOnce(self, method, upper, lower, merged string) (sample, error) {
	cmd := exec.Command(self, "-worker", method, "-upper", upper, "-lower", lower, "-merged", merged)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Start(); err != nil {
		return sample{}, err
	}
	hwm := pollHWM(cmd.Process.Pid)
	err := cmd.Wait()
	rss := hwm.stop()
	if err != nil {
		return sample{}, fmt.Errorf("%s: %w", method, err)
	}
	var ns int64
	var n int
	if _, err := fmt.Sscan(out.String(), &ns, &n); err != nil {
		return sample{}, fmt.Errorf("%s: bad worker output %q", method, out.String())
	}
	return sample{dur: time.Duration(ns), rssKiB: rss, changes: n}, nil
}

func printTable(w io.Writer, all map[string]map[int]result, files []int) {
	fmt.Fprintf(w, "%-11s %9s %12s %9s %10s %8s\n", "method", "files", "median", "vs fast", "peak RSS", "changes")
	for _, n := range files {
		fast := all["overlay"][n].median()
		for _, m := range methods {
			r := all[m][n]
			fmt.Fprintf(w, "%-11s %9d %12s %8.1fx %7.1fMiB %8d\n", m, n, r.median().Round(10*time.Microsecond),
				float64(r.median())/float64(fast), float64(r.peakRSS())/1024, r.samples[0].changes)
		}
	}
	fmt.Fprintln(w, "\noverlay: ctrforensics fast path (upper directory only); walk: ctrforensics double walk (hashes every")
	fmt.Fprintln(w, "file present on both sides); continuity: fs.Changes + sha256 of changed files (docker/nerdctl diff's")
	fmt.Fprintln(w, "method); floor: filepath.WalkDir of the upper directory hashing its regular files.")
}

func printTargets(w io.Writer, all map[string]map[int]result, files []int) {
	if len(files) < 2 {
		return
	}
	small, big := files[0], files[len(files)-1]
	fast := all["overlay"]
	check := func(name string, ok bool, got string) {
		verdict := "met"
		if !ok {
			verdict = "MISSED"
		}
		fmt.Fprintf(w, "  %-62s %-16s %s\n", name, got, verdict)
	}
	fmt.Fprintln(w, "\ntargets:")
	speedup := float64(all["continuity"][big].median()) / float64(fast[big].median())
	check(fmt.Sprintf("fast path >= 50x faster than continuity double walk at %d", big), speedup >= 50, fmt.Sprintf("%.0fx", speedup))
	own := float64(all["walk"][big].median()) / float64(fast[big].median())
	check(fmt.Sprintf("fast path >= 50x faster than our double walk at %d", big), own >= 50, fmt.Sprintf("%.0fx", own))
	floor := float64(fast[big].median()) / float64(all["floor"][big].median())
	check(fmt.Sprintf("fast path within 3x of the floor at %d", big), floor <= 3, fmt.Sprintf("%.2fx", floor))
	growth := float64(fast[big].median()) / float64(fast[small].median())
	check(fmt.Sprintf("fast path at %d within 1.5x of its time at %d", big, small), growth <= 1.5, fmt.Sprintf("%.2fx", growth))
}
