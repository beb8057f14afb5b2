package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/docker/go-units"
	"github.com/urfave/cli/v3"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/history"
	"github.com/ctrforensics/ctrforensics/forensic/imagefs"
	"github.com/ctrforensics/ctrforensics/internal/output"
	"github.com/ctrforensics/ctrforensics/snapshot"
)

func imageLayersCommand() *cli.Command {
	return &cli.Command{
		Name:      "layers",
		Usage:     "per layer: what it added, changed and deleted, and the files later layers hide",
		ArgsUsage: "IMAGE",
		Flags: imageFlags(formatFlag(),
			&cli.BoolFlag{Name: "show-hidden", Usage: "list the hidden files (deleted or overwritten above, still shipped) with their sha256"},
		),
		Action: runImageLayers,
	}
}

func runImageLayers(ctx context.Context, c *cli.Command) error {
	format, err := output.ParseFormat(c.String("format"), output.Table, output.JSON)
	if err != nil {
		return err
	}
	return withImage(ctx, c, []string{"IMAGE"}, func(ctx context.Context, _ *snapshot.Client, img *snapshot.ResolvedImage, _ []string) error {
		reps, err := imagefs.Layers(ctx, img.Layers, imagefs.Options{Warn: warner(c)})
		if err != nil {
			return err
		}
		createdBy := layerCreatedBy(img)
		if format == output.JSON {
			return output.JSONLines(c.Root().Writer, layerRows(reps, createdBy))
		}
		w := c.Root().Writer
		for _, r := range reps {
			fmt.Fprintf(w, "LAYER %d  %s  +%d ~%d -%d  %s  %s\n", r.Index, orDash(img.DiffID(r.Index).String()), r.Added, r.Changed, r.Deleted,
				units.HumanSize(float64(r.Bytes)), history.CommandText(createdBy[r.Index]))
			for _, ch := range r.Changes {
				fmt.Fprintf(w, "  %s %s%s\n", ch.Kind, forensic.EscapePath(ch.Path), changeNote(ch))
			}
			if len(r.Hidden) > 0 && !c.Bool("show-hidden") {
				fmt.Fprintf(w, "  %d file(s) of this layer are hidden by later layers (--show-hidden lists them)\n", len(r.Hidden))
			}
			if c.Bool("show-hidden") {
				for _, hf := range r.Hidden {
					fmt.Fprintf(w, "  hidden %s  %d bytes  %s\n", forensic.EscapePath(hf.Path), hf.Size, hf.Digest)
				}
			}
		}
		return nil
	})
}

// layerCreatedBy maps each layer to the created_by of the step that made it.
func layerCreatedBy(img *snapshot.ResolvedImage) map[int]string {
	out := map[int]string{}
	for _, s := range history.Steps(img.Config, historyLayers(img)) {
		if s.Layer >= 0 {
			out[s.Layer] = s.History.CreatedBy
		}
	}
	return out
}

func layerRows(reps []imagefs.LayerReport, createdBy map[int]string) []layerRow {
	rows := make([]layerRow, len(reps))
	for i, r := range reps {
		changes := make([]layerChangeRow, len(r.Changes))
		for j, ch := range r.Changes {
			changes[j] = layerChangeRow{Kind: ch.Kind, Path: forensic.EscapePath(ch.Path), Size: displaySize(ch.Entry), Type: ch.Type,
				LinkTarget: forensic.EscapePath(ch.LinkTarget), HardLink: ch.HardLink, Digest: ch.Digest.String(),
				BaseDigest: ch.BaseDigest.String(), Fields: ch.Fields, MtimeOnly: ch.MtimeOnly()}
		}
		rows[i] = layerRow{Added: r.Added, Bytes: r.Bytes, Changed: r.Changed, Changes: changes, CreatedBy: createdBy[r.Index],
			Deleted: r.Deleted, DiffID: r.DiffID, Hidden: entryRows(r.Hidden), Index: r.Index}
	}
	return rows
}

// changeNote says what a changed entry changed: the fields, "mtime only" for
// a re-ship of the same bytes, and a symlink's target.
func changeNote(ch imagefs.Change) string {
	note := ""
	if ch.Type == forensic.TypeSymlink {
		note = " -> " + forensic.EscapePath(ch.LinkTarget)
	}
	switch {
	case ch.MtimeOnly():
		note += "  (mtime only: same content re-shipped)"
	case len(ch.Fields) > 0:
		fs := make([]string, len(ch.Fields))
		for i, f := range ch.Fields {
			fs[i] = string(f)
		}
		note += "  (" + strings.Join(fs, ", ") + ")"
	}
	return note
}
