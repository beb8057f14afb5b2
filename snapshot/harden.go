package snapshot

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/diff"
	"github.com/ctrforensics/ctrforensics/forensic/harden"
)

// ShortRun is how long a container must have run for its changes to count as
// a fair sample of what its workload writes (log rotation, caches, uploads
// take time to show).
const ShortRun = 10 * time.Minute

// HardenResult is the read-only profile of a container and how much to trust
// it.
type HardenResult struct {
	Profile *harden.Profile
	Method  diff.Method
	// Status is the task state; Started when its init process started (zero
	// when it has no process), RanFor how long ago that was.
	Status  TaskStatus
	Started time.Time
	RanFor  time.Duration
	// Warnings say why the profile may miss writes; Notes are the diff's.
	Warnings, Notes []string
}

// Harden diffs the container (as Diff does), examines the mounts of its spec
// (as ExamineMounts does) and derives from the changes the writable
// directories a read-only root filesystem needs, the drift, and what its
// writable tmpfs mounts hold (see package harden).
func (c *Client) Harden(ctx context.Context, ctr *Container, opts DiffOptions) (*HardenResult, error) {
	s, err := c.Begin(ctx, ctr.Namespace, SessionOptions{Purpose: "harden"})
	if err != nil {
		return nil, err
	}
	d, m, err := s.hardenInput(ctx, ctr, opts)
	if cerr := s.Close(ctx); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	res := &HardenResult{Profile: harden.Derive(append(d.Changes, m.Changes...), m.Records), Method: d.Method,
		Status: ctr.Status, Notes: append(d.Notes, m.Notes...)}
	res.evidence(ctr, time.Now())
	res.Notes = append(res.Notes, keptMounts(ctr, m.Records)...)
	return res, nil
}

// hardenInput is the container's diff and the examination of its mounts.
func (s *Session) hardenInput(ctx context.Context, ctr *Container, opts DiffOptions) (*diff.Diff, *Mounts, error) {
	d, err := s.Diff(ctx, ctr, opts)
	if err != nil {
		return nil, nil, err
	}
	m, err := s.ExamineMounts(ctx, ctr, MountsOptions{Options: opts.Options})
	if err != nil {
		return nil, nil, err
	}
	m.Close() // the listing is all harden needs
	return d, m, nil
}

// keptMounts notes the writable mounts of the spec beyond the kernel's
// (/proc, /sys, /dev) whose content is not weighed in the profile (a tmpfs
// that was examined is, see harden.Tmpfs): what the container writes there
// is not in its diff, so a read-only run must keep them.
func keptMounts(ctr *Container, records []forensic.Mount) []string {
	if ctr.Spec == nil {
		return nil
	}
	examined := map[string]bool{}
	for _, r := range records {
		if r.Kind == forensic.SourceTmpfs && r.Examined {
			examined[r.Destination] = true
		}
	}
	var out []string
	for _, m := range ctr.Spec.Mounts {
		d := m.Destination
		if d == "/proc" || d == "/sys" || d == "/dev" || strings.HasPrefix(d, "/proc/") || strings.HasPrefix(d, "/sys/") || strings.HasPrefix(d, "/dev/") {
			continue
		}
		if m.Type != "tmpfs" && m.Type != "bind" && !slices.Contains(m.Options, "bind") && !slices.Contains(m.Options, "rbind") {
			continue
		}
		if slices.Contains(m.Options, "ro") || examined[d] {
			continue
		}
		out = append(out, fmt.Sprintf("keep the writable %s mount at %s: what the container writes there is not in its diff", m.Type, d))
	}
	return out
}

// evidence says how long the container ran and warns when that is little.
func (r *HardenResult) evidence(ctr *Container, now time.Time) {
	if ctr.Status == TaskOffline {
		r.Warnings = append(r.Warnings, "read from a disk root: whether the container was running, and for how long, is unknown: the profile covers what it wrote until the host stopped; check that it ran long enough for its workload to write what it writes (log rotation, caches, uploads)")
		return
	}
	if ctr.Pid == 0 || (ctr.Status != TaskRunning && ctr.Status != TaskPaused) {
		r.Warnings = append(r.Warnings, fmt.Sprintf("the container has no running process (task %s): the profile covers what it wrote before, for however long it ran", ctr.Status))
		return
	}
	started, err := processStart(int(ctr.Pid))
	if err != nil {
		r.Warnings = append(r.Warnings, "how long the container ran is unknown: "+err.Error())
		return
	}
	r.Started, r.RanFor = started, now.Sub(started)
	if r.RanFor < ShortRun {
		r.Warnings = append(r.Warnings, fmt.Sprintf("the container has run for only %s: writes it makes later (log rotation, caches, uploads) are not covered; run harden again after a representative run", r.RanFor.Round(time.Second)))
	}
}
