package main

import (
	"context"
	"fmt"
	"os"

	"github.com/urfave/cli/v3"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/imagefs"
	"github.com/ctrforensics/ctrforensics/snapshot"
)

func imageCatCommand() *cli.Command {
	return &cli.Command{
		Name:      "cat",
		Usage:     "print a file's bytes from the final filesystem, or from one layer (hidden files included)",
		ArgsUsage: "IMAGE PATH",
		Flags: imageFlags(indexFlags(
			&cli.IntFlag{Name: "layer", Value: -1, Usage: "read the entry this layer ships, at its literal path (0 is the bottom one)"},
			&cli.BoolFlag{Name: "no-follow", Usage: "print a symbolic link's target instead of following it"},
		)...),
		Description: "Symbolic links are resolved inside the image (with its root as /, never on the host), and\n" +
			"every link followed is named on stderr. Only the layers needed are read, from the top down.",
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.Int("layer") < -1 {
				return fmt.Errorf("--layer %d: layers are numbered from 0 (the bottom one)", c.Int("layer"))
			}
			return withImage(ctx, c, []string{"IMAGE", "PATH"}, func(ctx context.Context, cl *snapshot.Client, img *snapshot.ResolvedImage, a []string) error {
				if l := c.Int("layer"); l >= len(img.Layers) {
					return fmt.Errorf("--layer %d: the image has %d layers (0 to %d)", l, len(img.Layers), len(img.Layers)-1)
				}
				opts, err := layerOptions(c, cl, img)
				if err != nil {
					return err
				}
				return imagefs.Cat(ctx, img.Layers, a[1], c.Root().Writer, imagefs.CatOptions{
					Options: opts, Layer: c.Int("layer"), NoFollow: c.Bool("no-follow"),
					Followed: func(link, target string) {
						fmt.Fprintf(c.Root().ErrWriter, "ctrforensics: followed symbolic link %s -> %s (inside the image)\n",
							forensic.EscapePath(link), forensic.EscapePath(target))
					},
				})
			})
		},
	}
}

func imageExportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write the image's final filesystem as one tar (owners, modes, times, xattrs; no whiteouts), or one layer as stored",
		ArgsUsage: "IMAGE",
		Flags: imageFlags(
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "the tar to write, which must not exist (required)"},
			&cli.IntFlag{Name: "layer", Value: -1, Usage: "write only this layer (0 is the bottom one), uncompressed, byte for byte as stored: whiteouts included"},
		),
		Action: func(ctx context.Context, c *cli.Command) error {
			if err := required(c, "output"); err != nil {
				return err
			}
			if c.Int("layer") < -1 {
				return fmt.Errorf("--layer %d: layers are numbered from 0 (the bottom one)", c.Int("layer"))
			}
			return withImage(ctx, c, []string{"IMAGE"}, func(ctx context.Context, cl *snapshot.Client, img *snapshot.ResolvedImage, _ []string) error {
				l := c.Int("layer")
				if l >= len(img.Layers) {
					return fmt.Errorf("--layer %d: the image has %d layers (0 to %d)", l, len(img.Layers), len(img.Layers)-1)
				}
				return cl.WriteNewFile(ctx, c.String("output"), func(f *os.File) error {
					if l >= 0 {
						return imagefs.ExportLayer(ctx, img.Layers, l, f, imagefs.Options{Warn: warner(c)})
					}
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
				return cl.WriteNewFile(ctx, c.String("output"), func(f *os.File) error {
					return cl.SaveImage(ctx, a[0], c.String("platform"), f)
				})
			})
		},
	}
}
