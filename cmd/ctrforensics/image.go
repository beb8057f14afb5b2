package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/urfave/cli/v3"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/history"
	"github.com/ctrforensics/ctrforensics/forensic/imagefs"
	"github.com/ctrforensics/ctrforensics/internal/output"
	"github.com/ctrforensics/ctrforensics/internal/version"
	"github.com/ctrforensics/ctrforensics/snapshot"
)

func imageCommand() *cli.Command {
	return &cli.Command{
		Name:  "image",
		Usage: "examine images without running them: history findings, files, layers, cat, export, save",
		Description: "Everything reads containerd's content store (or, for layer blobs discarded after unpacking,\n" +
			"the image's snapshots, read-only): no container is created or started, and containerd's images,\n" +
			"containers, snapshots and leases are as before once the command ends.",
		Commands: []*cli.Command{
			imageLsCommand(), imageHistoryCommand(), imageFilesCommand(), imageLayersCommand(),
			imageCatCommand(), imageExportCommand(), imageSaveCommand(),
		},
	}
}

// imageFlags are the flags every command on one image takes.
func imageFlags(extra ...cli.Flag) []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "platform", Usage: "platform of a multi-platform image, e.g. linux/arm64 (default: this host's)"},
		&cli.StringFlag{Name: "snapshotter", Value: "overlayfs", Usage: "where to read layers whose blobs were discarded after unpacking"},
	}, extra...)
}

// withImage resolves IMAGE (the first argument) under a session and runs fn.
func withImage(ctx context.Context, c *cli.Command, names []string, fn func(ctx context.Context, cl *snapshot.Client, img *snapshot.ResolvedImage, a []string) error) error {
	a, err := args(c, names...)
	if err != nil {
		return err
	}
	return withClient(ctx, c, func(ctx context.Context, cl *snapshot.Client) error {
		s, err := cl.Begin(ctx, "", snapshot.SessionOptions{Purpose: "image"})
		if err != nil {
			return err
		}
		img, err := s.ResolveImage(ctx, a[0], c.String("platform"), c.String("snapshotter"))
		if err == nil {
			for _, n := range img.Notes {
				fmt.Fprintln(c.Root().ErrWriter, "ctrforensics: note: "+n)
			}
			err = fn(ctx, cl, img, a)
		}
		err = errors.Join(err, s.Close(ctx))
		return err
	})
}

func imageLsCommand() *cli.Command {
	return &cli.Command{
		Name:  "ls",
		Usage: "list the namespace's images",
		Flags: []cli.Flag{formatFlag()},
		Action: func(ctx context.Context, c *cli.Command) error {
			if _, err := args(c); err != nil {
				return err
			}
			format, err := output.ParseFormat(c.String("format"), output.Table, output.JSON)
			if err != nil {
				return err
			}
			return withClient(ctx, c, func(ctx context.Context, cl *snapshot.Client) error {
				imgs, err := cl.Images(ctx)
				if err != nil {
					return err
				}
				if format == output.JSON {
					return output.JSONLines(c.Root().Writer, imageRows(imgs))
				}
				t := output.NewTable(c.Root().Writer, "NAME", "MANIFEST", "CONFIG", "PLATFORMS", "SIZE", "CREATED", "UNPACKED")
				for _, r := range imageRows(imgs) {
					t.Row(r.Name, short(r.Manifest), short(r.Config), strings.Join(r.Platforms, ","), units.HumanSize(float64(r.Size)),
						r.Created[:19]+"Z", orDash(strings.Join(r.Unpacked, ",")))
				}
				return t.Flush()
			})
		},
	}
}

type imageRow struct {
	Name      string   `json:"name"`
	Manifest  string   `json:"manifest_digest"`
	Config    string   `json:"config_digest"`
	Platforms []string `json:"platforms"`
	Size      int64    `json:"size"`
	Created   string   `json:"created"`
	Unpacked  []string `json:"unpacked"`
}

func imageRows(imgs []snapshot.ImageSummary) []imageRow {
	rows := make([]imageRow, len(imgs))
	for i, img := range imgs {
		r := imageRow{Name: img.Name, Manifest: img.Manifest.String(), Config: img.Config.String(), Platforms: img.Platforms,
			Size: img.Size, Created: forensic.FormatTime(img.Created), Unpacked: []string{}}
		for sn, ok := range img.Unpacked {
			if ok {
				r.Unpacked = append(r.Unpacked, sn)
			}
		}
		rows[i] = r
	}
	return rows
}

