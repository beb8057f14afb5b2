package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/ctrforensics/ctrforensics/snapshot"
)

func mountCommand() *cli.Command {
	return &cli.Command{
		Name:          "mount",
		Usage:         "mount a container's or an image's filesystem read-only at DIR, to browse it",
		ShellComplete: completeContainer,
		ArgsUsage:     "CONTAINER|IMAGE DIR",
		Description: "A container shows its own layer over its image's layers; --upper-only shows its own layer\n" +
			"alone. An image must be unpacked for the snapshotter. The mount stays until `ctrforensics umount DIR`,\n" +
			"which also releases the containerd lease (and view) it holds. FIFOs in the view are live: reading one\n" +
			"(cat *, grep -r) blocks until something writes to it; --no-special hides FIFOs, sockets and devices\n" +
			"behind empty read-only files (mounted over the view only; umount removes them).",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "upper-only", Usage: "show only the container's own (upper) layer"},
			&cli.BoolFlag{Name: "no-special", Usage: "hide FIFOs, sockets and devices behind empty read-only files"},
			&cli.StringFlag{Name: "snapshotter", Value: "overlayfs", Usage: "snapshotter holding an image's layers"},
			stateDirFlag(),
		},
		Action: runMount,
	}
}

func runMount(ctx context.Context, c *cli.Command) error {
	a, err := args(c, "CONTAINER|IMAGE", "DIR")
	if err != nil {
		return err
	}
	return withClient(ctx, c, func(ctx context.Context, cl *snapshot.Client) error {
		t, err := mountTarget(ctx, c, cl, a[0])
		if err != nil {
			return err
		}
		rec, err := cl.Mount(ctx, t, a[1], c.String("state-dir"))
		if err != nil {
			return fmt.Errorf("mount %s: %w", a[0], err)
		}
		w := c.Root().Writer
		fmt.Fprintf(w, "mounted %s read-only at %s (lease %s)\n", rec.Source, rec.Mountpoint, rec.Lease)
		if t.NoSpecial {
			fmt.Fprintf(w, "hid %d FIFOs, sockets and devices behind empty read-only files\n", rec.Hidden)
		} else {
			fmt.Fprintln(w, "note: FIFOs in the view are live: reading one (cat *, grep -r) blocks; --no-special hides them")
		}
		fmt.Fprintf(w, "undo with: ctrforensics umount %s\n", rec.Mountpoint)
		return nil
	})
}

// mountTarget is the container named name, else the image: a container ID
// (or unique prefix) wins over an image of the same name.
func mountTarget(ctx context.Context, c *cli.Command, cl *snapshot.Client, name string) (snapshot.MountTarget, error) {
	t := snapshot.MountTarget{UpperOnly: c.Bool("upper-only"), Snapshotter: c.String("snapshotter"),
		NoSpecial: c.Bool("no-special")}
	if t.UpperOnly {
		ctr, err := cl.LoadContainer(ctx, name)
		var nf *snapshot.NotFoundError
		if errors.As(err, &nf) {
			return t, fmt.Errorf("--upper-only needs a container: %w", err)
		}
		t.Container = ctr
		return t, err
	}
	src, err := resolveSource(ctx, cl, name)
	t.Container, t.Image = src.container, src.image
	return t, err
}

func umountCommand() *cli.Command {
	return &cli.Command{
		Name:      "umount",
		Aliases:   []string{"unmount"},
		Usage:     "undo `ctrforensics mount`: unmount DIR and release its lease and view",
		ArgsUsage: "DIR",
		Flags: []cli.Flag{
			stateDirFlag(),
		},
		Action: runUmount,
	}
}

func runUmount(ctx context.Context, c *cli.Command) error {
	a, err := args(c, "DIR")
	if err != nil {
		return err
	}
	// The mount records are root's: without root they cannot even be read.
	if err := needRoot(); err != nil {
		return err
	}
	rec, err := snapshot.ReadMountRecord(c.String("state-dir"), a[0])
	if err != nil {
		return err
	}
	if rec.Root != "" { // a mount of a disk root holds nothing in any daemon
		removed, err := snapshot.UnmountOffline(ctx, rec.Mountpoint, c.String("state-dir"))
		if err != nil {
			return fmt.Errorf("umount %s: %w", rec.Mountpoint, err)
		}
		fmt.Fprintf(c.Root().Writer, "removed: %s\n", strings.Join(removed, ", "))
		return nil
	}
	// The lease lives in the daemon and namespace the mount was made with.
	if err := c.Set("address", rec.Address); err != nil {
		return err
	}
	if err := c.Set("namespace", rec.Namespace); err != nil {
		return err
	}
	return withClient(ctx, c, func(ctx context.Context, cl *snapshot.Client) error {
		removed, err := cl.Unmount(ctx, rec.Mountpoint, c.String("state-dir"))
		if err != nil {
			return fmt.Errorf("umount %s: %w", rec.Mountpoint, err)
		}
		fmt.Fprintf(c.Root().Writer, "removed: %s\n", strings.Join(removed, ", "))
		return nil
	})
}
