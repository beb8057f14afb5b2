package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/docker/go-units"
	"github.com/urfave/cli/v3"
	"golang.org/x/term"

	"github.com/ctrforensics/ctrforensics/forensic/attest"
	"github.com/ctrforensics/ctrforensics/forensic/bagit"
	"github.com/ctrforensics/ctrforensics/forensic/bundle"
	"github.com/ctrforensics/ctrforensics/forensic/objstore"
	"github.com/ctrforensics/ctrforensics/snapshot"
)

func collectCommand() *cli.Command {
	return &cli.Command{
		Name:          "collect",
		Usage:         "seal a container's evidence into a BagIt bundle (directory, .tar or .tar.gz)",
		ShellComplete: completeContainer,
		ArgsUsage:     "CONTAINER",
		Description: "The bundle holds the container record and OCI spec, the image as an OCI layout, every change\n" +
			"(changes.jsonl) and the changed content (an OCI layer tar), the processes of a running task, a\n" +
			"Sleuth Kit timeline, and the acquisition record; it is sealed with sha256 and sha512 manifests,\n" +
			"optionally signed, and starts its chain of custody. Check it with `ctrforensics verify`.\n\n" +
			"It also holds what the container could write outside its snapshot (data/mounts/): every mount\n" +
			"of the spec (mounts.json), the entries of its tmpfs mounts, runtime bind-mounted files and\n" +
			"volumes (changes.jsonl, with their source), and the content of the tmpfs mounts and of the\n" +
			"bind-mounted files as plain tars; volumes' content only with --volumes.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "bundle path (required): a new directory, FILE.tar or FILE.tar.gz, or an object s3://BUCKET/KEY.tar.gz"},
			&cli.StringFlag{Name: "case", Usage: "case identifier (bag-info External-Identifier)"},
			&cli.StringFlag{Name: "examiner", Value: defaultExaminer(), Usage: "who collects (the first custody event's actor)"},
			&cli.StringFlag{Name: "note", Usage: "free text recorded with the acquisition"},
			&cli.StringFlag{Name: "sign-key", Usage: "ed25519 private `KEY` file to sign the bundle with (make one with: ctrforensics key generate)"},
			&cli.BoolFlag{Name: "include-image-layers", Usage: "also copy the image's layer blobs into the OCI layout"},
			&cli.BoolFlag{Name: "commit", Usage: "also add the container committed as an image (see commit) to the OCI layout, ref name \"committed\" (implies --include-image-layers)"},
			&cli.BoolFlag{Name: "pause", Usage: "pause a running task during the capture (recorded; resumed afterwards)"},
			&cli.BoolFlag{Name: "volumes", Usage: "also archive the content of the container's volumes (always listed with digests)"},
			&cli.StringFlag{Name: "hash", Value: "sha256,sha512", Usage: "manifest algorithms: sha256 (required), sha512, sha1, md5"},
			stateDirFlag(),
		}, append(append(groupFlags(), diffFlags()...), objectFlags()...)...),
		Action: runCollect,
	}
}

// defaultExaminer is the user behind sudo, or the current user.
func defaultExaminer() string {
	for _, v := range []string{"SUDO_USER", "USER"} {
		if u := os.Getenv(v); u != "" {
			return u
		}
	}
	return "root"
}

func runCollect(ctx context.Context, c *cli.Command) error {
	a, err := args(c, "CONTAINER")
	if err != nil {
		return err
	}
	if err := required(c, "output"); err != nil {
		return err
	}
	opts, err := collectOptions(c)
	if err != nil {
		return err
	}
	sink, err := collectSink(ctx, c, &opts)
	if err != nil {
		return err
	}
	return withContainer(ctx, c, a[0], func(ctx context.Context, cl *snapshot.Client, ctr *snapshot.Container) error {
		if term.IsTerminal(int(os.Stderr.Fd())) {
			opts.Progress = progressPrinter(c.Root().ErrWriter)
		}
		res, err := cl.Collect(ctx, ctr, opts)
		if opts.Progress != nil {
			fmt.Fprintln(c.Root().ErrWriter)
		}
		if err != nil {
			return fmt.Errorf("collect %s: %w", ctr.Info.ID, err)
		}
		if c.String("format") == "json" {
			return printCollectedJSON(c.Root().Writer, c.Root().ErrWriter, res, sink)
		}
		printCollected(c.Root().Writer, c.Root().ErrWriter, res)
		if sink != nil {
			printStored(c.Root().Writer, sink, res, s3Args(c))
		} else {
			fmt.Fprintf(c.Root().Writer, "verify with: ctrforensics verify %s\n", res.Path)
		}
		return nil
	})
}

// collectSink returns the sink of -o s3://BUCKET/KEY (nil for a local
// output) and sets it on opts; the store is checked before any evidence is
// touched.
func collectSink(ctx context.Context, c *cli.Command, opts *snapshot.CollectOptions) (*objstore.Sink, error) {
	if !objstore.IsURL(opts.Output) {
		for _, f := range []string{"retain-until", "object-lock"} {
			if c.IsSet(f) {
				return nil, fmt.Errorf("--%s is for a bundle stored in a bucket: give -o s3://BUCKET/KEY.tar.gz", f)
			}
		}
		return nil, nil
	}
	if opts.Commit {
		return nil, errors.New("--commit cannot go with -o s3://: the committed layer is built on local disk, and a bundle sent to a bucket writes nothing locally; commit separately (ctrforensics commit) or collect to a local file")
	}
	sink, err := objectSink(ctx, c, opts.Output)
	if err != nil {
		return nil, err
	}
	sink.Actor, sink.Key = opts.Examiner, opts.SignKey
	opts.Sink, opts.SinkRecord = sink, sink.Record()
	uploadGC()
	return sink, nil
}

