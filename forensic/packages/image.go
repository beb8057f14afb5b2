package packages

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/imagefs"
)

// ScanImage scans an image's final filesystem from its layers, without
// unpacking them: one metadata pass (imagefs.Walk) names the layer that last
// wrote each record, then the final filesystem is streamed (imagefs.Export)
// through ScanTar. Each package's Layer is the layer that wrote its record.
func ScanImage(ctx context.Context, layers []imagefs.Layer, opts Options, fsOpts imagefs.Options) (*Inventory, error) {
	layerOf := map[string]int{}
	err := imagefs.Walk(ctx, layers, fsOpts, func(e *imagefs.Entry) error {
		f := File{Path: e.Path, Mode: fs.FileMode(e.Mode & 0o777), Size: e.Size}
		if e.Type == forensic.TypeFile && classify(f) != kindNone {
			layerOf[e.Path] = e.Layer
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan packages: %w", err)
	}
	opts.LayerOf = func(p string) (int, bool) {
		l, ok := layerOf[p]
		return l, ok
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := imagefs.Export(ctx, layers, pw, imagefs.Options{MaxLayerBytes: fsOpts.MaxLayerBytes})
		pw.CloseWithError(err)
		done <- err
	}()
	inv, err := ScanTar(ctx, pr, opts)
	// ScanTar stops at the tar's end; drain what follows so Export returns.
	_, _ = io.Copy(io.Discard, pr)
	pr.Close()
	if eerr := <-done; eerr != nil && !errors.Is(eerr, io.ErrClosedPipe) {
		return nil, fmt.Errorf("scan packages: %w", eerr)
	}
	if err != nil {
		return nil, err
	}
	return inv, nil
}

// MarkOrigin sets the Origin of each package of a container's inventory: from
// the image when the image's inventory has the same package (type, name,
// version) read from the same record, from the container otherwise.
func MarkOrigin(container, image *Inventory) {
	type key struct {
		t             Type
		name, version string
		source        string
	}
	inImage := map[key]bool{}
	for _, p := range image.Packages {
		inImage[key{p.Type, p.Name, p.Version, p.Source}] = true
	}
	for i := range container.Packages {
		p := &container.Packages[i]
		p.Origin = FromContainer
		if inImage[key{p.Type, p.Name, p.Version, p.Source}] {
			p.Origin = FromImage
		}
	}
}
