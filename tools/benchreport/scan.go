package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/containerd/containerd/v2/client"

	"github.com/ctrforensics/ctrforensics/internal/testdaemon"
)

// scanRules is the rule set of the YARA comparison: plain strings, a regular
// expression, and the hash and math modules.
const scanRules = `import "hash"
import "math"
rule php_eval_get { strings: $a = "eval($_GET" condition: $a }
rule pool_url { strings: $p = /stratum\+tcp:\/\/[a-z.]+:[0-9]+/ condition: $p }
rule known_md5 { condition: hash.md5(0, filesize) == "d41d8cd98f00b204e9800998ecf8427e" }
rule high_entropy { condition: filesize > 4096 and math.entropy(0, filesize) > 7.9 }
`

// scanBench measures `ctrforensics scan` of a container with changes changed
// files on images of each size (its cost must not grow with the image), and,
// when the YARA build and Debian's yara are there, `scan --all --rules R` of
// the largest container against `yara -r R` on the same tree (a read-only
// mount of the container), in the same run.
func scanBench(ctx context.Context, bin, yaraBin string, sizes []int, changes, runs int) error {
	d, c, ctx, stop, err := startDaemon(ctx)
	if err != nil {
		return err
	}
	defer stop()
	work, err := os.MkdirTemp("/var/tmp", "ctrforensics-scan-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	cli := func(b string, args ...string) *exec.Cmd {
		return exec.Command(b, append([]string{"--address", d.Address, "-n", d.Namespace}, args...)...)
	}
	med := map[int]sample{}
	var last client.Container
	for _, files := range sizes {
		fmt.Fprintf(os.Stderr, "scan: image of %d files, container with %d changed files...\n", files, changes)
		ctr, err := benchContainer(ctx, c, files, changes)
		if err != nil {
			return err
		}
		var all []sample
		for i := 0; i < runs; i++ {
			s, err := timeCommands(cli(bin, "scan", ctr.ID()))
			if err != nil {
				return err
			}
			all = append(all, s)
		}
		med[files] = withPeak(medianOf(all), all)
		if last != nil {
			if err := testdaemon.RemoveContainer(context.Background(), last); err != nil {
				return err
			}
		}
		last = ctr
	}
	defer testdaemon.RemoveContainer(context.Background(), last)
	fmt.Printf("\nscan benchmark: a container with %d changed files, %d runs, warm page cache, median shown\n\n", changes, runs)
	fmt.Printf("%-10s %14s %10s\n", "files", "scan", "peak RSS")
	for _, files := range sizes {
		fmt.Printf("%-10d %14s %7.1fMiB\n", files, med[files].dur.Round(100*time.Microsecond), float64(med[files].rssKiB)/1024)
	}
	if len(sizes) >= 2 {
		growth := float64(med[sizes[len(sizes)-1]].dur) / float64(med[sizes[0]].dur)
		verdict := "met"
		if growth > 1.5 {
			verdict = "MISSED"
		}
		fmt.Printf("target: cost independent of image size, within 1.5x from %d to %d files: %.2fx, %s\n", sizes[0], sizes[len(sizes)-1], growth, verdict)
	}
	return yaraBench(cli, yaraBin, last.ID(), work, runs)
}

// yaraBench compares scan --all --rules with yara -r on the container's tree.
func yaraBench(cli func(string, ...string) *exec.Cmd, yaraBin, ctr, work string, runs int) error {
	yaraCLI, err := exec.LookPath("yara")
	if _, serr := os.Stat(yaraBin); err != nil || serr != nil {
		fmt.Println("\nscan --rules vs yara -r: skipped (needs make build-yara and Debian's yara)")
		return nil
	}
	rules := filepath.Join(work, "rules.yar")
	if err := os.WriteFile(rules, []byte(scanRules), 0o644); err != nil {
		return err
	}
	mnt := filepath.Join(work, "root")
	if out, err := cli(yaraBin, "mount", ctr, mnt).CombinedOutput(); err != nil {
		return fmt.Errorf("mount: %v: %s", err, out)
	}
	defer cli(yaraBin, "umount", mnt).Run()
	var ours, theirs []sample
	for i := 0; i < runs; i++ {
		s, err := timeCommands(cli(yaraBin, "scan", "--all", "--rules", rules, ctr))
		if err != nil {
			return err
		}
		ours = append(ours, s)
		// yara exits non-zero on unreadable files; time it regardless.
		start := time.Now()
		exec.Command(yaraCLI, "-r", "-N", rules, mnt).Run()
		theirs = append(theirs, sample{dur: time.Since(start)})
	}
	o, t := medianOf(ours), medianOf(theirs)
	verdict := "met"
	if float64(o.dur) > 1.5*float64(t.dur) {
		verdict = "MISSED"
	}
	fmt.Printf("\nscan --all --rules R vs yara -r R on the same tree (%d runs, median): %s vs %s, %.2fx (target within 1.5x: %s)\n",
		runs, o.dur.Round(time.Millisecond), t.dur.Round(time.Millisecond), float64(o.dur)/float64(t.dur), verdict)
	return nil
}
