package snapshot

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/packages"
)

// Packages scans the container's filesystem as it is (its read-only view) and
// its image's (the layers below it, read-only) for installed packages, and
// marks each package of the container as coming from the image or from the
// container. Nothing of the container is run or written.
func (s *Session) Packages(ctx context.Context, ctr *Container, opts packages.Options) (*packages.Inventory, error) {
	r, err := s.Rootfs(ctx, ctr)
	if err != nil {
		return nil, err
	}
	return s.packagesOf(ctx, r, ctr, opts)
}

func (s *Session) packagesOf(ctx context.Context, r *Rootfs, ctr *Container, opts packages.Options) (*packages.Inventory, error) {
	mounts, err := r.ReadOnlyMounts()
	if err != nil {
		return nil, err
	}
	var inv, img *packages.Inventory
	err = s.WithMount(ctx, "rootfs of "+r.Key, mounts, func(root string) error {
		inv, err = packages.ScanDir(ctx, root, opts)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("packages of %s: %w", ctr.Info.ID, err)
	}
	err = s.WithImageRoot(ctx, r, func(root string) error {
		img, err = packages.ScanDir(ctx, root, opts)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("packages of the image of %s: %w", ctr.Info.ID, err)
	}
	packages.MarkOrigin(inv, img)
	return inv, nil
}

// VerifyPackages checks the container's files against the package records of
// its image. With all false only the paths its diff changed are checked (the
// cost follows the number of changes); with all true every recorded file.
func (s *Session) VerifyPackages(ctx context.Context, ctr *Container, all bool, opts DiffOptions) ([]packages.Result, error) {
	var targets []packages.Target
	if !all {
		d, err := s.Diff(ctx, ctr, opts)
		if err != nil {
			return nil, err
		}
		targets = changeTargets(d.Changes)
	}
	r, err := s.Rootfs(ctx, ctr)
	if err != nil {
		return nil, err
	}
	return s.verifyPackages(ctx, r, ctr, targets)
}

// changeTargets are the paths of a diff to check: every change but
// directories.
func changeTargets(changes []forensic.Change) []packages.Target {
	targets := []packages.Target{}
	for _, ch := range changes {
		if ch.Meta != nil && ch.Meta.Type == forensic.TypeDir {
			continue
		}
		targets = append(targets, packages.Target{Path: ch.Path, Added: ch.Kind == forensic.Added})
	}
	return targets
}

func (s *Session) verifyPackages(ctx context.Context, r *Rootfs, ctr *Container, targets []packages.Target) ([]packages.Result, error) {
	mounts, err := r.ReadOnlyMounts()
	if err != nil {
		return nil, err
	}
	var res []packages.Result
	err = s.WithImageRoot(ctx, r, func(image string) error {
		return s.WithMount(ctx, "rootfs of "+r.Key, mounts, func(root string) error {
			res, err = packages.VerifyDir(ctx, image, root, targets, packages.Options{})
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("verify packages of %s: %w", ctr.Info.ID, err)
	}
	return res, nil
}

// AnnotatePackages sets the Package of each change of the container's
// snapshot (r, which the session resolved) that a package owns, or that is
// a new file in a package directory or a changed package record, from a
// check against the image's package records. Changes found in mounts
// (Source set) are left alone. When no record can own a change (no package
// database in the image, no change to one, none below a Python library
// directory) it mounts and reads nothing more; it looks in the image root
// the session holds when there is one (HoldImage), so a diff followed by its
// annotation mounts the image once.
func (s *Session) AnnotatePackages(ctx context.Context, r *Rootfs, ctr *Container, changes []forensic.Change) error {
	var own []forensic.Change
	for _, ch := range changes {
		if ch.Source == forensic.SourceSnapshot {
			own = append(own, ch)
		}
	}
	targets := changeTargets(own)
	if len(targets) == 0 {
		return nil
	}
	if !recordsMayOwn(targets) {
		var found bool
		err := s.WithImageRoot(ctx, r, func(root string) error {
			found = hasPackageDatabase(root)
			return nil
		})
		if err != nil || !found {
			return err
		}
	}
	res, err := s.verifyPackages(ctx, r, ctr, targets)
	if err != nil {
		return err
	}
	byPath := make(map[string]packages.Result, len(res))
	for _, x := range res {
		byPath[x.Path] = x
	}
	for i := range changes {
		if x, ok := byPath[changes[i].Path]; ok && changes[i].Source == forensic.SourceSnapshot {
			changes[i].Package = &forensic.PackageInfo{Name: x.Package, Version: x.Version, Manager: string(x.Type),
				Integrity: string(x.Status), Algorithm: x.Algorithm, Expected: x.Expected, Actual: x.Actual}
		}
	}
	return nil
}

// packageDatabases are the directories of the OS package databases whose
// records VerifyDir reads (dpkg, also its distroless status.d; apk; rpm in
// both places).
var packageDatabases = []string{"/var/lib/dpkg", "/lib/apk/db", "/var/lib/rpm", "/usr/lib/sysimage/rpm"}

// recordsMayOwn says a check of targets needs no package database of the
// image to find something: a target is a package record itself (reported
// as changed), or lies below a Python library directory, whose records
// are found next to it.
func recordsMayOwn(targets []packages.Target) bool {
	for _, t := range targets {
		if packages.DatabasePath(t.Path) {
			return true
		}
		for _, c := range strings.Split(path.Dir(t.Path), "/") {
			if c == "site-packages" || c == "dist-packages" {
				return true
			}
		}
	}
	return false
}

// hasPackageDatabase says root, a read-only tree, holds one of the
// packageDatabases. Each component is checked to be a directory (not a
// symlink) before the next is looked up below it, so no symlink of the
// tree is followed.
func hasPackageDatabase(root string) bool {
	for _, db := range packageDatabases {
		if isDirBelow(root, db) {
			return true
		}
	}
	return false
}

func isDirBelow(root, p string) bool {
	cur := root
	for _, c := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		cur = filepath.Join(cur, c)
		fi, err := os.Lstat(cur)
		if err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}
