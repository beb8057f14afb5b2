package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/urfave/cli/v3"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/finding"
	"github.com/ctrforensics/ctrforensics/forensic/scan"
	"github.com/ctrforensics/ctrforensics/internal/output"
	"github.com/ctrforensics/ctrforensics/internal/version"
	"github.com/ctrforensics/ctrforensics/snapshot"
)

func scanCommand() *cli.Command {
	return &cli.Command{
		Name:          "scan",
		Usage:         "look for web shells, hidden executables, setuid files, persistence, rogue accounts, reverse shells, miners",
		ShellComplete: completeContainer,
		ArgsUsage:     "CONTAINER|IMAGE",
		Description: "For a container, scans the files it added or changed (--all: its whole root filesystem, read-only);\n" +
			"for an image, every file of every layer, including those later layers delete. The rules are listed\n" +
			"in the README (CTRF-FS-001...). Files are read by descriptor, never following a symbolic link.",
		Flags: imageFlags(append([]cli.Flag{
			&cli.BoolFlag{Name: "all", Usage: "scan the container's whole root filesystem, not only its changes"},
			&cli.StringFlag{Name: "format", Value: "table", Usage: "table, json (one object per finding) or sarif (SARIF 2.1.0)"},
			&cli.StringFlag{Name: "fail-on", Usage: "exit 1 when a finding at or above this severity exists: low, medium or high"},
			&cli.StringFlag{Name: "max-file-size", Value: "32MiB", Usage: "read at most this much of a file; larger files are reported as skipped"},
			&cli.DurationFlag{Name: "file-timeout", Value: scan.DefaultFileTimeout, Usage: "time limit for reading one file"},
			&cli.StringSliceFlag{Name: "rules", Usage: "YARA rules: a file or a directory of .yar/.yara files (YARA build only)"},
		}, diffFlags()...)...),
		Action: runScan,
	}
}

// scanArgs are scan's flags, checked.
type scanArgs struct {
	format output.Format
	failOn finding.Severity
	opts   snapshot.ScanOptions
	yara   []finding.Rule
}

func parseScanArgs(c *cli.Command) (*scanArgs, error) {
	a := &scanArgs{opts: snapshot.ScanOptions{All: c.Bool("all"), Platform: c.String("platform"), Snapshotter: c.String("snapshotter")}}
	var err error
	if a.opts.Diff, err = diffOptions(c); err != nil {
		return nil, err
	}
	if a.format, err = output.ParseFormat(c.String("format"), output.Table, output.JSON, "sarif"); err != nil {
		return nil, err
	}
	if s := c.String("fail-on"); s != "" {
		if a.failOn, err = finding.ParseSeverity(s); err != nil {
			return nil, fmt.Errorf("--fail-on: %w", err)
		}
	}
	size, err := units.RAMInBytes(c.String("max-file-size"))
	if err != nil || size <= 0 {
		return nil, fmt.Errorf("--max-file-size %q: give a positive size such as 32MiB", c.String("max-file-size"))
	}
	if c.Duration("file-timeout") <= 0 {
		return nil, errors.New("--file-timeout must be positive, e.g. 10s")
	}
	a.opts.MaxFileBytes, a.opts.FileTimeout = size, c.Duration("file-timeout")
	if rules := c.StringSlice("rules"); len(rules) > 0 {
		m, catalog, err := yaraMatcher(rules, a.opts.FileTimeout, c.Root().ErrWriter)
		if err != nil {
			return nil, err
		}
		a.opts.Matchers, a.yara = append(a.opts.Matchers, m), catalog
	}
	return a, nil
}

