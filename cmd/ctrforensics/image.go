package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/docker/go-units"
	"github.com/opencontainers/go-digest"
	"github.com/urfave/cli/v3"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/imagefs"
	"github.com/ctrforensics/ctrforensics/internal/output"
	"github.com/ctrforensics/ctrforensics/snapshot"
	"github.com/ctrforensics/ctrforensics/snapshot/contentdir"
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
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "say on stderr where the layer blobs are read from (the content store directory, or containerd's content API and why), and which layer indexes are read or written (files, layers, cat)"},
	}, extra...)
}

// indexFlags are the flags of the image commands that keep layer indexes.
func indexFlags(extra ...cli.Flag) []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "index-dir", Sources: cli.EnvVars("CTRFORENSICS_INDEX_DIR"), Usage: "keep an index of each layer read in full in `DIR`, where a later run reads the index of a blob whose digest it checks again instead of decompressing it: use a directory the examined host cannot write (default: for a --root mounted read-only that no running containerd holds, ~/.cache/" + snapshot.LayerIndexSubdir + " when that is on another filesystem; none for a live daemon, whose host's disk it would write)"},
		&cli.BoolFlag{Name: "no-index", Usage: "neither read nor keep layer indexes, even with --index-dir or CTRFORENSICS_INDEX_DIR set"},
	}, extra...)
}

// layerOptions are the imagefs options of an image command: warnings on
// stderr and the layer index cache of the blobs read from the local content
// store, in --index-dir or, when not given, where cl keeps it by default (for
// a dead host's --root only), each use named with --verbose.
func layerOptions(c *cli.Command, cl *snapshot.Client, img *snapshot.ResolvedImage) (imagefs.Options, error) {
	opts := imagefs.Options{Warn: warner(c)}
	say := func(string, ...any) {}
	if c.Bool("verbose") {
		say = func(format string, a ...any) { fmt.Fprintf(c.Root().ErrWriter, "ctrforensics: "+format+"\n", a...) }
	}
	if c.Bool("no-index") || img.Local == nil {
		return opts, nil
	}
	dir := c.String("index-dir")
	if dir != "" {
		if err := cl.CheckLayerIndexDir(dir); err != nil {
			return opts, err
		}
	} else {
		cache, err := os.UserCacheDir()
		if err != nil {
			say("no layer index read or kept: %v (--index-dir DIR keeps them in DIR)", err)
			return opts, nil
		}
		var why string
		if dir, why = cl.LayerIndexDir(cache); dir == "" {
			say("no layer index read or kept: %s (--index-dir DIR keeps them in DIR)", why)
			return opts, nil
		}
	}
	ix, err := contentdir.NewIndexCache(dir, img.Local)
	if err != nil {
		return opts, err
	}
	ix.Used = func(d digest.Digest, p string) {
		say("layer %s read from its index %s (made by a full read that checked its digests; the blob's digest is checked again before it is used, only the decompression is saved; --no-index decompresses it again)", d, p)
	}
	ix.Wrote = func(d digest.Digest, p string) { say("layer %s: index written to %s", d, p) }
	ix.Failed = func(d digest.Digest, err error) { say("layer %s: no index kept: %v", d, err) }
	opts.Index = ix
	return opts, nil
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
			if c.Bool("verbose") {
				fmt.Fprintln(c.Root().ErrWriter, "ctrforensics: "+img.BlobSource)
			}
			err = fn(ctx, cl, img, a)
		}
		err = errors.Join(err, s.Close(ctx))
		return err
	})
}

// indexGC sets the collector for image files and image layers, unless GOGC
// says otherwise: their index of the image's paths lives to the end and grows
// with each layer, and Go's default (GOGC=100) lets the heap reach twice it
// between collections; 50 keeps the peak near 1.5 times (`image layers` of a
// 1M-file image: 306 -> 265 MiB peak RSS, for a few more collections).
func indexGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
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
		slices.Sort(r.Unpacked) // a map's order changes from run to run
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
