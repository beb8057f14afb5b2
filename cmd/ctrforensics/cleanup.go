package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v3"

	"github.com/ctrforensics/ctrforensics/snapshot"
)

func cleanupCommand() *cli.Command {
	return &cli.Command{
		Name:  "cleanup",
		Usage: "remove what killed ctrforensics runs left: temporary mounts, leases, views, partial bundles",
		Description: "Looks in every namespace. Anything a running ctrforensics or a live `ctrforensics mount` still\n" +
			"uses is kept and listed.",
		Flags: []cli.Flag{
			stateDirFlag(),
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			if _, err := args(c); err != nil {
				return err
			}
			return withClient(ctx, c, func(ctx context.Context, cl *snapshot.Client) error {
				rep, err := cl.Cleanup(ctx, c.String("state-dir"))
				for _, r := range rep.Removed {
					fmt.Fprintln(c.Root().Writer, "removed: "+r)
				}
				for _, r := range rep.InUse {
					fmt.Fprintln(c.Root().Writer, "in use:  "+r)
				}
				if err == nil && len(rep.Removed)+len(rep.InUse) == 0 {
					fmt.Fprintln(c.Root().Writer, "nothing to clean up")
				}
				return err
			})
		},
	}
}

// stateDirFlag is the hidden flag of the commands that record state on the
// examiner's host (mounts; runs on a disk root) or read it (umount,
// cleanup); tests give each run its own directory.
func stateDirFlag() cli.Flag {
	return &cli.StringFlag{Name: "state-dir", Value: snapshot.DefaultStateDir,
		Usage: "where mounts and runs on a disk root are recorded", Hidden: true}
}
