package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/leases"

	"github.com/ctrforensics/ctrforensics/mountutil"
)

// handled is a ctrforensics process that has installed its SIGINT and SIGTERM
// handler.
type handled struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
}

// startHandled starts ctrforensics against the test daemon with env added to
// its environment, and returns once the program has installed its signal
// handler. The process starts with SIGINT ignored (as a shell starts a
// background job), so a SIGINT before the handler does nothing and the moment
// the handler appears is visible in /proc/PID/status: the delays of the tests
// below count from there, never from the fork.
func startHandled(t *testing.T, env []string, args ...string) *handled {
	t.Helper()
	argv := append([]string{"-c", `trap '' INT; exec "$0" "$@"`, h.bin, "--address", h.daemon.Address,
		"-n", h.daemon.Namespace}, args...)
	p := &handled{cmd: exec.Command("/bin/sh", argv...)}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := p.cmd.Process.Pid
	deadline := time.Now().Add(20 * time.Second)
	for !catchesSIGINT(pid) {
		if time.Now().After(deadline) {
			p.cmd.Process.Kill()
			p.cmd.Wait()
			t.Fatalf("ctrforensics %s never installed its signal handler: %s", strings.Join(args, " "), p.stderr.String())
		}
		time.Sleep(100 * time.Microsecond)
	}
	return p
}

// catchesSIGINT tells whether pid runs ctrforensics with a SIGINT handler.
func catchesSIGINT(pid int) bool {
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil || exe != h.bin {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "SigCgt:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && mask&(1<<(syscall.SIGINT-1)) != 0
		}
	}
	return false
}

// signalAfter sends sig d after the handler was installed and waits for the
// process; it returns the exit code (-1 when killed by a signal).
func (p *handled) signalAfter(d time.Duration, sig syscall.Signal) int {
	time.Sleep(d)
	p.cmd.Process.Signal(sig)
	p.cmd.Wait()
	return p.cmd.ProcessState.ExitCode()
}

