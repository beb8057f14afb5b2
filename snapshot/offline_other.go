//go:build !linux

package snapshot

import (
	"os"
	"sort"
)

// openNoatime opens the file at path for reading (access times are kept only
// on Linux).
func openNoatime(path string) (*os.File, error) { return os.Open(path) }

// onReadOnlyMount says no off Linux: the databases are then always copied.
func onReadOnlyMount(string) bool { return false }

// readDirNoatime lists the names in the directory at path.
func readDirNoatime(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	sort.Strings(names)
	return names, err
}

// sameFilesystem says yes off Linux, where it is not told: no layer index is
// then kept by default.
func sameFilesystem(string, string) (bool, error) { return true, nil }

// heldByDaemon cannot tell off Linux and says no.
func heldByDaemon(string) bool { return false }
