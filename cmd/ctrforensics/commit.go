package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/ctrforensics/ctrforensics/forensic/attest"
	"github.com/ctrforensics/ctrforensics/forensic/ocilayout"
	"github.com/ctrforensics/ctrforensics/internal/output"
	"github.com/ctrforensics/ctrforensics/snapshot"
)

func commitCommand() *cli.Command {
	return &cli.Command{
		Name:          "commit",
		Usage:         "preserve a container as an image: its image plus one layer of its changes, as an OCI layout",
		ShellComplete: completeContainer,
		ArgsUsage:     "CONTAINER",
		Description: "Writes an OCI image layout (a directory, or FILE.tar) holding the container's image, blobs\n" +
			"copied byte for byte, and one new layer with the container's changes (as `diff` finds them; the\n" +
			"runtime's paths left out). Nothing is paused and nothing is written into containerd unless asked\n" +
			"(--pause, --import). Load it with `ctr images import FILE.tar` or `skopeo copy oci-archive:FILE.tar ...`.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "layout to write (required): a new directory or FILE.tar"},
			&cli.StringFlag{Name: "name", Usage: "image name recorded in the layout (default localhost/ctrforensics/commit:CONTAINER)"},
			&cli.StringFlag{Name: "import", Usage: "also create the image `NAME` in containerd (recorded; never replaces an image)"},
			&cli.StringFlag{Name: "created", Usage: "the image's creation `TIME` (RFC 3339; default: the newest modification time of the changes)"},
			&cli.StringFlag{Name: "case", Usage: "case identifier (history comment, annotation, attestation)"},
			&cli.StringFlag{Name: "examiner", Value: defaultExaminer(), Usage: "who commits (history author, attestation)"},
			&cli.StringFlag{Name: "sign-key", Usage: "ed25519 private `KEY` file: sign an attestation of the new manifest (OUTPUT.dsse.json)"},
			&cli.BoolFlag{Name: "pause", Usage: "pause a running task while its changes are read (recorded; resumed afterwards)"},
			&cli.StringFlag{Name: "format", Value: "table", Usage: "summary format: table, or json (one object with every side effect)"},
			stateDirFlag(),
		}, diffFlags()...),
		Action: runCommit,
	}
}

func runCommit(ctx context.Context, c *cli.Command) error {
	a, err := args(c, "CONTAINER")
	if err != nil {
		return err
	}
	if err := required(c, "output"); err != nil {
		return err
	}
	opts, err := commitOptions(c, a[0])
	if err != nil {
		return err
	}
	format, err := output.ParseFormat(c.String("format"), output.Table, output.JSON)
	if err != nil {
		return err
	}
	return withContainer(ctx, c, a[0], func(ctx context.Context, cl *snapshot.Client, ctr *snapshot.Container) error {
		if !c.IsSet("name") && !c.IsSet("import") {
			opts.Name = defaultCommitName(ctr.Info.ID)
		}
		res, err := cl.Commit(ctx, ctr, opts)
		switch {
		case res != nil && format == output.JSON:
			if err := output.JSONLines(c.Root().Writer, []commitJSON{newCommitJSON(ctr, res)}); err != nil {
				return err
			}
		case res != nil:
			printCommitted(c.Root().Writer, c.Root().ErrWriter, ctr, res)
		}
		if err != nil {
			return fmt.Errorf("commit %s: %w", ctr.Info.ID, err)
		}
		return nil
	})
}

func commitOptions(c *cli.Command, ctrArg string) (snapshot.CommitOptions, error) {
	var opts snapshot.CommitOptions
	if err := checkOneLine(c, "case", "examiner"); err != nil {
		return opts, err
	}
	d, err := diffOptions(c)
	if err != nil {
		return opts, err
	}
	opts = snapshot.CommitOptions{Output: c.String("output"), Name: c.String("name"), Case: c.String("case"),
		Examiner: c.String("examiner"), Pause: c.Bool("pause"), Diff: d}
	if imp := c.String("import"); c.IsSet("import") {
		if opts.Name != "" && opts.Name != imp {
			return opts, fmt.Errorf("--name %s and --import %s differ: give the name once (--import NAME names the layout too)", opts.Name, imp)
		}
		opts.Name, opts.Import = imp, true
	}
	if opts.Name == "" {
		opts.Name = defaultCommitName(ctrArg)
	}
	if t := c.String("created"); t != "" {
		if opts.Created, err = time.Parse(time.RFC3339Nano, t); err != nil {
			return opts, fmt.Errorf("bad --created %q: give an RFC 3339 time such as 2026-11-29T06:00:00Z", t)
		}
	}
	if p := c.String("sign-key"); p != "" {
		if opts.SignKey, err = attest.LoadPrivateKey(p); err != nil {
			return opts, err
		}
	}
	return opts, nil
}

