package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/urfave/cli/v3"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/history"
	"github.com/ctrforensics/ctrforensics/internal/output"
	"github.com/ctrforensics/ctrforensics/internal/version"
	"github.com/ctrforensics/ctrforensics/snapshot"
)

func imageHistoryCommand() *cli.Command {
	return &cli.Command{
		Name:      "history",
		Usage:     "the image's build history, then findings: downloads run in RUN, LD_PRELOAD, odd entrypoints...",
		ArgsUsage: "IMAGE",
		Flags: imageFlags(
			&cli.StringFlag{Name: "format", Value: "table", Usage: "table, json or sarif (SARIF 2.1.0 for code-scanning UIs)"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "do not truncate created_by"},
			&cli.StringFlag{Name: "fail-on", Usage: "exit 1 when a finding at or above this severity exists: low, medium or high"},
		),
		Action: runImageHistory,
	}
}

func runImageHistory(ctx context.Context, c *cli.Command) error {
	format, err := output.ParseFormat(c.String("format"), output.Table, output.JSON, "sarif")
	if err != nil {
		return err
	}
	var failOn history.Severity
	if s := c.String("fail-on"); s != "" {
		if failOn, err = history.ParseSeverity(s); err != nil {
			return fmt.Errorf("--fail-on: %w", err)
		}
	}
	return withImage(ctx, c, []string{"IMAGE"}, func(ctx context.Context, _ *snapshot.Client, img *snapshot.ResolvedImage, _ []string) error {
		layers := historyLayers(img)
		findings := history.Analyze(img.Config, layers)
		steps := history.Steps(img.Config, layers)
		switch format {
		case "sarif":
			err = history.WriteSARIF(c.Root().Writer, img.Name, version.Version, findings)
		case output.JSON:
			err = output.JSONLines(c.Root().Writer, []historyDoc{historyJSON(img, steps, findings)})
		default:
			err = writeHistoryTable(c.Root().Writer, steps, findings, c.Bool("no-trunc"))
		}
		if err != nil {
			return err
		}
		if failOn != 0 && history.AtLeast(findings, failOn) {
			return &findingsError{msg: fmt.Sprintf("%s has findings at or above %s", img.Name, failOn)}
		}
		return nil
	})
}

// historyLayers lists the image's layers as the history analysis takes them.
func historyLayers(img *snapshot.ResolvedImage) []history.Layer {
	layers := make([]history.Layer, len(img.Manifest.Layers))
	for i, l := range img.Manifest.Layers {
		layers[i] = history.Layer{DiffID: img.DiffID(i), Size: l.Size}
	}
	return layers
}

// createdByWidth is how many bytes of created_by the table shows without
// --no-trunc.
const createdByWidth = 60

func historyJSON(img *snapshot.ResolvedImage, steps []history.Step, findings []history.Finding) historyDoc {
	doc := historyDoc{Config: img.ConfigDesc.Digest, Findings: make([]findingRow, len(findings)), History: make([]historyRow, len(steps)),
		Image: img.Name, Manifest: img.ManifestDesc.Digest, Platform: img.Platform}
	for i, f := range findings {
		doc.Findings[i] = findingRow{Evidence: f.Evidence, History: f.History, Reason: f.Reason, Rule: f.Rule,
			Severity: f.Severity.String(), Title: f.Title}
	}
	for i, s := range steps {
		h := s.History
		r := historyRow{Author: h.Author, Comment: h.Comment, CreatedBy: h.CreatedBy, EmptyLayer: h.EmptyLayer, Index: s.Index}
		if h.Created != nil {
			r.Created = forensic.FormatTime(*h.Created)
		}
		if s.Layer >= 0 {
			layer, diffID, size := s.Layer, s.DiffID, s.Size
			r.Layer, r.DiffID, r.Size = &layer, &diffID, &size
		}
		doc.History[i] = r
	}
	return doc
}

func writeHistoryTable(w io.Writer, steps []history.Step, findings []history.Finding, noTrunc bool) error {
	t := output.NewTable(w, "#", "CREATED", "CREATED BY", "LAYER", "SIZE", "COMMENT")
	for _, s := range steps {
		by := history.CommandText(s.History.CreatedBy)
		if !noTrunc {
			by = forensic.Clip(by, createdByWidth)
		}
		created := ""
		if s.History.Created != nil {
			created = forensic.FormatTime(*s.History.Created)
		}
		layer, size := "-", "0B"
		if s.Empty {
			layer = "(empty)"
		} else if s.Layer >= 0 {
			layer, size = short(s.DiffID.String()), units.HumanSize(float64(s.Size))
		}
		t.Row(strconv.Itoa(s.Index), orDash(created), by, layer, size, orDash(history.CommandText(s.History.Comment)))
	}
	if err := t.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(findings) == 0 {
		_, err := fmt.Fprintln(w, "findings: none")
		return err
	}
	fmt.Fprintf(w, "findings: %d\n", len(findings))
	ft := output.NewTable(w, "SEVERITY", "RULE", "WHERE", "REASON")
	for _, f := range findings {
		where := "config"
		if f.History >= 0 {
			where = "history[" + strconv.Itoa(f.History) + "]"
		}
		ft.Row(strings.ToUpper(f.Severity.String()), f.Rule, where, f.Reason)
	}
	return ft.Flush()
}
