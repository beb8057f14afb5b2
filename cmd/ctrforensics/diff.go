package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/docker/go-units"
	"github.com/urfave/cli/v3"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/diff"
	"github.com/ctrforensics/ctrforensics/internal/output"
	"github.com/ctrforensics/ctrforensics/snapshot"
)

func diffCommand() *cli.Command {
	return &cli.Command{
		Name:          "diff",
		Usage:         "list what was added (A), changed (C) or deleted (D) in a container versus its image",
		ShellComplete: completeContainer,
		ArgsUsage:     "CONTAINER",
		Description: "Prints docker-diff lines sorted by path; --format json adds every metadata field and the\n" +
			"sha256 of the new content and of the content it replaced. Paths the runtime created (mount\n" +
			"points of the OCI spec) are left out of the table unless --all. Like docker diff, the table\n" +
			"prints one line for a deleted or replaced directory (JSON also lists every entry that went\n" +
			"with it, with \"lost_with\") and leaves out files copied up without any difference (in JSON\n" +
			"with \"copy_up_only\": true). Names are printed with\n" +
			"backslash escapes for control characters, backslashes and bytes that are not UTF-8.\n\n" +
			"Beyond the snapshot, the diff lists what the container could write elsewhere: the entries of\n" +
			"its tmpfs mounts (/dev/shm, /run...; read through the running task's mount namespace), the\n" +
			"files the runtime bind-mounts (/etc/hosts, /etc/resolv.conf, /etc/hostname) and the entries\n" +
			"of its volumes. Their table lines end with a tab and the source in brackets, e.g.\n" +
			"\"A /dev/shm/x\t[tmpfs]\"; in JSON they carry \"source\" and \"mount\". What could not be\n" +
			"examined (a stopped task's tmpfs) is a note on stderr.",
		Flags: append([]cli.Flag{
			formatFlag(),
			&cli.BoolFlag{Name: "all", Usage: "include paths the container runtime created"},
		}, diffFlags()...),
		Action: runDiff,
	}
}

func runDiff(ctx context.Context, c *cli.Command) error {
	a, err := args(c, "CONTAINER")
	if err != nil {
		return err
	}
	format, err := output.ParseFormat(c.String("format"), output.Table, output.JSON)
	if err != nil {
		return err
	}
	opts, err := diffOptions(c)
	if err != nil {
		return err
	}
	return withContainer(ctx, c, a[0], func(ctx context.Context, cl *snapshot.Client, ctr *snapshot.Container) error {
		s, err := cl.Begin(ctx, "", snapshot.SessionOptions{Purpose: "diff"})
		if err != nil {
			return err
		}
		opts.Packages = format == output.JSON
		d, m, err := diffAll(ctx, s, ctr, opts)
		err = errors.Join(err, s.Close(ctx))
		if err != nil {
			return fmt.Errorf("diff %s: %w", ctr.Info.ID, err)
		}
		for _, n := range append(d.Notes, m.Notes...) {
			fmt.Fprintln(c.Root().ErrWriter, "ctrforensics: note: "+n)
		}
		changes := mergeChanges(d.Changes, m.Changes)
		if format == output.JSON {
			return output.JSONLines(c.Root().Writer, changes)
		}
		for _, ch := range changes {
			if ch.InTable() && (!ch.Runtime || c.Bool("all")) {
				fmt.Fprintln(c.Root().Writer, tableLine(&ch))
			}
		}
		return nil
	})
}

// diffAll diffs the container's snapshot and examines its mounts.
func diffAll(ctx context.Context, s *snapshot.Session, ctr *snapshot.Container, opts snapshot.DiffOptions) (*diff.Diff, *snapshot.Mounts, error) {
	d, err := s.Diff(ctx, ctr, opts)
	if err != nil {
		return nil, nil, err
	}
	m, err := s.ExamineMounts(ctx, ctr, snapshot.MountsOptions{Options: opts.Options})
	if err != nil {
		return nil, nil, err
	}
	m.Close() // the listing is all diff needs
	return d, m, nil
}

// mergeChanges merges two lists sorted by path into one; on equal paths the
// snapshot's change comes first.
func mergeChanges(a, b []forensic.Change) []forensic.Change {
	out := make([]forensic.Change, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if b[0].Path < a[0].Path {
			out, b = append(out, b[0]), b[1:]
		} else {
			out, a = append(out, a[0]), a[1:]
		}
	}
	return append(append(out, a...), b...)
}

// tableLine is a change's docker-diff line; a change found outside the
// snapshot ends with a tab (never in an escaped path) and its source in
// brackets.
func tableLine(ch *forensic.Change) string {
	if ch.Source == forensic.SourceSnapshot {
		return ch.Line()
	}
	return ch.Line() + "\t[" + string(ch.Source) + "]"
}

// diffFlags are the flags of every command that computes a container's diff
// (diff, harden, commit, collect, packages --verify, scan, browse); their
// values are read by diffOptions.
func diffFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "method", Value: "auto",
			Usage: "auto, overlay (walk only the upper directory) or walk (compare the whole read-only trees)"},
		&cli.StringFlag{Name: "max-hash-bytes", Value: units.BytesSize(float64(diff.DefaultMaxHashBytes)),
			Usage: "do not hash (or archive) files larger than this; they are reported, never skipped silently"},
	}
}

// diffOptions reads and checks the flags of diffFlags.
func diffOptions(c *cli.Command) (snapshot.DiffOptions, error) {
	var opts snapshot.DiffOptions
	switch m := c.String("method"); m {
	case "auto":
	case "overlay", "walk":
		opts.Method = diff.Method(m)
	default:
		return opts, fmt.Errorf("unknown --method %q (auto, overlay or walk)", m)
	}
	n, err := units.RAMInBytes(c.String("max-hash-bytes"))
	if err != nil || n <= 0 {
		return opts, fmt.Errorf("bad --max-hash-bytes %q: give a size such as 512MiB or 16GiB", c.String("max-hash-bytes"))
	}
	opts.MaxHashBytes = n
	return opts, nil
}
