package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"

	"github.com/ctrforensics/ctrforensics/internal/testdaemon"
	"github.com/ctrforensics/ctrforensics/internal/testimage"
)

// bundleBench measures collect against `tar | sha256sum` of the upper
// directory, and verify against `sha256sum -c`, on a container holding
// sizeMiB of new data in files files.
func bundleBench(ctx context.Context, bin string, files, sizeMiB, runs int) error {
	w, err := startWebContainer(ctx, "bench")
	if err != nil {
		return err
	}
	defer w.stop()
	d, c, ctx, ctr, task := w.daemon, w.client, w.ctx, w.ctr, w.task
	fmt.Fprintf(os.Stderr, "writing %d MiB in %d files inside the container...\n", sizeMiB, files)
	per := sizeMiB << 20 / files
	script := fmt.Sprintf(`mkdir /data && cd /data && i=0 && while [ $i -lt %d ]; do head -c %d /dev/urandom > f$i || exit 1; i=$((i+1)); done`, files, per)
	if _, stderr, err := testdaemon.Exec(ctx, task, script); err != nil {
		return fmt.Errorf("%v: %s", err, stderr)
	}
	info, err := ctr.Info(ctx)
	if err != nil {
		return err
	}
	upper, err := upperOf(ctx, c, info)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("/var/tmp", "ctrforensics-bundle-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	cf := []string{bin, "--address", d.Address, "-n", d.Namespace}
	bag := filepath.Join(work, "bag")
	measures := []measure{
		{name: "tar | sha256sum", run: func() (sample, error) {
			tar := exec.Command("tar", "-C", upper, "-cf", "-", ".")
			sum := exec.Command("sha256sum")
			pipe, err := tar.StdoutPipe()
			if err != nil {
				return sample{}, err
			}
			sum.Stdin = pipe
			return timeCommands(tar, sum)
		}},
		{name: "collect", against: "tar | sha256sum", run: func() (sample, error) {
			os.RemoveAll(bag)
			return timeCommands(exec.Command(cf[0], append(cf[1:], "collect", "-o", bag, "bench")...))
		}},
		{name: "sha256sum -c", run: func() (sample, error) {
			cmd := exec.Command("sha256sum", "--quiet", "-c", "manifest-sha256.txt")
			cmd.Dir = bag
			return timeCommands(cmd)
		}},
		{name: "verify", against: "sha256sum -c", run: func() (sample, error) { return timeCommands(exec.Command(bin, "verify", bag)) }},
	}
	results := map[string][]sample{}
	for _, m := range measures {
		for i := 0; i < runs; i++ {
			s, err := m.run()
			if err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			results[m.name] = append(results[m.name], s)
		}
		fmt.Fprintf(os.Stderr, "  %-16s %v\n", m.name, medianOf(results[m.name]).dur)
	}
	fmt.Printf("\nevidence bundle benchmark: %d MiB of changed data in %d files, %d runs, warm page cache, median shown\n\n", sizeMiB, files, runs)
	printMeasures(measures, results, sizeMiB, 16)
	collectRatio := float64(medianOf(results["collect"]).dur) / float64(medianOf(results["tar | sha256sum"]).dur)
	verifyRatio := float64(medianOf(results["verify"]).dur) / float64(medianOf(results["sha256sum -c"]).dur)
	fmt.Println("\ncollect hashes with sha256 and sha512 (and the diff's sha256 of every changed file); verify checks both manifests.")
	fmt.Println("targets:")
	target("collect within 1.3x of tar | sha256sum", collectRatio <= 1.3, fmt.Sprintf("%.2fx", collectRatio))
	target("verify within 1.1x of sha256sum -c", verifyRatio <= 1.1, fmt.Sprintf("%.2fx", verifyRatio))
	target("collect peak RSS under 200 MiB", peak(results["collect"]) < 200<<10, fmt.Sprintf("%.0fMiB", float64(peak(results["collect"]))/1024))
	target("verify peak RSS under 200 MiB", peak(results["verify"]) < 200<<10, fmt.Sprintf("%.0fMiB", float64(peak(results["verify"]))/1024))
	return nil
}

// timeCommands starts cmds (already connected), waits for all of them, and
// returns the wall time and the largest peak RSS among them. The peak is the
// kernel's VmHWM of each process's own memory, polled from /proc: ru_maxrss
// would include the memory of this process, which a child shares (Go starts
// children with CLONE_VM) until it execs.
func timeCommands(cmds ...*exec.Cmd) (sample, error) {
	start := time.Now()
	errs := make([]*bytes.Buffer, len(cmds))
	peaks := make([]*hwmPoller, len(cmds))
	for i, c := range cmds {
		errs[i] = &bytes.Buffer{}
		c.Stderr = errs[i]
		if c.Stdout == nil {
			c.Stdout = io.Discard
		}
		if err := c.Start(); err != nil {
			return sample{}, err
		}
		peaks[i] = pollHWM(c.Process.Pid)
	}
	var s sample
	for i, c := range cmds {
		err := c.Wait()
		s.rssKiB = max(s.rssKiB, peaks[i].stop())
		if err != nil {
			return sample{}, fmt.Errorf("%s: %v: %s", c.Path, err, errs[i])
		}
	}
	s.dur = time.Since(start)
	return s, nil
}

// hwmPoller records the highest VmHWM of a process until it exits.
type hwmPoller struct {
	done chan struct{}
	kib  chan int64
}

func pollHWM(pid int) *hwmPoller {
	p := &hwmPoller{done: make(chan struct{}), kib: make(chan int64, 1)}
	go func() {
		var peak int64
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			if v := readHWM(pid); v > peak {
				peak = v
			}
			select {
			case <-p.done:
				p.kib <- peak
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// stop ends the polling (call it after Wait) and returns the peak in KiB.
func (p *hwmPoller) stop() int64 {
	close(p.done)
	return <-p.kib
}

func readHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kib int64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kib)
			return kib
		}
	}
	return 0
}

