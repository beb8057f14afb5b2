//go:build unix

package bagit

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDirFifo puts a FIFO in data/: it is reported, never opened (opening it
// would block).
func TestDirFifo(t *testing.T) {
	dir := makeBag(t, 100)
	must(t, unix.Mkfifo(filepath.Join(dir, "data/fifo"), 0o644))
	expectProblem(t, dir, checkUnsafe, "data/fifo")
}

// TestDeepTree verifies a bag whose payload path is longer than PATH_MAX.
func TestDeepTree(t *testing.T) {
	dir := makeBag(t, 10)
	fd, err := unix.Open(filepath.Join(dir, "data"), unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(t, err)
	name := strings.Repeat("d", 100)
	rel := "data"
	for range 100 { // 10,000 bytes of path, more than PATH_MAX
		must(t, unix.Mkdirat(fd, name, 0o755))
		next, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		must(t, err)
		unix.Close(fd)
		fd, rel = next, rel+"/"+name
	}
	f, err := unix.Openat(fd, "deep", unix.O_CREAT|unix.O_WRONLY, 0o644)
	must(t, err)
	unix.Close(f)
	unix.Close(fd)
	res, err := Verify(context.Background(), dir, Options{})
	must(t, err)
	if len(res.Problems) != 2 || !hasProblem(res, checkUnlisted, rel+"/deep") || !hasProblem(res, checkOxum, bagInfoTxt) {
		t.Errorf("problems:%s", problemList(res))
	}
	sameAsRoot(t, dir, res)
}
