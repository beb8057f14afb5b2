package snapshot

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

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

// Harden diffs the container (as Diff does) and derives from its changes the
// writable directories a read-only root filesystem needs and the drift (see
// package harden).
func (c *Client) Harden(ctx context.Context, ctr *Container, opts DiffOptions) (*HardenResult, error) {
	s, err := c.Begin(ctx, ctr.Namespace, SessionOptions{Purpose: "harden"})
	if err != nil {
		return nil, err
	}
	d, err := s.Diff(ctx, ctr, opts)
	if cerr := s.Close(ctx); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	res := &HardenResult{Profile: harden.Derive(d.Changes), Method: d.Method, Status: ctr.Status, Notes: d.Notes}
	res.evidence(ctr, time.Now())
	res.Notes = append(res.Notes, keptMounts(ctr)...)
	return res, nil
}

// keptMounts notes the writable mounts of the spec beyond the kernel's
// (/proc, /sys, /dev): what the container writes there is not in its diff,
// so a read-only run must keep them.
func keptMounts(ctr *Container) []string {
	if ctr.Spec == nil {
		return nil
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
		if slices.Contains(m.Options, "ro") {
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
