//go:build !windows

package atomicfile

import (
	"fmt"
	"os"
)

// SyncDir syncs a directory so that the names created, renamed or removed in
// it survive a crash.
func SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