// taskStatus returns the container's task status once it is settled (a
// pause still in flight has landed); a paused task is then resumed, so that
// the next run starts from a running task again.
func taskStatus(t *testing.T, c *container) client.ProcessStatus {
	t.Helper()
	var st client.Status
	var err error
	for i := 0; i < 200; i++ {
		if st, err = c.task.Status(h.ctx(t)); err != nil {
			t.Fatalf("status of %s: %v", c.id, err)
		}
		if st.Status != client.Pausing {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st.Status == client.Paused {
		if err := c.task.Resume(h.ctx(t)); err != nil {
			t.Fatalf("resume %s: %v", c.id, err)
		}
	}
	return st.Status
}

// waitPaused waits until the container's task is paused.
func waitPaused(t *testing.T, c *container) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := c.task.Status(h.ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if st.Status == client.Paused {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the task never got paused (%s)", st.Status)
		}
		time.Sleep(time.Millisecond)
	}
}

// removeLeaked removes the leases a run left, so that the next run is judged
// on its own, and returns how many there were.
func removeLeaked(t *testing.T, host hostState) int {
	t.Helper()
	ctx := h.ctx(t)
	ls, err := h.client.LeasesService().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range ls {
		if slices.Contains(host.leases, l.ID) {
			continue
		}
		n++
		if err := h.client.LeasesService().Delete(ctx, l, leases.SynchronousDelete); err != nil {
			t.Fatalf("delete leaked lease %s: %v", l.ID, err)
		}
	}
	return n
}

// checkInterrupted checks the outcome of a run that got SIGINT or SIGTERM: it
// either finished or reports the interruption, and the host is as before (no
// lease, view or mount left) with the task running.
func checkInterrupted(t *testing.T, what string, p *handled, code int, c *container, host hostState) (paused bool, leaked int) {
	t.Helper()
	switch code {
	case 0:
	case 130:
		if !strings.Contains(p.stderr.String(), "interrupted") {
			t.Errorf("%s: exit 130 without saying so: %q", what, p.stderr.String())
		}
		// The host is checked below: a failed cleanup would show there.
		if strings.Contains(p.stderr.String(), "cleaning up failed") {
			t.Errorf("%s: claims a failed cleanup: %q", what, p.stderr.String())
		}
	default:
		t.Errorf("%s: exit %d: %s", what, code, p.stderr.String())
	}
	if c != nil {
		if st := taskStatus(t, c); st != client.Running {
			t.Errorf("%s: task is %s afterwards; ctrforensics said: %q", what, st, p.stderr.String())
			paused = true
		}
	}
	after := captureHost(t)
	compareHost(t, what+" ("+strings.TrimSpace(p.stderr.String())+")", host, after)
	return paused, removeLeaked(t, host)
}

// TestPauseInterrupted interrupts `collect --pause` at every millisecond of
// its first 80 ms after the signal handler is installed (SIGINT), at a few
// moments with SIGTERM, and kills it at several moments followed by
// `cleanup`: the production task must be running at the end every time, no
// lease may be left, and cleanup must say when it resumed a task.
//
// On this container a whole `collect --pause` takes about as long, so the 81
// SIGINTs cover the lease, the pause, the capture and the resume; the run
// takes well under two minutes.
func TestPauseInterrupted(t *testing.T) {
	c := h.runContainer(t, "pause-interrupt", "overlayfs")
	h.attack(t, c, `echo defaced > /var/www/html/index.html`)
	tmp := t.TempDir()
	env := []string{"TMPDIR=" + tmp}
	host := captureHost(t)
	out := t.TempDir()
	collect := func(i int) []string {
		return []string{"collect", "--pause", "-o", filepath.Join(out, fmt.Sprintf("bag-%d.tar", i)), c.id}
	}
	type moment struct {
		sig syscall.Signal
		d   time.Duration
	}
	var moments []moment
	for ms := 0; ms <= 80; ms++ {
		moments = append(moments, moment{syscall.SIGINT, time.Duration(ms) * time.Millisecond})
	}
	for _, ms := range []int{2, 8, 15, 25, 40, 60} {
		moments = append(moments, moment{syscall.SIGTERM, time.Duration(ms) * time.Millisecond})
	}
	counts := map[string]int{}
	for i, m := range moments {
		what := fmt.Sprintf("%s after %v", m.sig, m.d)
		p := startHandled(t, env, collect(i)...)
		code := p.signalAfter(m.d, m.sig)
		counts[fmt.Sprintf("%s exit %d", m.sig, code)]++
		paused, leaked := checkInterrupted(t, what, p, code, c, host)
		if paused {
			counts["left paused"]++
		}
		if leaked > 0 {
			counts["leaked a lease"]++
		}
		os.RemoveAll(filepath.Join(out, fmt.Sprintf("bag-%d.tar", i)))
	}
	// The fixed moments may or may not find the task paused; the last kill
	// waits until it is, so that cleanup must resume it every run.
	kills := []int{0, 3, 6, 10, 15, 20, 30, 45, 70, -1}
	for i, ms := range kills {
		what := fmt.Sprintf("SIGKILL after %dms", ms)
		p := startHandled(t, env, collect(1000+i)...)
		if ms < 0 {
			what = "SIGKILL once paused"
			waitPaused(t, c)
		}
		p.signalAfter(time.Duration(max(ms, 0))*time.Millisecond, syscall.SIGKILL)
		st, err := c.task.Status(h.ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if st.Status == client.Paused || st.Status == client.Pausing {
			counts["killed while "+string(st.Status)]++
		}
		r := h.cliWith(t, func(cmd *exec.Cmd) { cmd.Env = append(os.Environ(), env...) },
			"--address", h.daemon.Address, "-n", h.daemon.Namespace, "cleanup")
		if r.code != 0 {
			t.Errorf("%s: cleanup: exit %d: %s", what, r.code, r.stderr)
		}
		if strings.Contains(r.stdout, "task resumed") {
			counts["resumed by cleanup"]++
		}
		time.Sleep(50 * time.Millisecond) // a pause still in flight in the shim lands now
		if after := taskStatus(t, c); after != client.Running {
			counts["left paused after cleanup"]++
			t.Errorf("%s: task is %s after cleanup; cleanup said:\n%s", what, after, r.stdout)
		} else if st.Status == client.Paused && !strings.Contains(r.stdout, "task resumed") {
			t.Errorf("%s: cleanup resumed the task without saying so:\n%s", what, r.stdout)
		}
		compareHost(t, what+" and cleanup", host, captureHost(t))
		if removeLeaked(t, host) > 0 {
			counts["lease left after cleanup"]++
		}
		os.RemoveAll(filepath.Join(out, fmt.Sprintf("bag-%d.tar", 1000+i)))
	}
	t.Logf("outcomes: %v", counts)
}

// TestDiffInterruptedAtEveryMoment sends SIGINT to `diff` every half
// millisecond of its first 40 ms after the handler is installed, which covers
// connecting, creating the lease and the mounts (a whole diff of this
// container takes about 35 ms here): no lease, view or mount may be left, and
// an exit that says everything was removed must be true.
func TestDiffInterruptedAtEveryMoment(t *testing.T) {
	c := h.runContainer(t, "diff-every-moment", "overlayfs")
	h.attack(t, c, `echo defaced > /var/www/html/index.html`)
	env := []string{"TMPDIR=" + t.TempDir()}
	host := captureHost(t)
	counts := map[string]int{}
	for d := time.Duration(0); d < 40*time.Millisecond; d += 500 * time.Microsecond {
		p := startHandled(t, env, "diff", c.id)
		code := p.signalAfter(d, syscall.SIGINT)
		counts[fmt.Sprintf("exit %d", code)]++
		if _, leaked := checkInterrupted(t, fmt.Sprintf("SIGINT after %v", d), p, code, nil, host); leaked > 0 {
			counts["leaked a lease"]++
		}
	}
	t.Logf("outcomes: %v", counts)
}

// TestCleanupFindsMountsOutsideItsTMPDIR kills runs that hold read-only
// mounts in one temporary directory and cleans up from another (as sudo
// does): cleanup must find the mounts through the run's lease, unmount them
// and remove their directories, and leave no lease.
func TestCleanupFindsMountsOutsideItsTMPDIR(t *testing.T) {
	c := h.runContainer(t, "cleanup-tmpdir", "overlayfs")
	h.attack(t, c, `truncate -s 12G /tmp/huge`)
	host := captureHost(t)
	for _, args := range [][]string{
		{"diff", "--method", "walk", c.id},
		{"collect", "-o", filepath.Join(t.TempDir(), "bag"), c.id},
	} {
		t.Run(args[0], func(t *testing.T) {
			runTmp, cleanupTmp := t.TempDir(), t.TempDir()
			t.Cleanup(func() { // whatever cleanup missed must not outlive the test
				if left, err := mountutil.UnmountUnder(runTmp); err != nil || len(left) > 0 {
					t.Errorf("the test had to unmount %v (%v)", left, err)
				}
			})
			p := startHandled(t, []string{"TMPDIR=" + runTmp}, args...)
			waitForMountUnder(t, runTmp)
			p.signalAfter(0, syscall.SIGKILL)
			r := h.cliWith(t, func(cmd *exec.Cmd) { cmd.Env = append(os.Environ(), "TMPDIR="+cleanupTmp) },
				"--address", h.daemon.Address, "-n", h.daemon.Namespace, "cleanup")
			if r.code != 0 || !strings.Contains(r.stdout, "removed: mount "+runTmp) {
				t.Errorf("cleanup: exit %d, did not report the mounts under %s:\n%s%s", r.code, runTmp, r.stdout, r.stderr)
			}
			if left, _ := os.ReadDir(runTmp); len(left) != 0 {
				t.Errorf("left in the run's TMPDIR: %v", left)
			}
			compareHost(t, "after SIGKILL and cleanup from another TMPDIR", host, captureHost(t))
			removeLeaked(t, host)
		})
	}
}

// waitForMountUnder waits until something is mounted below dir.
func waitForMountUnder(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(" "+dir+"/")) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("nothing was mounted under %s", dir)
}
