package testdaemon

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// dirPrefix starts the name of every daemon directory Start creates.
const dirPrefix = "ctrforensics-containerd-"

// RemoveStale removes the daemon directories a killed test run left under
// the parent directory (DirEnv, or DefaultParentDir): those no live process
// refers to (no containerd, shim or runc naming them on its command line),
// their mounts first, deepest first. A directory some process still uses, or
// changed less than minAge ago (a run between creating it and starting its
// containerd), is another run's and is left alone; nothing is killed. It
// returns the directories it removed.
func RemoveStale(minAge time.Duration) ([]string, error) {
	entries, err := os.ReadDir(parentDir())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read %s: %w", parentDir(), err)
	}
	var dirs []string
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), dirPrefix) {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) >= minAge {
			dirs = append(dirs, filepath.Join(parentDir(), e.Name()))
		}
	}
	if len(dirs) == 0 {
		return nil, nil
	}
	cmdlines, err := commandLines()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, dir := range dirs {
		if inUse(dir, cmdlines) {
			continue
		}
		if err := UnmountAll(dir); err != nil {
			errs = append(errs, err)
			continue // never RemoveAll through a mount that is still there
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("remove stale %s: %w", dir, err))
			continue
		}
		removed = append(removed, dir)
	}
	return removed, errors.Join(errs...)
}

// inUse tells whether a command line names dir or a path below it.
func inUse(dir string, cmdlines [][]byte) bool {
	for _, c := range cmdlines {
		for _, arg := range bytes.Split(c, []byte{0}) {
			if a := string(arg); a == dir || strings.HasPrefix(a, dir+"/") {
				return true
			}
		}
	}
	return false
}

// commandLines reads the command line of every process; one that exits
// meanwhile is skipped.
func commandLines() ([][]byte, error) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("read /proc: %w", err)
	}
	var out [][]byte
	for _, p := range procs {
		if p.Name()[0] < '0' || p.Name()[0] > '9' {
			continue
		}
		if b, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline")); err == nil {
			out = append(out, b)
		}
	}
	return out, nil
}