func short(d string) string {
	if _, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return hex[:12]
	}
	return orDash(d)
}

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
		var layers []history.Layer
		for i, l := range img.Manifest.Layers {
			layers = append(layers, history.Layer{DiffID: img.DiffID(i), Size: l.Size})
		}
		findings := history.Analyze(img.Config, layers)
		switch format {
		case "sarif":
			err = history.WriteSARIF(c.Root().Writer, img.Name, version.Version, findings)
		case output.JSON:
			err = output.JSONLines(c.Root().Writer, []any{historyJSON(img, findings)})
		default:
			writeHistoryTable(c, img, findings)
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

// historyRows pairs each history entry with its layer.
func historyRows(img *snapshot.ResolvedImage) []map[string]any {
	var rows []map[string]any
	layer := 0
	for i, h := range img.Config.History {
		row := map[string]any{"index": i, "created_by": h.CreatedBy, "empty_layer": h.EmptyLayer, "comment": h.Comment, "author": h.Author}
		if h.Created != nil {
			row["created"] = forensic.FormatTime(*h.Created)
		}
		if !h.EmptyLayer && layer < len(img.Manifest.Layers) {
			row["layer"] = layer
			row["diff_id"] = img.DiffID(layer)
			row["size"] = img.Manifest.Layers[layer].Size
			layer++
		}
		rows = append(rows, row)
	}
	return rows
}

func historyJSON(img *snapshot.ResolvedImage, findings []history.Finding) map[string]any {
	fs := make([]map[string]any, len(findings))
	for i, f := range findings {
		fs[i] = map[string]any{"rule": f.Rule, "severity": f.Severity.String(), "title": f.Title, "reason": f.Reason,
			"history": f.History, "evidence": f.Evidence}
	}
	return map[string]any{"image": img.Name, "manifest": img.ManifestDesc.Digest, "config": img.ConfigDesc.Digest,
		"platform": img.Platform, "history": historyRows(img), "findings": fs}
}

func writeHistoryTable(c *cli.Command, img *snapshot.ResolvedImage, findings []history.Finding) {
	t := output.NewTable(c.Root().Writer, "#", "CREATED", "CREATED BY", "LAYER", "SIZE", "COMMENT")
	for _, r := range historyRows(img) {
		by := forensic.EscapePath(r["created_by"].(string))
		if !c.Bool("no-trunc") && len(by) > 60 {
			by = by[:57] + "..."
		}
		created, _ := r["created"].(string)
		layer, size := "-", "0B"
		if r["empty_layer"].(bool) {
			layer = "(empty)"
		} else if d, ok := r["diff_id"]; ok {
			layer, size = short(fmt.Sprint(d)), units.HumanSize(float64(r["size"].(int64)))
		}
		t.Row(strconv.Itoa(r["index"].(int)), orDash(created), by, layer, size, orDash(forensic.EscapePath(r["comment"].(string))))
	}
	t.Flush()
	fmt.Fprintln(c.Root().Writer)
	if len(findings) == 0 {
		fmt.Fprintln(c.Root().Writer, "findings: none")
		return
	}
	fmt.Fprintf(c.Root().Writer, "findings: %d\n", len(findings))
	ft := output.NewTable(c.Root().Writer, "SEVERITY", "RULE", "WHERE", "REASON")
	for _, f := range findings {
		where := "config"
		if f.History >= 0 {
			where = "history[" + strconv.Itoa(f.History) + "]"
		}
		ft.Row(strings.ToUpper(f.Severity.String()), f.Rule, where, f.Reason)
	}
	ft.Flush()
}

func imageFilesCommand() *cli.Command {
	return &cli.Command{
		Name:      "files",
		Usage:     "every path of the image's final filesystem (what docker export of a never-started container holds)",
		ArgsUsage: "IMAGE",
		Flags: imageFlags(formatFlag(),
			&cli.BoolFlag{Name: "digest", Usage: "add the sha256 of every regular file"},
			&cli.StringFlag{Name: "type", Usage: "only this type: file, dir, symlink, fifo, socket, char, block"},
			&cli.StringFlag{Name: "path", Usage: "only paths matching this glob (path.Match syntax on the whole path, e.g. '/usr/bin/*')"},
			&cli.BoolFlag{Name: "setuid", Usage: "only setuid or setgid files"},
			&cli.StringFlag{Name: "newer", Usage: "only paths modified after this time (RFC 3339, or YYYY-MM-DD)"},
		),
		Action: runImageFiles,
	}
}

func runImageFiles(ctx context.Context, c *cli.Command) error {
	format, err := output.ParseFormat(c.String("format"), output.Table, output.JSON)
	if err != nil {
		return err
	}
	keep, err := fileFilter(c)
	if err != nil {
		return err
	}
	return withImage(ctx, c, []string{"IMAGE"}, func(ctx context.Context, _ *snapshot.Client, img *snapshot.ResolvedImage, _ []string) error {
		opts := imagefs.Options{Digest: c.Bool("digest"), Warn: warner(c)}
		if format == output.JSON {
			enc := json.NewEncoder(c.Root().Writer)
			enc.SetEscapeHTML(false)
			return imagefs.Walk(ctx, img.Layers, opts, func(e *imagefs.Entry) error {
				if !keep(*e) {
					return nil
				}
				return enc.Encode(toEntryRow(*e))
			})
		}
		headers := []string{"MODE", "UID", "GID", "SIZE", "MTIME", "LAYER", "PATH"}
		if c.Bool("digest") {
			headers = append(headers, "SHA256")
		}
		// Streamed: the table is aligned per block of rows, so that a listing of
		// millions of paths is never held in memory.
		t, rows := output.NewTable(c.Root().Writer, headers...), 0
		err := imagefs.Walk(ctx, img.Layers, opts, func(e *imagefs.Entry) error {
			if !keep(*e) {
				return nil
			}
			t.Row(fileRow(*e, c.Bool("digest"))...)
			if rows++; rows%4096 == 0 {
				return t.Flush()
			}
			return nil
		})
		if ferr := t.Flush(); err == nil {
			err = ferr
		}
		return err
	})
}

func fileRow(e imagefs.Entry, withDigest bool) []string {
	name := forensic.EscapePath(e.Path)
	if e.Type == forensic.TypeSymlink {
		name += " -> " + forensic.EscapePath(e.LinkTarget)
	} else if e.HardLink {
		name += " link to " + forensic.EscapePath(e.LinkTarget)
	}
	row := []string{forensic.LsMode(e.Type, e.Mode), strconv.FormatUint(uint64(e.UID), 10), strconv.FormatUint(uint64(e.GID), 10),
		strconv.FormatInt(displaySize(e), 10), e.Mtime.UTC().Format(time.RFC3339), strconv.Itoa(e.Layer), name}
	if withDigest {
		row = append(row, orDash(short(e.Digest.String())))
	}
	return row
}

// warner prints the engine's warnings about hostile layer entries on stderr.
func warner(c *cli.Command) func(string) {
	return func(msg string) { fmt.Fprintln(c.Root().ErrWriter, "ctrforensics: warning: "+msg) }
}

func fileFilter(c *cli.Command) (func(imagefs.Entry) bool, error) {
	typ, glob, setuid := c.String("type"), c.String("path"), c.Bool("setuid")
	switch forensic.FileType(typ) {
	case "", forensic.TypeFile, forensic.TypeDir, forensic.TypeSymlink, forensic.TypeFIFO, forensic.TypeSocket, forensic.TypeChar, forensic.TypeBlock:
	default:
		return nil, fmt.Errorf("unknown --type %q (file, dir, symlink, fifo, socket, char or block)", typ)
	}
	if glob != "" {
		if _, err := path.Match(glob, "/"); err != nil {
			return nil, fmt.Errorf("bad --path %q: %w", glob, err)
		}
	}
	var newer time.Time
	if s := c.String("newer"); s != "" {
		var err error
		if newer, err = time.Parse(time.RFC3339, s); err != nil {
			if newer, err = time.Parse("2006-01-02", s); err != nil {
				return nil, fmt.Errorf("bad --newer %q: give RFC 3339 (2024-01-02T15:04:05Z) or a date (2024-01-02)", s)
			}
		}
	}
	return func(e imagefs.Entry) bool {
		if typ != "" && string(e.Type) != typ {
			return false
		}
		if glob != "" {
			if ok, _ := path.Match(glob, e.Path); !ok {
				return false
			}
		}
		if setuid && e.Mode&0o6000 == 0 {
			return false
		}
		return newer.IsZero() || e.Mtime.After(newer)
	}, nil
}

// displaySize is the size a filesystem reports: a symlink's is its target's length.
func displaySize(e imagefs.Entry) int64 {
	if e.Type == forensic.TypeSymlink {
		return int64(len(e.LinkTarget))
	}
	return e.Size
}

type entryRow struct {
	Path       string            `json:"path"`
	Type       forensic.FileType `json:"type"`
	Mode       string            `json:"mode"`
	UID        uint32            `json:"uid"`
	GID        uint32            `json:"gid"`
	Size       int64             `json:"size"`
	Mtime      string            `json:"mtime"`
	LinkTarget string            `json:"link_target,omitempty"`
	HardLink   bool              `json:"hard_link,omitempty"`
	Layer      int               `json:"layer"`
	Digest     string            `json:"digest,omitempty"`
	Xattrs     map[string]string `json:"xattrs,omitempty"`
}

func entryRows(es []imagefs.Entry) []entryRow {
	rows := make([]entryRow, len(es))
	for i, e := range es {
		rows[i] = toEntryRow(e)
	}
	return rows
}

func toEntryRow(e imagefs.Entry) entryRow {
	return entryRow{Path: forensic.EscapePath(e.Path), Type: e.Type, Mode: fmt.Sprintf("%04o", e.Mode), UID: e.UID, GID: e.GID,
		Size: displaySize(e), Mtime: forensic.FormatTime(e.Mtime), LinkTarget: forensic.EscapePath(e.LinkTarget), HardLink: e.HardLink,
		Layer: e.Layer, Digest: e.Digest.String(), Xattrs: e.Xattrs}
}

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
				units.HumanSize(float64(r.Bytes)), forensic.EscapePath(createdBy[r.Index]))
			for _, ch := range r.Changes {
				fmt.Fprintf(w, "  %s %s\n", ch.Kind, forensic.EscapePath(ch.Path))
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

func layerCreatedBy(img *snapshot.ResolvedImage) map[int]string {
	out := map[int]string{}
	layer := 0
	for _, h := range img.Config.History {
		if !h.EmptyLayer {
			out[layer] = h.CreatedBy
			layer++
		}
	}
	return out
}

func layerRows(reps []imagefs.LayerReport, createdBy map[int]string) []map[string]any {
	rows := make([]map[string]any, len(reps))
	for i, r := range reps {
		changes := make([]map[string]any, len(r.Changes))
		for j, ch := range r.Changes {
			changes[j] = map[string]any{"kind": ch.Kind, "path": forensic.EscapePath(ch.Path), "type": ch.Type, "size": ch.Size}
		}
		rows[i] = map[string]any{"index": r.Index, "diff_id": r.DiffID, "created_by": createdBy[r.Index], "added": r.Added,
			"changed": r.Changed, "deleted": r.Deleted, "bytes": r.Bytes, "changes": changes, "hidden": entryRows(r.Hidden)}
	}
	return rows
}

func imageCatCommand() *cli.Command {
	return &cli.Command{
		Name:      "cat",
		Usage:     "print a file's bytes from the final filesystem, or from one layer (hidden files included)",
		ArgsUsage: "IMAGE PATH",
		Flags:     imageFlags(&cli.IntFlag{Name: "layer", Value: -1, Usage: "read from this layer (0 is the bottom one)"}),
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.Int("layer") < -1 {
				return fmt.Errorf("--layer %d: layers are numbered from 0 (the bottom one)", c.Int("layer"))
			}
			return withImage(ctx, c, []string{"IMAGE", "PATH"}, func(ctx context.Context, _ *snapshot.Client, img *snapshot.ResolvedImage, a []string) error {
				if l := c.Int("layer"); l >= len(img.Layers) {
					return fmt.Errorf("--layer %d: the image has %d layers (0 to %d)", l, len(img.Layers), len(img.Layers)-1)
				}
				return imagefs.Cat(ctx, img.Layers, a[1], c.Int("layer"), c.Root().Writer, imagefs.Options{Warn: warner(c)})
			})
		},
	}
}

func imageExportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write the image's final filesystem as one tar (owners, modes, times, xattrs; no whiteouts)",
		ArgsUsage: "IMAGE",
		Flags:     imageFlags(&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "the tar to write, which must not exist (required)"}),
		Action: func(ctx context.Context, c *cli.Command) error {
			if err := required(c, "output"); err != nil {
				return err
			}
			return withImage(ctx, c, []string{"IMAGE"}, func(ctx context.Context, _ *snapshot.Client, img *snapshot.ResolvedImage, _ []string) error {
				return writeNewFile(c.String("output"), func(f *os.File) error {
					return imagefs.Export(ctx, img.Layers, f, imagefs.Options{Warn: warner(c)})
				})
			})
		},
	}
}

func imageSaveCommand() *cli.Command {
	return &cli.Command{
		Name:      "save",
		Usage:     "write the image as an OCI image layout archive with a docker manifest.json (like docker image save)",
		ArgsUsage: "IMAGE",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "platform", Usage: "platform of a multi-platform image (default: this host's)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "the tar to write, which must not exist (required)"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			a, err := args(c, "IMAGE")
			if err != nil {
				return err
			}
			if err := required(c, "output"); err != nil {
				return err
			}
			return withClient(ctx, c, func(ctx context.Context, cl *snapshot.Client) error {
				return writeNewFile(c.String("output"), func(f *os.File) error {
					return cl.SaveImage(ctx, a[0], c.String("platform"), f)
				})
			})
		},
	}
}

// writeNewFile writes a new file through a temporary name, renamed when fn
// succeeds and removed when it fails.
func writeNewFile(p string, fn func(*os.File) error) error {
	if _, err := os.Lstat(p); err == nil {
		return fmt.Errorf("%s already exists: pick a new name", p)
	}
	tmp := p + ".partial"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	err = fn(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
