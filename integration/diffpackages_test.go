package integration

import (
	"context"
	"strings"
	"testing"

	"github.com/ctrforensics/ctrforensics/internal/testdaemon"
	"github.com/ctrforensics/ctrforensics/snapshot"
)

// TestDiffPackagesMountsOnce diffs containers with their changes' packages
// (what `diff --format json` does) through the library and counts what the
// session did: the snapshot is resolved and leased once, the image is
// mounted (or viewed) once for the diff and the package check together, and
// a container whose image has no package database gets no package check at
// all (no mount of its root file system, nothing annotated); a container
// with a dpkg database gets its change annotated.
func TestDiffPackagesMountsOnce(t *testing.T) {
	ctx := h.ctx(t)
	pkgImg := packagesImage(t)
	pkgImg.Name = "docker.io/ctrforensics/diff-packages:1"
	img, err := testdaemon.ImportImage(ctx, h.client, pkgImg, "overlayfs")
	if err != nil {
		t.Fatal(err)
	}
	ctr, task, err := testdaemon.RunContainer(ctx, h.client, "diffpkg-dpkg", img, "overlayfs", "/bin/sh", "-c", "sleep 100000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := testdaemon.RemoveContainer(context.WithoutCancel(ctx), ctr); err != nil {
			t.Errorf("remove container: %v", err)
		}
	})
	dpkg := &container{id: "diffpkg-dpkg", snapshotter: "overlayfs", ctr: ctr, task: task}
	h.attack(t, dpkg, `echo owned > /etc/issue`)
	for _, tt := range []struct {
		name string
		c    *container
		// rootfsMounts is how often the container's whole file system is
		// mounted (the package check reads the changed files through it).
		rootfsMounts int
		// views is how many view snapshots are made (of the image, for a
		// snapshotter other than overlayfs).
		views int
		// pkg is the annotation wanted on /etc/issue, "" for none.
		pkg string
	}{
		{"busybox overlayfs", h.runContainer(t, "diffpkg-busybox", "overlayfs"), 0, 0, ""},
		{"busybox native", h.runContainer(t, "diffpkg-native", "native"), 0, 1, ""},
		{"dpkg overlayfs", dpkg, 1, 0, "base-files modified"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.pkg == "" {
				h.attack(t, tt.c, `echo owned > /etc/issue`)
			}
			cl, err := snapshot.Connect(ctx, h.daemon.Address, h.daemon.Namespace)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			sc, err := cl.LoadContainer(ctx, tt.c.id)
			if err != nil {
				t.Fatal(err)
			}
			s, err := cl.Begin(ctx, "", snapshot.SessionOptions{Purpose: "test"})
			if err != nil {
				t.Fatal(err)
			}
			d, err := s.Diff(ctx, sc, snapshot.DiffOptions{Packages: true})
			if cerr := s.Close(ctx); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
			count, views := map[string]int{}, 0
			for _, e := range s.Effects() {
				if e.Action == "view created" {
					views++
				}
				what, _, _ := strings.Cut(e.Detail, " ")
				count[e.Action+": "+what]++
			}
			if count["snapshot leased: "+tt.c.snapshotter+"/"+tt.c.id] != 1 || count["mounted read-only: image"] != 1 ||
				views != tt.views ||
				count["mounted read-only: rootfs"] != tt.rootfsMounts {
				t.Errorf("want the snapshot leased once, %d views, the image mounted once, the root file system mounted %d times; effects: %v",
					tt.views, tt.rootfsMounts, s.Effects())
			}
			got := ""
			for _, ch := range d.Changes {
				if ch.Package != nil && ch.Path == "/etc/issue" {
					got = ch.Package.Name + " " + ch.Package.Integrity
				} else if ch.Package != nil {
					t.Errorf("%s annotated with %+v", ch.Path, ch.Package)
				}
			}
			if got != tt.pkg {
				t.Errorf("/etc/issue annotated %q, want %q", got, tt.pkg)
			}
		})
	}
}
