// Package testutil holds the policies tests share: the one for tests that
// need root, and golden files (Golden).
//
// Tests that mount, run containerd or read other users' files call
// RequiresRoot (or RequiresRootM from TestMain). When the process is not
// root they are skipped, so `go test ./...` works for any contributor, unless
// the environment variable RequireRootEnv is set to 1: then they fail, so a
// CI run that is meant to exercise them can never skip them silently.
// `make test` sets it.
package testutil

import (
	"fmt"
	"os"
	"testing"
)

// RequireRootEnv names the environment variable that turns a skip for lack
// of root into a failure.
const RequireRootEnv = "CTRFORENSICS_TEST_ROOT"

// rootRequired reports whether the suite was told that root tests must run.
func rootRequired() bool { return os.Getenv(RequireRootEnv) == "1" }

// RequiresRoot skips t when the process is not root, or fails it when
// RequireRootEnv is 1.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if rootRequired() {
		t.Fatalf("this test needs root and %s=1 forbids skipping it: run it as root", RequireRootEnv)
	}
	t.Skip("needs root (mounts, containerd): run as root, e.g. make test")
}

// RequiresRootM is RequiresRoot for TestMain: it returns false, after saying
// why on stderr, when the package's tests must not run; the caller then
// exits with code.
func RequiresRootM() (run bool, code int) {
	if os.Geteuid() == 0 {
		return true, 0
	}
	if rootRequired() {
		fmt.Fprintf(os.Stderr, "these tests need root and %s=1 forbids skipping them: run them as root\n", RequireRootEnv)
		return false, 1
	}
	fmt.Fprintln(os.Stderr, "skipping: these tests need root (containerd, runc, overlayfs): run them as root, e.g. make test")
	return false, 0
}
