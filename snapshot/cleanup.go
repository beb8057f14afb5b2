package snapshot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"

	"github.com/ctrforensics/ctrforensics/mountutil"
)

// CleanupReport lists what Cleanup removed and what it left because a live
// ctrforensics process or mount still uses it.
type CleanupReport struct {
	Removed []string
	InUse   []string
}

// Cleanup removes what killed ctrforensics runs left behind: temporary mounts
// of dead processes, leases (in every namespace) whose process is gone or
// whose browsing mount is no longer mounted, the view snapshots those leases
// hold, and the partial bags of killed collects.
func (c *Client) Cleanup(ctx context.Context, stateDir string) (*CleanupReport, error) {
	rep := &CleanupReport{}
	if err := cleanTempMounts(rep); err != nil {
		return rep, err
	}
	nss, err := c.Namespaces(ctx)
	if err != nil {
		return rep, err
	}
	for _, ns := range nss {
		if err := c.cleanLeases(namespaces.WithNamespace(ctx, ns), ns, stateDir, rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// cleanTempMounts unmounts and removes the temporary mount points of dead runs.
func cleanTempMounts(rep *CleanupReport) error {
	points, err := mountutil.MountsUnder(os.TempDir())
	if err != nil {
		return err
	}
	for _, m := range points {
		pid, ok := tempMountPid(m)
		if !ok {
			continue
		}
		if alive(pid) {
			rep.InUse = append(rep.InUse, "mount "+m+" (pid "+strconv.Itoa(pid)+" is running)")
			continue
		}
		if err := mountutil.Unmount(m); err != nil {
			return err
		}
		os.Remove(m)
		rep.Removed = append(rep.Removed, "mount "+m)
	}
	return nil
}

func tempMountPid(mountpoint string) (int, bool) {
	rest, ok := strings.CutPrefix(filepath.Base(mountpoint), mountutil.TempMountPrefix)
	if !ok {
		return 0, false
	}
	pidText, _, _ := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(pidText)
	return pid, err == nil
}

// alive tells whether pid is a running ctrforensics process: named so, or
// running this very executable (a renamed binary).
func alive(pid int) bool {
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return false
	}
	if strings.TrimSpace(string(comm)) == "ctrforensics" {
		return true
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	self, serr := os.Executable()
	return err == nil && serr == nil && exe == self
}

func (c *Client) cleanLeases(ctx context.Context, ns, stateDir string, rep *CleanupReport) error {
	ls, err := c.c.LeasesService().List(ctx)
	if err != nil {
		return fmt.Errorf("list leases in %s: %w", ns, err)
	}
	for _, l := range ls {
		purpose, ours := l.Labels[LabelPurpose]
		if !ours {
			continue
		}
		if why := leaseInUse(l, purpose, stateDir); why != "" {
			rep.InUse = append(rep.InUse, fmt.Sprintf("lease %s in %s (%s)", l.ID, ns, why))
			continue
		}
		if err := c.removeLease(ctx, ns, l, stateDir, rep); err != nil {
			return err
		}
	}
	return nil
}

// leaseInUse says why a lease must stay, or "" when its owner is gone.
func leaseInUse(l leases.Lease, purpose, stateDir string) string {
	if purpose == "mount" {
		mp := l.Labels[LabelMountpoint]
		if mounted, _ := mountutil.IsMountpoint(mp); mounted {
			return "mounted at " + mp + "; undo with `ctrforensics umount " + mp + "`"
		}
		return ""
	}
	if pid, err := strconv.Atoi(l.Labels[LabelPid]); err == nil && alive(pid) {
		return purpose + " by running pid " + strconv.Itoa(pid)
	}
	return ""
}

// removeLease removes a stale lease's views, partial bag and mount record,
// then the lease.
func (c *Client) removeLease(ctx context.Context, ns string, l leases.Lease, stateDir string, rep *CleanupReport) error {
	res, err := c.c.LeasesService().ListResources(ctx, l)
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("resources of lease %s: %w", l.ID, err)
	}
	var views []View
	for _, r := range res {
		sn, ok := strings.CutPrefix(r.Type, "snapshots/")
		if ok && strings.HasPrefix(r.ID, l.ID+"-view-") {
			views = append(views, View{Snapshotter: sn, Key: r.ID})
		}
	}
	if err := c.Release(ctx, ns, l.ID, views); err != nil {
		return err
	}
	if mp := l.Labels[LabelMountpoint]; mp != "" {
		os.Remove(recordPath(stateDir, mp))
	}
	for _, v := range views {
		rep.Removed = append(rep.Removed, "view "+v.Snapshotter+"/"+v.Key+" in "+ns)
	}
	rep.Removed = append(rep.Removed, "lease "+l.ID+" in "+ns)
	if p := l.Labels[LabelPartial]; strings.Contains(filepath.Base(p), PartialMarker) {
		if _, err := os.Stat(p); err == nil {
			os.RemoveAll(p)
			os.Remove(p + ".tar")
			rep.Removed = append(rep.Removed, "partial bag "+p)
		}
	}
	return nil
}