// tagPattern is what a reference accepts as a tag.
var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// defaultCommitName names a committed image after its container.
func defaultCommitName(id string) string {
	tag := id
	if !tagPattern.MatchString(tag) {
		tag = "latest"
	}
	return "localhost/ctrforensics/commit:" + tag
}

// printCommitted prints the summary on w and each note on errw.
func printCommitted(w, errw io.Writer, ctr *snapshot.Container, res *snapshot.CommitResult) {
	if res.Path != "" {
		fmt.Fprintf(w, "committed container %s into %s\n", ctr.Info.ID, res.Path)
		fmt.Fprintf(w, "  manifest:  %s\n", res.Manifest.Digest)
		fmt.Fprintf(w, "  layer:     %s (%d changes, %s; %d runtime paths left out)\n", res.Layer.Digest, res.Changes, res.Method, res.RuntimeLeftOut)
		fmt.Fprintf(w, "  based on:  %s (%s)\n", res.SourceImage, res.SourceManifest)
		fmt.Fprintf(w, "  created:   %s\n", res.Created.Format(time.RFC3339Nano))
		if len(res.Rebuilt) > 0 {
			fmt.Fprintf(w, "  rebuilt:   layers %s (blobs discarded after unpacking; new digests)\n", strings.Trim(fmt.Sprint(res.Rebuilt), "[]"))
		}
		fmt.Fprintf(w, "  paused:    %v\n", res.Paused)
		signed := "no (use --sign-key)"
		if res.Attestation != "" {
			signed = res.Attestation
		}
		fmt.Fprintf(w, "  signed:    %s\n", signed)
		imported := "no (load it with: ctr images import, or use --import NAME)"
		if res.Imported != "" {
			imported = res.Imported
		}
		fmt.Fprintf(w, "  imported:  %s\n", imported)
		fmt.Fprintf(w, "  notes:     %d (on stderr)\n", len(res.Notes))
	}
	for _, n := range res.Notes {
		fmt.Fprintf(errw, "note: %s\n", n)
	}
	for _, e := range res.Effects {
		switch e.Action {
		case "task paused", "task resumed", "image created":
			fmt.Fprintf(errw, "side effect: %s: %s\n", e.Action, e.Detail)
		}
	}
}

// commitJSON is the object of `commit --format json`.
type commitJSON struct {
	Container      string                `json:"container"`
	Namespace      string                `json:"namespace"`
	Path           string                `json:"path"`
	Manifest       string                `json:"manifest_digest"`
	Config         string                `json:"config_digest"`
	Layer          string                `json:"layer_digest"`
	DiffID         string                `json:"layer_diff_id"`
	SourceImage    string                `json:"source_image"`
	SourceManifest string                `json:"source_manifest_digest"`
	Created        string                `json:"created"`
	Changes        int                   `json:"changes"`
	RuntimeLeftOut int                   `json:"runtime_left_out"`
	Method         string                `json:"method"`
	Rebuilt        []int                 `json:"rebuilt_layers"`
	Paused         bool                  `json:"paused"`
	Attestation    string                `json:"attestation,omitempty"`
	Imported       string                `json:"imported,omitempty"`
	Notes          []string              `json:"notes"`
	SideEffects    []snapshot.SideEffect `json:"side_effects"`
}

func newCommitJSON(ctr *snapshot.Container, res *snapshot.CommitResult) commitJSON {
	return commitJSON{Container: ctr.Info.ID, Namespace: ctr.Namespace, Path: res.Path, Manifest: res.Manifest.Digest.String(),
		Config: res.Config.Digest.String(), Layer: res.Layer.Digest.String(), DiffID: res.DiffID.String(),
		SourceImage: res.SourceImage, SourceManifest: res.SourceManifest.String(), Created: res.Created.Format(time.RFC3339Nano),
		Changes: res.Changes, RuntimeLeftOut: res.RuntimeLeftOut, Method: string(res.Method), Rebuilt: res.Rebuilt,
		Paused: res.Paused, Attestation: res.Attestation, Imported: res.Imported, Notes: res.Notes, SideEffects: res.Effects}
}

// commitHint is hint's advice for the errors of commit.
func commitHint(err error) string {
	var (
		imageExists  *snapshot.ImageExistsError
		layoutExists *ocilayout.OutputExistsError
	)
	switch {
	case errors.As(err, &layoutExists):
		return "pick a new name for -o: ctrforensics never replaces a file"
	case errors.As(err, &imageExists):
		return "pick another --import NAME, or remove it first (ctr images rm)"
	}
	return ""
}
