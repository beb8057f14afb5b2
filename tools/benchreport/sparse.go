package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/ctrforensics/ctrforensics/internal/testdaemon"
)

// sparseBench measures `collect` of a container holding one sparse file of
// sizeGiB with 1 MiB of data in its middle: the bag's size and the time, for
// bin and, when before is set, for an older binary in the same run.
func sparseBench(ctx context.Context, bin, before string, sizeGiB, runs int) error {
	w, err := startWebContainer(ctx, "sparse")
	if err != nil {
		return err
	}
	defer w.stop()
	d, ctx, task := w.daemon, w.ctx, w.task
	script := fmt.Sprintf(`truncate -s %dG /big && dd if=/dev/urandom of=/big bs=1M count=1 seek=%d conv=notrunc 2>/dev/null`, sizeGiB, sizeGiB<<9)
	if _, stderr, err := testdaemon.Exec(ctx, task, script); err != nil {
		return fmt.Errorf("%v: %s", err, stderr)
	}
	work, err := os.MkdirTemp("/var/tmp", "ctrforensics-sparse-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	binaries := []struct{ name, path string }{{"collect", bin}}
	if before != "" {
		binaries = append([]struct{ name, path string }{{"collect (before)", before}}, binaries...)
	}
	fmt.Printf("\nsparse file benchmark: one %d GiB sparse file holding 1 MiB of data, %d runs, median shown\n\n", sizeGiB, runs)
	fmt.Printf("%-18s %12s %14s %9s\n", "command", "median", "bag (.tar)", "peak RSS")
	for _, b := range binaries {
		var samples []sample
		var size int64
		for i := 0; i < runs; i++ {
			bag := filepath.Join(work, "bag.tar")
			os.Remove(bag)
			s, err := timeCommands(exec.Command(b.path, "--address", d.Address, "-n", d.Namespace, "collect", "-o", bag, "sparse"))
			if err != nil {
				return fmt.Errorf("%s: %w", b.name, err)
			}
			fi, err := os.Stat(bag)
			if err != nil {
				return err
			}
			samples, size = append(samples, s), fi.Size()
		}
		med := medianOf(samples)
		fmt.Printf("%-18s %12s %11.1fMiB %6.1fMiB\n", b.name, med.dur.Round(time.Millisecond), float64(size)/(1<<20), float64(peak(samples))/1024)
	}
	return nil
}
