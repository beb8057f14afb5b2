// Package benchtree builds the trees the diff benchmarks run on: an image layer
// of many files and a container's overlay upper directory holding a fixed number
// of changes made through a real read-write overlay mount.
package benchtree

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Fixture is an image layer and a container's upper directory over it.
type Fixture struct {
	Dir          string
	Lower, Upper string
	Files        int
	Changes      int
}

const filesPerDir = 100

// Build creates, under dir, a lower tree of files regular files (1 to 8 KiB of
// random bytes, 100 per directory) and an upper directory holding changes
// changes made through an overlay mount: 40% edited, 30% added, 20% deleted,
// 10% chmod-ed. Needs root.
func Build(dir string, files, changes int) (*Fixture, error) {
	f := &Fixture{Dir: dir, Lower: filepath.Join(dir, "lower"), Upper: filepath.Join(dir, "upper"), Files: files, Changes: changes}
	rng := rand.New(rand.NewSource(int64(files)))
	buf := make([]byte, 8<<10)
	for i := 0; i < files; i++ {
		p := f.lowerPath(i)
		if i%filesPerDir == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return nil, err
			}
		}
		n := 1<<10 + rng.Intn(7<<10)
		rng.Read(buf[:n])
		if err := os.WriteFile(p, buf[:n], 0o644); err != nil {
			return nil, err
		}
	}
	if err := f.change(rng); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *Fixture) lowerPath(i int) string {
	return filepath.Join(f.Lower, relPath(i))
}

func relPath(i int) string {
	d := i / filesPerDir
	return filepath.Join(fmt.Sprintf("d%03d", d/100), fmt.Sprintf("d%03d", d%100), fmt.Sprintf("f%05d", i))
}

// change mounts the overlay read-write and makes the changes through it.
func (f *Fixture) change(rng *rand.Rand) error {
	work := filepath.Join(f.Dir, "work")
	merged := filepath.Join(f.Dir, "merged")
	for _, d := range []string{f.Upper, work, merged} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,index=off", f.Lower, f.Upper, work)
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay: %w", err)
	}
	defer unix.Unmount(merged, 0)
	step := f.Files / f.Changes
	for c := 0; c < f.Changes; c++ {
		i := c*step + rng.Intn(step)
		p := filepath.Join(merged, relPath(i))
		var err error
		switch pct := c * 100 / f.Changes; {
		case pct < 40:
			err = os.WriteFile(p, []byte(fmt.Sprintf("edited %d\n", c)), 0o644)
		case pct < 70:
			err = os.WriteFile(p+".new", []byte(fmt.Sprintf("added %d\n", c)), 0o644)
		case pct < 90:
			err = os.Remove(p)
		default:
			err = os.Chmod(p, 0o600)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
