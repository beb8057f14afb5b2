package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/docker/go-units"
	"github.com/urfave/cli/v3"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/harden"
	"github.com/ctrforensics/ctrforensics/internal/output"
	"github.com/ctrforensics/ctrforensics/snapshot"
)

func hardenCommand() *cli.Command {
	return &cli.Command{
		Name:          "harden",
		Usage:         "derive a read-only rootfs profile from what the container wrote: writable mounts, and the drift",
		ShellComplete: completeContainer,
		ArgsUsage:     "CONTAINER",
		Description: "From the container's changes (as `diff` finds them), the smallest set of directories that must stay\n" +
			"writable for it to run with a read-only root filesystem, and separately the drift: changes that must\n" +
			"never be writable (image files changed, new executables, new files in web roots and system\n" +
			"directories). Only what was observed is covered: it says how long the container ran.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "format", Value: "table", Usage: "table, flags (nerdctl/docker run flags), kubernetes (a pod spec patch) or json"},
			&cli.StringFlag{Name: "volume-prefix", Usage: "prefix of the volume names proposed for state directories (default: CONTAINER-)"},
		}, diffFlags()...),
		Action: runHarden,
	}
}

func runHarden(ctx context.Context, c *cli.Command) error {
	a, err := args(c, "CONTAINER")
	if err != nil {
		return err
	}
	format, err := output.ParseFormat(c.String("format"), output.Table, output.JSON, "flags", "kubernetes")
	if err != nil {
		return err
	}
	opts, err := diffOptions(c)
	if err != nil {
		return err
	}
	return withContainer(ctx, c, a[0], func(ctx context.Context, cl *snapshot.Client, ctr *snapshot.Container) error {
		res, err := cl.Harden(ctx, ctr, opts)
		if err != nil {
			return fmt.Errorf("harden %s: %w", ctr.Info.ID, err)
		}
		for _, n := range res.Notes {
			fmt.Fprintln(c.Root().ErrWriter, "note: "+n)
		}
		prefix := c.String("volume-prefix")
		if !c.IsSet("volume-prefix") {
			prefix = strings.ToLower(truncID(ctr.Info.ID)) + "-"
		}
		w := c.Root().Writer
		switch format {
		case output.JSON:
			return output.JSONLines(w, []hardenJSON{newHardenJSON(ctr, res, prefix)})
		case "flags":
			_, err = fmt.Fprintln(w, quoteAll(harden.RunFlags(res.Profile, prefix)))
		case "kubernetes":
			name := ctr.Info.ID
			if n := ctr.Pod.Container; n != "" {
				name = n
			}
			_, err = io.WriteString(w, harden.KubernetesPatch(res.Profile, name))
		default:
			err = writeHardenTable(w, ctr, res, prefix)
		}
		for _, warn := range res.Warnings {
			fmt.Fprintln(c.Root().ErrWriter, "warning: "+warn)
		}
		return err
	})
}

func quoteAll(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = harden.ShellQuote(w)
	}
	return strings.Join(q, " ")
}

// hardenJSON is the object of `harden --format json`.
type hardenJSON struct {
	Container  string            `json:"container"`
	Namespace  string            `json:"namespace"`
	Status     string            `json:"status"`
	Started    string            `json:"started,omitempty"`
	RanSeconds float64           `json:"ran_seconds"`
	Method     string            `json:"method"`
	Writable   []harden.Writable `json:"writable"`
	Drift      []harden.Drift    `json:"drift"`
	Tmpfs      []harden.Tmpfs    `json:"tmpfs"`
	RunFlags   []string          `json:"run_flags"`
	Warnings   []string          `json:"warnings"`
	Notes      []string          `json:"notes"`
	Kubernetes string            `json:"kubernetes_patch"`
}

func newHardenJSON(ctr *snapshot.Container, res *snapshot.HardenResult, prefix string) hardenJSON {
	j := hardenJSON{Container: ctr.Info.ID, Namespace: ctr.Namespace, Status: string(res.Status), RanSeconds: res.RanFor.Seconds(),
		Method: string(res.Method), Writable: res.Profile.Writable, Drift: res.Profile.Drift, Tmpfs: res.Profile.Tmpfs,
		RunFlags: harden.RunFlags(res.Profile, prefix), Warnings: orEmpty(res.Warnings), Notes: orEmpty(res.Notes),
		Kubernetes: harden.KubernetesPatch(res.Profile, ctr.Info.ID)}
	if !res.Started.IsZero() {
		j.Started = forensic.FormatTime(res.Started)
	}
	return j
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func writeHardenTable(w io.Writer, ctr *snapshot.Container, res *snapshot.HardenResult, prefix string) error {
	if res.Started.IsZero() {
		fmt.Fprintf(w, "container %s (task %s): only what it wrote is covered\n\n", ctr.Info.ID, res.Status)
	} else {
		fmt.Fprintf(w, "container %s has run for %s (since %s): only what it wrote in that time is covered\n\n",
			ctr.Info.ID, res.RanFor.Round(1e9), forensic.FormatTime(res.Started))
	}
	t := output.NewTable(w, "WRITABLE", "CLASS", "BYTES", "FILES", "MOUNT")
	for _, x := range res.Profile.Writable {
		mount := "tmpfs, size " + units.BytesSize(float64(x.SizeLimit))
		if x.Class == harden.State {
			mount = "volume"
		}
		t.Row(forensic.EscapePath(x.Path), string(x.Class), units.HumanSize(float64(x.Bytes)), fmt.Sprint(x.Files), mount)
	}
	if len(res.Profile.Writable) == 0 {
		t.Row("(none: the container wrote nothing outside the drift)", "", "", "", "")
	}
	if err := t.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\ndrift: %d (never make these writable: restore the image and investigate)\n", len(res.Profile.Drift))
	dt := output.NewTable(w, "KIND", "PATH", "WHY")
	for _, d := range res.Profile.Drift {
		dt.Row(string(d.Kind), forensic.EscapePath(d.Path), d.Reason)
	}
	if err := dt.Flush(); err != nil {
		return err
	}
	if err := writeTmpfsTable(w, res.Profile.Tmpfs); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nrun it read-only:\n  nerdctl run %s IMAGE\n", quoteAll(harden.RunFlags(res.Profile, prefix)))
	fmt.Fprintln(w, "Kubernetes: ctrforensics harden --format kubernetes "+ctr.Info.ID)
	return nil
}

// writeTmpfsTable prints what the container wrote in each writable tmpfs
// mount of its spec and the advice it gives.
func writeTmpfsTable(w io.Writer, mounts []harden.Tmpfs) error {
	if len(mounts) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\ntmpfs mounts of the spec (what the container wrote there, read through its mount namespace):\n")
	t := output.NewTable(w, "TMPFS", "FILES", "BYTES", "ADVICE")
	for _, m := range mounts {
		t.Row(forensic.EscapePath(m.Path), fmt.Sprint(m.Files), units.HumanSize(float64(m.Bytes)), harden.TmpfsAdvice(m))
	}
	return t.Flush()
}