// printStored prints where the bundle was stored and its stored event.
func printStored(w io.Writer, sink *objstore.Sink, res *snapshot.CollectResult, s3args string) {
	st := sink.Stored
	fmt.Fprintf(w, "  stored:       %s, %d bytes, version %s, ETag %s\n", st.URL, st.Size, orNone(st.VersionID), st.ETag)
	fmt.Fprintf(w, "  object:       %s (store checksum %s)\n", st.SHA256, orNone(st.ChecksumSHA256))
	if r := sink.Retention; r != nil {
		fmt.Fprintf(w, "  retention:    %s until %s\n", strings.ToLower(r.Mode), r.Until.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "  custody:      %s%s (the stored event; head %s)\n", st.Key, objstore.CustodySuffix, res.Head)
	fmt.Fprintf(w, "verify with: ctrforensics verify%s %s\n", s3args, res.Path)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func collectOptions(c *cli.Command) (snapshot.CollectOptions, error) {
	if err := checkOneLine(c, "case", "examiner", "note"); err != nil {
		return snapshot.CollectOptions{}, err
	}
	diff, err := diffOptions(c)
	if err != nil {
		return snapshot.CollectOptions{}, err
	}
	algs, err := bagit.ParseAlgorithms(c.String("hash"))
	if err != nil {
		return snapshot.CollectOptions{}, fmt.Errorf("--hash: %w", err)
	}
	if !containsAlg(algs, bagit.SHA256) {
		return snapshot.CollectOptions{}, fmt.Errorf("--hash must include sha256 (the custody chain and signature name the bag by it)")
	}
	opts := snapshot.CollectOptions{Output: c.String("output"), Case: c.String("case"), Examiner: c.String("examiner"),
		Note: c.String("note"), IncludeLayers: c.Bool("include-image-layers"), Commit: c.Bool("commit"), Pause: c.Bool("pause"),
		Volumes:    c.Bool("volumes"),
		Algorithms: algs, Diff: diff}
	if err := groupOptions(c, &opts); err != nil {
		return opts, err
	}
	if p := c.String("sign-key"); p != "" {
		if opts.SignKey, err = attest.LoadPrivateKey(p); err != nil {
			return opts, err
		}
	}
	return opts, nil
}

// checkOneLine rejects a metadata flag holding a line break or bytes that are
// not UTF-8: the bundle records them as one-line UTF-8 fields (bag-info.txt),
// and finding out after the whole acquisition would waste it.
func checkOneLine(c *cli.Command, names ...string) error {
	for _, n := range names {
		v := c.String(n)
		if strings.ContainsAny(v, "\r\n") {
			return fmt.Errorf("--%s holds a line break: give it on one line", n)
		}
		if !utf8.ValidString(v) {
			return fmt.Errorf("--%s is not UTF-8 text", n)
		}
	}
	return nil
}

func containsAlg(algs []bagit.Algorithm, a bagit.Algorithm) bool {
	for _, x := range algs {
		if x == a {
			return true
		}
	}
	return false
}

// progressPrinter rewrites one status line on a terminal.
func progressPrinter(w io.Writer) func(files, bytes int64) {
	start := time.Now()
	return func(files, bytes int64) {
		rate := float64(bytes) / time.Since(start).Seconds()
		fmt.Fprintf(w, "\rcollecting: %d files, %s hashed (%s/s)   ", files, units.BytesSize(float64(bytes)), units.BytesSize(rate))
	}
}

// printCollected prints the summary on w and each note on errw.
func printCollected(w, errw io.Writer, res *snapshot.CollectResult) {
	acq := res.Acquisition
	signed := "no (use --sign-key)"
	if res.Signed {
		signed = "yes"
	}
	fmt.Fprintf(w, "collected container %s into %s\n", acq.Container.ID, res.Path)
	fmt.Fprintf(w, "  changes:      %d (%s)\n", acq.Changes, acq.DiffMethod)
	fmt.Fprintf(w, "  mounts:       %d, %d entries outside the snapshot (%s)\n", acq.Mounts, acq.MountChanges, bundle.MountsJSON)
	fmt.Fprintf(w, "  manifests:    %s\n", strings.Join(acq.Algorithms, ", "))
	fmt.Fprintf(w, "  signed:       %s\n", signed)
	fmt.Fprintf(w, "  custody head: %s (record it: it protects the newest custody event)\n", res.Head)
	fmt.Fprintf(w, "  notes:        %d (on stderr; also in %s)\n", len(res.Notes), bundle.AcquisitionFile)
	for _, n := range res.Notes {
		fmt.Fprintf(errw, "note: %s\n", n)
	}
	if res.VolumesLeftOut > 0 {
		fmt.Fprintf(errw, "note: add --volumes to archive the content of the %d volumes left out\n", res.VolumesLeftOut)
	}
}
