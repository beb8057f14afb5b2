package snapshot

import (
	"context"
	"fmt"
	"io"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/bundle"
	"github.com/ctrforensics/ctrforensics/forensic/imagefs"
	"github.com/ctrforensics/ctrforensics/forensic/packages"
	"github.com/ctrforensics/ctrforensics/forensic/scan"
	"github.com/ctrforensics/ctrforensics/internal/version"
)

// ScanOptions tune ScanContainer and ScanImage.
type ScanOptions struct {
	// All scans the container's whole root filesystem, not only its changes.
	All bool
	// Platform and Snapshotter select an image's manifest and, when its blobs
	// are gone, the snapshots its layers are read from.
	Platform, Snapshotter string
	// Diff tunes a container's diff, whose changes are scanned.
	Diff DiffOptions
	scan.Options
}

// ScanResult is a scan and what it covered.
type ScanResult struct {
	*scan.Report
	// Target names what was scanned: "container/ID" or the image's name.
	Target string
	// Changes counts the container's changes; Notes are the diff's or the
	// image's.
	Changes int
	Notes   []string
}

// ScanContainer diffs the container, checks its changed package files
// against its image's package records, and scans its changes (opts.All: its
// whole root filesystem) through a read-only mount held by a session.
func (c *Client) ScanContainer(ctx context.Context, ctr *Container, opts ScanOptions) (*ScanResult, error) {
	s, err := c.Begin(ctx, ctr.Namespace, SessionOptions{Purpose: "scan"})
	if err != nil {
		return nil, err
	}
	res, err := s.scanContainer(ctx, ctr, opts)
	if cerr := s.Close(ctx); err == nil && cerr != nil {
		return nil, cerr
	}
	return res, err
}

func (s *Session) scanContainer(ctx context.Context, ctr *Container, opts ScanOptions) (*ScanResult, error) {
	r, err := s.Rootfs(ctx, ctr)
	if err != nil {
		return nil, err
	}
	d, err := s.DiffRootfs(ctx, r, ctr, opts.Diff)
	if err != nil {
		return nil, err
	}
	target, err := r.ReadOnlyMounts()
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", r.Key, err)
	}
	res := &ScanResult{Target: "container/" + ctr.Info.ID, Changes: len(d.Changes), Notes: d.Notes}
	// The changed package files against the image's records; an unchanged
	// file is the image's, which its records describe. Without them the
	// other rules still run.
	if opts.Packages, err = s.verifyPackages(ctx, r, ctr, changeTargets(d.Changes)); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		res.Notes = append(res.Notes, fmt.Sprintf("package files not checked (%s left out): %v", scan.RulePackageFile, err))
	}
	err = s.WithMount(ctx, "container "+r.Key, target, func(root string) error {
		in := scan.ChangesInput(root, d.Changes)
		if opts.All {
			in = scan.TreeInput(root, d.Changes)
		}
		var err error
		res.Report, err = scan.Scan(ctx, in, opts.Options)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// ScanImage checks the package files of the image ref against its package
// records and scans every layer, including the files later layers delete
// (each finding names its layer).
func (c *Client) ScanImage(ctx context.Context, ref string, opts ScanOptions) (*ScanResult, error) {
	s, err := c.Begin(ctx, "", SessionOptions{Purpose: "scan"})
	if err != nil {
		return nil, err
	}
	res, err := s.scanImage(ctx, ref, opts)
	if cerr := s.Close(ctx); err == nil && cerr != nil {
		return nil, cerr
	}
	return res, err
}

func (s *Session) scanImage(ctx context.Context, ref string, opts ScanOptions) (*ScanResult, error) {
	img, err := s.ResolveImage(ctx, ref, opts.Platform, opts.Snapshotter)
	if err != nil {
		return nil, err
	}
	notes := img.Notes
	if opts.Packages, err = packages.VerifyImage(ctx, img.Layers, packages.Options{}, imagefs.Options{}); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		notes = append(notes, fmt.Sprintf("package files not checked (%s left out): %v", scan.RulePackageFile, err))
	}
	rep, err := scan.Scan(ctx, scan.LayersInput(img.Layers), opts.Options)
	if err != nil {
		return nil, fmt.Errorf("scan image %s: %w", ref, err)
	}
	return &ScanResult{Report: rep, Target: img.Name, Notes: notes}, nil
}

// writeScanFindings scans the changes in the mounted root filesystem and
// writes the findings into the bag as SARIF; skipped files become notes. The
// package integrity results, when they were read, feed the package-file rule.
func writeScanFindings(ctx context.Context, w *bundle.Writer, root, target string, changes []forensic.Change, integrity *packageIntegrity, acq *bundle.Acquisition) error {
	var opts scan.Options
	if integrity.checked() {
		opts.Packages = integrity.results
	} else {
		acq.Notes = append(acq.Notes, fmt.Sprintf("scan: package files not checked (%s left out)", scan.RulePackageFile))
	}
	rep, err := scan.Scan(ctx, scan.ChangesInput(root, changes), opts)
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	for _, s := range rep.Skipped {
		acq.Notes = append(acq.Notes, fmt.Sprintf("scan skipped %s: %s", forensic.EscapePath(s.Path), s.Reason))
	}
	return w.PutStream(bundle.ScanSARIF, func(f io.Writer) error {
		return scan.WriteSARIF(f, version.String(), target, rep, nil)
	})
}
