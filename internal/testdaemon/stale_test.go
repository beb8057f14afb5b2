package testdaemon

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/internal/testutil"
)

// TestRemoveStale leaves two daemon directories as a killed run would, one
// with a mount below it and one a live process still names: only the first
// goes, its mount first; a directory of another name is never touched.
func TestRemoveStale(t *testing.T) {
	testutil.RequiresRoot(t)
	parent := t.TempDir()
	t.Setenv(DirEnv, parent)
	stale := filepath.Join(parent, dirPrefix+"stale")
	live := filepath.Join(parent, dirPrefix+"live")
	other := filepath.Join(parent, "other")
	rootfs := filepath.Join(stale, "state", "rootfs")
	for _, d := range []string{rootfs, live, other} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount("tmpfs", rootfs, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(rootfs, unix.MNT_DETACH) })
	// A process naming a path below the live directory, as a shim names its
	// socket.
	// (The path is an argument of sh, which waits on sleep: sleep itself
	// would refuse it and exit at once.)
	user := exec.Command("sh", "-c", "sleep 60; :", "sh", filepath.Join(live, "containerd.sock"))
	if err := user.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { user.Process.Kill(); user.Wait() })
	// Start returns once the child is forked, maybe before it has exec'd
	// sleep: until then its command line is the test binary's.
	cmdline := fmt.Sprintf("/proc/%d/cmdline", user.Process.Pid)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if b, _ := os.ReadFile(cmdline); bytes.Contains(b, []byte(live)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never named %s", cmdline, live)
		}
	}

	if removed, err := RemoveStale(time.Hour); err != nil || len(removed) != 0 {
		t.Fatalf("RemoveStale removed fresh directories %v (%v)", removed, err)
	}
	removed, err := RemoveStale(0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{stale}) {
		t.Errorf("removed %v, want [%s]", removed, stale)
	}
	if mounts, err := Mounts(parent); err != nil || len(mounts) != 0 {
		t.Errorf("mounts left under %s: %v (%v)", parent, mounts, err)
	}
	for dir, want := range map[string]bool{stale: false, live: true, other: true} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", dir, err == nil, want)
		}
	}
}