func runScan(ctx context.Context, c *cli.Command) error {
	a, err := parseScanArgs(c)
	if err != nil {
		return err
	}
	names, err := args(c, "CONTAINER|IMAGE")
	if err != nil {
		return err
	}
	return withClient(ctx, c, func(ctx context.Context, cl *snapshot.Client) error {
		res, err := scanTarget(ctx, cl, names[0], a.opts)
		if err != nil {
			return err
		}
		for _, n := range res.Notes {
			fmt.Fprintln(c.Root().ErrWriter, "ctrforensics: note: "+n)
		}
		if err := writeScan(c.Root().Writer, a, res); err != nil {
			return err
		}
		if a.failOn != 0 && res.AtLeast(a.failOn) {
			return &findingsError{msg: fmt.Sprintf("findings at or above %s", a.failOn)}
		}
		return nil
	})
}

// scanTarget scans the container named name, else the image: a container ID
// (or unique prefix) wins over an image of the same name.
func scanTarget(ctx context.Context, cl *snapshot.Client, name string, opts snapshot.ScanOptions) (*snapshot.ScanResult, error) {
	src, err := resolveSource(ctx, cl, name)
	switch {
	case err != nil:
		return nil, err
	case src.container != nil:
		return cl.ScanContainer(ctx, src.container, opts)
	case opts.All:
		return nil, errors.New("--all applies to containers: an image is always scanned whole, every layer")
	}
	return cl.ScanImage(ctx, src.image, opts)
}

func writeScan(w io.Writer, a *scanArgs, res *snapshot.ScanResult) error {
	switch a.format {
	case "sarif":
		return scan.WriteSARIF(w, version.Version, res.Target, res.Report, a.yara)
	case output.JSON:
		return output.JSONLines(w, scanRows(res))
	}
	return writeScanTable(w, res)
}

// scanRow is one finding of `scan --format json`.
type scanRow struct {
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
	Title    string `json:"title"`
	Path     string `json:"path"`
	Reason   string `json:"reason"`
	Evidence string `json:"evidence"`
	// Layer and Hidden are set for an image: the layer the file comes from,
	// and whether a later layer deletes or replaces it.
	Layer  *int  `json:"layer,omitempty"`
	Hidden *bool `json:"hidden,omitempty"`
}

func scanRows(res *snapshot.ScanResult) []scanRow {
	rows := make([]scanRow, 0, len(res.Findings))
	for _, f := range res.Findings {
		r := scanRow{Rule: f.Rule, Severity: f.Severity.String(), Title: f.Title, Path: f.Path, Reason: f.Reason, Evidence: f.Evidence}
		if f.Layer >= 0 {
			layer, hidden := f.Layer, f.Hidden
			r.Layer, r.Hidden = &layer, &hidden
		}
		rows = append(rows, r)
	}
	return rows
}

// writeScanTable prints a row per finding, the skipped files, then a summary.
func writeScanTable(w io.Writer, res *snapshot.ScanResult) error {
	layered := false
	for _, f := range res.Findings {
		layered = layered || f.Layer >= 0
	}
	headers := []string{"SEVERITY", "RULE", "PATH", "REASON"}
	if layered {
		headers = []string{"SEVERITY", "RULE", "LAYER", "PATH", "REASON"}
	}
	t := output.NewTable(w, headers...)
	for _, f := range res.Findings {
		row := []string{strings.ToUpper(f.Severity.String()), f.Rule, forensic.EscapePath(f.Path), forensic.EscapeControl(f.Reason)}
		if layered {
			layer := strconv.Itoa(f.Layer)
			if f.Hidden {
				layer += " (deleted later)"
			}
			row = append(row[:2], append([]string{layer}, row[2:]...)...)
		}
		t.Row(row...)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(w, "skipped %s: %s\n", forensic.EscapePath(s.Path), s.Reason)
	}
	what := fmt.Sprintf("%d file(s)", res.Files)
	if strings.HasPrefix(res.Target, "container/") {
		what += fmt.Sprintf(" (%d change(s))", res.Changes)
	}
	_, err := fmt.Fprintf(w, "\n%s scanned, %s read, %d finding(s), %d skipped\n", what,
		units.BytesSize(float64(res.Read)), len(res.Findings), len(res.Skipped))
	return err
}
