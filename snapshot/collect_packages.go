package snapshot

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ctrforensics/ctrforensics/forensic/bundle"
	"github.com/ctrforensics/ctrforensics/forensic/diff"
	"github.com/ctrforensics/ctrforensics/forensic/packages"
	"github.com/ctrforensics/ctrforensics/internal/output"
	"github.com/ctrforensics/ctrforensics/internal/version"
)

// packageIntegrity holds the integrity of a container's changes against its
// image's package records, as the bag records it; nil when they could not be
// read.
type packageIntegrity struct {
	results []packages.Result
}

// checked tells whether the package records were read.
func (p *packageIntegrity) checked() bool { return p != nil }

// writePackages writes data/packages/: the CycloneDX SBOM of the container
// as found and the integrity of its changes against the image's package
// records, which it returns. A failure to read packages is a note, never a
// failed collection.
func (s *Session) writePackages(ctx context.Context, r *Rootfs, ctr *Container, d *diff.Diff, w *bundle.Writer, acq *bundle.Acquisition) (*packageIntegrity, error) {
	inv, err := s.packagesOf(ctx, r, ctr, packages.Options{})
	if err != nil {
		acq.Notes = append(acq.Notes, fmt.Sprintf("packages not recorded: %v", err))
		return nil, nil
	}
	for _, n := range inv.Notes {
		acq.Notes = append(acq.Notes, "packages: "+n)
	}
	subj := packages.Subject{Kind: "container", Name: ctr.Info.ID, Tool: "ctrforensics " + version.String(), Time: time.Now().UTC()}
	if err := w.PutStream(bundle.PackagesSBOM, func(wr io.Writer) error { return packages.WriteCycloneDX(wr, subj, inv) }); err != nil {
		return nil, err
	}
	res, err := s.verifyPackages(ctx, r, ctr, changeTargets(d.Changes))
	if err != nil {
		acq.Notes = append(acq.Notes, fmt.Sprintf("package integrity not recorded: %v", err))
		return nil, nil
	}
	if err := w.PutStream(bundle.PackagesIntegrity, func(wr io.Writer) error { return output.JSONLines(wr, res) }); err != nil {
		return nil, err
	}
	return &packageIntegrity{results: res}, nil
}
