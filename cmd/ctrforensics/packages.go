package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/imagefs"
	"github.com/ctrforensics/ctrforensics/forensic/packages"
	"github.com/ctrforensics/ctrforensics/internal/output"
	"github.com/ctrforensics/ctrforensics/internal/version"
	"github.com/ctrforensics/ctrforensics/snapshot"
)

// The SBOM formats of packages, besides table and JSON.
const (
	formatCycloneDX output.Format = "cyclonedx"
	formatSPDX      output.Format = "spdx"
)

func packagesCommand() *cli.Command {
	return &cli.Command{
		Name:          "packages",
		Usage:         "list the OS and language packages of a container or an image (SBOM)",
		ArgsUsage:     "CONTAINER|IMAGE",
		ShellComplete: completeContainer,
		Description: "Reads dpkg, apk and rpm databases, Go binaries, Python, npm, Java and Ruby metadata from\n" +
			"an image's layers (nothing unpacked) or a container's read-only view; nothing is run.\n" +
			"A container ID (or unique prefix) wins over an image of the same name.",
		Flags: append(imageFlags(
			&cli.StringFlag{Name: "format", Value: "table", Usage: "table, json (one object per line), cyclonedx (1.6 JSON) or spdx (2.3 JSON)"},
			&cli.BoolFlag{Name: "files", Usage: "JSON: add the files each package owns"},
			&cli.BoolFlag{Name: "verify", Usage: "check a container's changed files against its image's package records, or every package file of an image against the image's records (--format table, json or sarif)"},
			&cli.BoolFlag{Name: "all", Usage: "with --verify of a container: every file the packages own, not only the changed ones (an image is always checked whole)"},
			&cli.StringFlag{Name: "fail-on", Usage: "with --verify: exit 1 when a file has one of these results (comma-separated: modified, config-modified, missing, not-owned, db-changed; or any)"},
		), diffFlags()...),
		Action: runPackages,
	}
}

func runPackages(ctx context.Context, c *cli.Command) error {
	a, err := args(c, "CONTAINER|IMAGE")
	if err != nil {
		return err
	}
	if c.Bool("verify") {
		return runVerifyPackages(ctx, c, a[0])
	}
	format, err := output.ParseFormat(c.String("format"), output.Table, output.JSON, formatCycloneDX, formatSPDX)
	if err != nil {
		return err
	}
	if c.Bool("all") || c.String("fail-on") != "" {
		return fmt.Errorf("--all and --fail-on go with --verify: add --verify")
	}
	return withClient(ctx, c, func(ctx context.Context, cl *snapshot.Client) error {
		subj := packages.Subject{Name: a[0], Tool: "ctrforensics " + version.String(), Time: time.Now().UTC()}
		inv, err := scanPackages(ctx, c, cl, a[0], &subj)
		if err != nil {
			return err
		}
		for _, n := range inv.Notes {
			fmt.Fprintln(c.Root().ErrWriter, "ctrforensics: note: "+n)
		}
		w := c.Root().Writer
		switch format {
		case formatCycloneDX:
			return packages.WriteCycloneDX(w, subj, inv)
		case formatSPDX:
			return packages.WriteSPDX(w, subj, inv)
		case output.JSON:
			if !c.Bool("files") {
				for i := range inv.Packages {
					inv.Packages[i].Files = nil
				}
			}
			return output.JSONLines(w, inv.Packages)
		}
		return writePackagesTable(w, subj.Kind, inv)
	})
}

// scanPackages scans the container named name, else the image.
func scanPackages(ctx context.Context, c *cli.Command, cl *snapshot.Client, name string, subj *packages.Subject) (inv *packages.Inventory, err error) {
	err = withPackageSource(ctx, c, cl, name,
		func(ctx context.Context, s *snapshot.Session, ctr *snapshot.Container) (err error) {
			subj.Kind, subj.Name = "container", ctr.Info.ID
			inv, err = s.Packages(ctx, ctr, packages.Options{})
			return err
		},
		func(ctx context.Context, img *snapshot.ResolvedImage) (err error) {
			subj.Kind, subj.Name, subj.Digest = "image", img.Name, img.ManifestDesc.Digest.String()
			inv, err = packages.ScanImage(ctx, img.Layers, packages.Options{}, imagefs.Options{Warn: warner(c)})
			return err
		})
	return inv, err
}