// measure is one command of a benchmark, compared with the median of the
// measure named against ("" for a baseline).
type measure struct {
	name, against string
	run           func() (sample, error)
}

// printMeasures prints a row per measure, the first column width wide: the
// median time, the throughput of sizeMiB, the ratio to its baseline's median
// and the peak RSS of its runs.
func printMeasures(measures []measure, results map[string][]sample, sizeMiB, width int) {
	fmt.Printf("%-*s %12s %10s %10s %9s\n", width, "command", "median", "MiB/s", "vs base", "peak RSS")
	for _, m := range measures {
		med := medianOf(results[m.name])
		ratio := "-"
		if m.against != "" {
			ratio = fmt.Sprintf("%.2fx", float64(med.dur)/float64(medianOf(results[m.against]).dur))
		}
		fmt.Printf("%-*s %12s %10.0f %10s %6.1fMiB\n", width, m.name, med.dur.Round(time.Millisecond),
			float64(sizeMiB)/med.dur.Seconds(), ratio, float64(peak(results[m.name]))/1024)
	}
}

// target prints one line of a benchmark's targets: what was measured and
// whether it met the target.
func target(name string, ok bool, got string) {
	verdict := "met"
	if !ok {
		verdict = "MISSED"
	}
	fmt.Printf("  %-48s %-10s %s\n", name, got, verdict)
}

func medianOf(s []sample) sample {
	c := append([]sample(nil), s...)
	sort.Slice(c, func(i, j int) bool { return c[i].dur < c[j].dur })
	return c[len(c)/2]
}

func peak(s []sample) int64 {
	var m int64
	for _, x := range s {
		m = max(m, x.rssKiB)
	}
	return m
}

// webContainer is a running container of the web test image on a private
// daemon, for the suites that measure a command on one container.
type webContainer struct {
	daemon *testdaemon.Daemon
	client *client.Client
	ctx    context.Context // the daemon's namespace
	ctr    client.Container
	task   client.Task
	stop   func() // removes the container and stops the daemon
}

// startWebContainer starts a private daemon and runs the web image in a
// container named name, idle.
func startWebContainer(ctx context.Context, name string) (_ *webContainer, err error) {
	d, c, ctx, stop, err := startDaemon(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	web, err := testimage.WebImage(ctx)
	if err != nil {
		return nil, err
	}
	img, err := testdaemon.ImportImage(ctx, c, web, "overlayfs")
	if err != nil {
		return nil, err
	}
	ctr, task, err := testdaemon.RunContainer(ctx, c, name, img, "overlayfs", "/bin/sh", "-c", "sleep 100000")
	if err != nil {
		return nil, err
	}
	return &webContainer{daemon: d, client: c, ctx: ctx, ctr: ctr, task: task,
		stop: func() { testdaemon.RemoveContainer(context.Background(), ctr); stop() }}, nil
}
