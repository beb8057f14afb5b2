package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
		Flags: imageFlags(indexFlags(formatFlag(),
			&cli.BoolFlag{Name: "show-hidden", Usage: "list the hidden files (deleted or overwritten above, still shipped) with their sha256"},
		)...),
		Action: runImageLayers,
	}
}

func runImageLayers(ctx context.Context, c *cli.Command) error {
	format, err := output.ParseFormat(c.String("format"), output.Table, output.JSON)
	if err != nil {
		return err
	}
	indexGC()
	return withImage(ctx, c, []string{"IMAGE"}, func(ctx context.Context, cl *snapshot.Client, img *snapshot.ResolvedImage, _ []string) error {
		opts, err := layerOptions(c, cl, img)
		if err != nil {
			return err
		}
		bw := bufio.NewWriterSize(c.Root().Writer, 256<<10) // one write per block, not per line
		err = writeLayers(ctx, img, format, c.Bool("show-hidden"), opts, bw)
		if ferr := bw.Flush(); err == nil {
			err = ferr
		}
		return err
	})
}

// writeLayers writes each layer's changes to w as soon as it is read, then
// the hidden files.
func writeLayers(ctx context.Context, img *snapshot.ResolvedImage, format output.Format, showHidden bool, opts imagefs.Options, w io.Writer) error {
	createdBy := layerCreatedBy(img)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	// Each layer is printed as soon as it is read; the files a layer ships
	// that later layers hide are only known at the end, and follow.
	hidden, err := imagefs.WalkLayers(ctx, img.Layers, opts, func(r *imagefs.LayerReport) error {
		if format == output.JSON {
			return writeLayerRow(w, r, createdBy[r.Index])
		}
		fmt.Fprintf(w, "LAYER %d  %s  +%d ~%d -%d  %s  %s\n", r.Index, orDash(img.DiffID(r.Index).String()), r.Added, r.Changed, r.Deleted,
			units.HumanSize(float64(r.Bytes)), history.CommandText(createdBy[r.Index]))
		for ch := range r.AllChanges() {
			if _, err := fmt.Fprintf(w, "  %s %s%s\n", ch.Kind, forensic.EscapePath(ch.Path), changeNote(ch)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for k, hs := range hidden {
		switch {
		case len(hs) == 0:
		case format == output.JSON:
			err = enc.Encode(hiddenRow{Index: k, Hidden: entryRows(hs)})
		case !showHidden:
			_, err = fmt.Fprintf(w, "LAYER %d hidden: %d file(s) of this layer are hidden by later layers (--show-hidden lists them)\n", k, len(hs))
		default:
			for _, hf := range hs {
				_, err = fmt.Fprintf(w, "LAYER %d hidden %s  %d bytes  %s\n", k, forensic.EscapePath(hf.Path), hf.Size, hf.Digest)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
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

// writeLayerRow writes the layerRow of r as one JSON line, its changes
// encoded one at a time as they are converted: the line of a layer of a
// million entries is never held in memory.
func writeLayerRow(w io.Writer, r *imagefs.LayerReport, createdBy string) error {
	row := layerRow{Added: r.Added, Bytes: r.Bytes, Changed: r.Changed, Changes: []layerChangeRow{}, CreatedBy: createdBy,
		Deleted: r.Deleted, DiffID: r.DiffID, Index: r.Index}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(row); err != nil {
		return err
	}
	// The keys before "changes" hold numbers only: the first match is the key.
	head, tail, ok := bytes.Cut(buf.Bytes(), []byte(`"changes":[]`))
	if !ok {
		return fmt.Errorf("encode layer %d: no changes key", r.Index)
	}
	tail = bytes.Clone(tail)
	if _, err := fmt.Fprintf(w, "%s\"changes\":[", head); err != nil {
		return err
	}
	sep := ""
	for ch := range r.AllChanges() {
		buf.Reset()
		if err := enc.Encode(layerChangeRowOf(ch)); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "%s%s", sep, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))); err != nil {
			return err
		}
		sep = ","
	}
	_, err := fmt.Fprintf(w, "]%s", tail)
	return err
}

func layerChangeRowOf(ch *imagefs.Change) layerChangeRow {
	return layerChangeRow{Kind: ch.Kind, Path: forensic.EscapePath(ch.Path), Size: displaySize(ch.Entry), Type: ch.Type,
		LinkTarget: forensic.EscapePath(ch.LinkTarget), HardLink: ch.HardLink, Digest: ch.Digest.String(),
		BaseDigest: ch.BaseDigest.String(), Fields: ch.Fields, MtimeOnly: ch.MtimeOnly()}
}

// changeNote says what a changed entry changed: the fields, "mtime only" for
// a re-ship of the same bytes, and a symlink's target.
func changeNote(ch *imagefs.Change) string {
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