// withPackageSource runs onContainer on the container named name, else
// onImage on the image resolved, both under one session.
func withPackageSource(ctx context.Context, c *cli.Command, cl *snapshot.Client, name string,
	onContainer func(context.Context, *snapshot.Session, *snapshot.Container) error,
	onImage func(context.Context, *snapshot.ResolvedImage) error) error {
	src, err := resolveSource(ctx, cl, name)
	if err != nil {
		return err
	}
	s, err := cl.Begin(ctx, "", snapshot.SessionOptions{Purpose: "packages"})
	if err != nil {
		return err
	}
	if src.container != nil {
		return errors.Join(onContainer(ctx, s, src.container), s.Close(ctx))
	}
	img, err := s.ResolveImage(ctx, src.image, c.String("platform"), c.String("snapshotter"))
	if err == nil {
		for _, n := range img.Notes {
			fmt.Fprintln(c.Root().ErrWriter, "ctrforensics: note: "+n)
		}
		err = onImage(ctx, img)
	}
	return errors.Join(err, s.Close(ctx))
}

func writePackagesTable(w io.Writer, kind string, inv *packages.Inventory) error {
	where := "LAYER"
	if kind == "container" {
		where = "ORIGIN"
	}
	t := output.NewTable(w, "TYPE", "NAME", "VERSION", where, "LICENSE", "SOURCE")
	for _, p := range inv.Packages {
		at := "-"
		switch {
		case p.Origin != "":
			at = string(p.Origin)
		case p.Layer != nil:
			at = strconv.Itoa(*p.Layer)
		}
		lic := "-"
		if len(p.Licenses) > 0 {
			lic = strings.Join(p.Licenses, ", ")
		}
		t.Row(string(p.Type), forensic.EscapePath(p.Name), forensic.EscapePath(p.Version), at, forensic.EscapePath(lic), forensic.EscapePath(p.Source))
	}
	return t.Flush()
}

func runVerifyPackages(ctx context.Context, c *cli.Command, name string) error {
	format, err := output.ParseFormat(c.String("format"), output.Table, output.JSON, output.Format("sarif"))
	if err != nil {
		return err
	}
	failOn, err := parseFailOn(c.String("fail-on"))
	if err != nil {
		return err
	}
	opts, err := diffOptions(c)
	if err != nil {
		return err
	}
	return withClient(ctx, c, func(ctx context.Context, cl *snapshot.Client) error {
		res, err := verifyPackages(ctx, c, cl, name, opts)
		if err != nil {
			return err
		}
		if err := writeVerify(c.Root().Writer, format, res); err != nil {
			return err
		}
		n := 0
		for _, r := range res {
			if failOn[r.Status] {
				n++
			}
		}
		if n > 0 {
			return &findingsError{msg: fmt.Sprintf("%d file(s) failed package verification", n)}
		}
		return nil
	})
}

// verifyPackages checks the container named name against its image's
// records, else every package file of the image against its own records.
func verifyPackages(ctx context.Context, c *cli.Command, cl *snapshot.Client, name string, opts snapshot.DiffOptions) (res []packages.Result, err error) {
	err = withPackageSource(ctx, c, cl, name,
		func(ctx context.Context, s *snapshot.Session, ctr *snapshot.Container) (err error) {
			res, err = s.VerifyPackages(ctx, ctr, c.Bool("all"), opts)
			return err
		},
		func(ctx context.Context, img *snapshot.ResolvedImage) (err error) {
			res, err = packages.VerifyImage(ctx, img.Layers, packages.Options{}, imagefs.Options{Warn: warner(c)})
			return err
		})
	return res, err
}

func writeVerify(w io.Writer, format output.Format, res []packages.Result) error {
	switch format {
	case output.JSON:
		return output.JSONLines(w, res)
	case "sarif":
		return packages.WriteSARIF(w, version.String(), res)
	}
	t := output.NewTable(w, "STATUS", "CHANGED", "PACKAGE", "PATH", "EXPECTED", "ACTUAL")
	for _, r := range res {
		changed, pkg := strings.Join(r.Changed, ","), r.Package
		if changed == "" {
			changed = "-"
		}
		if pkg == "" {
			pkg = "-"
		}
		exp, act := "-", "-"
		if r.Expected != "" {
			exp = r.Algorithm + ":" + r.Expected
		}
		if r.Actual != "" {
			act = r.Algorithm + ":" + r.Actual
		}
		t.Row(string(r.Status), changed, forensic.EscapePath(pkg), forensic.EscapePath(r.Path), exp, act)
	}
	return t.Flush()
}

// parseFailOn reads --fail-on: result names, or "any" for every result but ok.
func parseFailOn(s string) (map[packages.Status]bool, error) {
	all := []packages.Status{packages.Modified, packages.ConfigModified, packages.Missing, packages.NotOwned, packages.DatabaseChanged}
	m := map[packages.Status]bool{}
	if s == "" {
		return m, nil
	}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		switch {
		case f == "any":
			for _, st := range all {
				m[st] = true
			}
		case slices.Contains(all, packages.Status(f)):
			m[packages.Status(f)] = true
		default:
			return nil, fmt.Errorf("unknown --fail-on %q: give any, or some of modified, config-modified, missing, not-owned, db-changed", f)
		}
	}
	return m, nil
}
