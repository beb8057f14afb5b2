package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v3"
	"golang.org/x/term"

	"github.com/ctrforensics/ctrforensics/forensic/history"
	"github.com/ctrforensics/ctrforensics/forensic/imagefs"
	"github.com/ctrforensics/ctrforensics/internal/browse"
	"github.com/ctrforensics/ctrforensics/snapshot"
)

func browseCommand() *cli.Command {
	return &cli.Command{
		Name:      "browse",
		Usage:     "explore an image's layers and files (or a container's changes on top) interactively, read-only",
		ArgsUsage: "IMAGE|CONTAINER",
		Description: "A terminal view in the spirit of dive, on containerd: the layers with their history step, size and\n" +
			"counts; the merged tree coloured by the layer that last touched each entry, with what the selected\n" +
			"layer added, changed, deleted and ships hidden; image findings next to the entries they name; the\n" +
			"exact bytes of a file from the layer that holds them. For a container, its changes against the image\n" +
			"are the top layer, with digests. Nothing is written; it works over SSH in an 80x24 terminal.\n\n" + browse.Keys,
		Flags:  imageFlags(diffFlags()...),
		Action: runBrowse,
	}
}

func runBrowse(ctx context.Context, c *cli.Command) error {
	a, err := args(c, "IMAGE|CONTAINER")
	if err != nil {
		return err
	}
	if f, ok := c.Root().Reader.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
		return errors.New("browse needs a terminal on stdin: for a script, use `ctrforensics image layers` or `image files`")
	}
	opts, err := diffOptions(c)
	if err != nil {
		return err
	}
	return withClient(ctx, c, func(ctx context.Context, cl *snapshot.Client) error {
		s, err := cl.Begin(ctx, "", snapshot.SessionOptions{Purpose: "browse"})
		if err != nil {
			return err
		}
		data, err := browseData(ctx, c, cl, s, a[0], opts)
		if err == nil {
			err = browse.Run(ctx, data, c.Root().Reader, c.Root().Writer)
		}
		return errors.Join(err, s.Close(ctx))
	})
}

// browseData reads what the view shows: the container named ref and its
// image, or else the image named ref.
func browseData(ctx context.Context, c *cli.Command, cl *snapshot.Client, s *snapshot.Session, ref string, opts snapshot.DiffOptions) (*browse.Data, error) {
	t, err := mountTarget(ctx, c, cl, ref)
	if err != nil {
		return nil, err
	}
	imageRef, title := t.Image, t.Image
	if t.Container != nil {
		imageRef, title = t.Container.Info.Image, "container "+t.Container.Info.ID+" (image "+t.Container.Info.Image+")"
	}
	img, err := s.ResolveImage(ctx, imageRef, c.String("platform"), c.String("snapshotter"))
	if err != nil {
		return nil, err
	}
	for _, n := range img.Notes {
		fmt.Fprintln(c.Root().ErrWriter, "ctrforensics: note: "+n)
	}
	opt := imagefs.Options{Warn: func(string) {}}
	reps, err := imagefs.Layers(ctx, img.Layers, opt)
	if err != nil {
		return nil, err
	}
	opt.Digest = true
	files, err := imagefs.Files(ctx, img.Layers, opt)
	if err != nil {
		return nil, err
	}
	d := &browse.Data{Title: title, Files: files, Read: func(ctx context.Context, path string, layer int, max int64) ([]byte, error) {
		if layer == browse.ContainerLayer {
			return nil, errors.New("the container's own bytes are read from its mounted root: ctrforensics mount CONTAINER DIR")
		}
		w := &capped{max: max}
		err := imagefs.Cat(ctx, img.Layers, path, w, imagefs.CatOptions{Layer: layer})
		if errors.Is(err, errCapped) {
			err = nil
		}
		return w.buf, err
	}}
	d.Layers, d.ImageFindings = browseLayers(img, reps)
	if t.Container != nil {
		diff, err := s.Diff(ctx, t.Container, opts)
		if err != nil {
			return nil, fmt.Errorf("diff %s: %w", t.Container.Info.ID, err)
		}
		d.Container = diff.Changes
	}
	return d, nil
}

// browseLayers turns the layer reports into the view's layers, with the
// history step and the findings of the step that made each.
func browseLayers(img *snapshot.ResolvedImage, reps []imagefs.LayerReport) ([]browse.Layer, []string) {
	hl := historyLayers(img)
	steps := history.Steps(img.Config, hl)
	layerOf := map[int]int{}
	createdBy := map[int]string{}
	for _, st := range steps {
		layerOf[st.Index] = st.Layer
		if st.Layer >= 0 {
			createdBy[st.Layer] = st.History.CreatedBy
		}
	}
	out := make([]browse.Layer, len(reps))
	for i, r := range reps {
		out[i] = browse.Layer{Index: r.Index, DiffID: r.DiffID, Bytes: r.Bytes, CreatedBy: history.CommandText(createdBy[r.Index]),
			Changes: r.Changes, Hidden: r.Hidden, Added: r.Added, Changed: r.Changed, Deleted: r.Deleted}
	}
	var imageFindings []string
	for _, f := range history.Analyze(img.Config, hl) {
		text := fmt.Sprintf("%s %s: %s", f.Severity, f.Rule, f.Reason)
		if l, ok := layerOf[f.History]; ok && l >= 0 && l < len(out) {
			out[l].Findings = append(out[l].Findings, text)
			continue
		}
		imageFindings = append(imageFindings, text)
	}
	return out, imageFindings
}

// errCapped stops a read once the viewer has enough.
var errCapped = errors.New("enough read")

// capped keeps the first max bytes written to it.
type capped struct {
	buf []byte
	max int64
}

func (w *capped) Write(p []byte) (int, error) {
	room := w.max - int64(len(w.buf))
	if int64(len(p)) > room {
		w.buf = append(w.buf, p[:room]...)
		return int(room), errCapped
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

var _ io.Writer = (*capped)(nil)
