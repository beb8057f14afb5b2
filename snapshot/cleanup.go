package snapshot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"

	"github.com/ctrforensics/ctrforensics/forensic/objstore"
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
// hold, the partial bags of killed collects and the temporary files of killed
// image exports and saves, also those of runs on a disk root (found through
// their run records in stateDir).
func (c *Client) Cleanup(ctx context.Context, stateDir string) (*CleanupReport, error) {
	rep := &CleanupReport{}
	if err := cleanTempMounts(rep); err != nil {
		return rep, err
	}
	cleanRecordTemps(stateDir, rep)
	if err := cleanRunRecords(ctx, stateDir, rep); err != nil {
		return rep, err
	}
	if c.disk != nil {
		return rep, nil // a disk root holds no lease of a run
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

// cleanTempMounts unmounts and removes the temporary mount points of dead runs
// found in this process's temporary directory. Runs with another temporary
// directory are found through their leases (LabelMountDir).
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
	entries, err := os.ReadDir(os.TempDir())
	if err != nil {
		return fmt.Errorf("read temporary directory: %w", err)
	}
	for _, e := range entries {
		dir := filepath.Join(os.TempDir(), e.Name())
		if pid, ok := runDirPid(dir); ok && !alive(pid) {
			if err := cleanRunDir(dir, rep); err != nil {
				return err
			}
		}
		cleanDBCopies(dir, rep)
	}
	return nil
}

// cleanRecordTemps removes the mount records a killed mount was writing.
func cleanRecordTemps(stateDir string, rep *CleanupReport) {
	entries, err := os.ReadDir(stateDir)
	if err != nil {
		return // no state directory: no mount was ever recorded
	}
	for _, e := range entries {
		_, pidText, ok := strings.Cut(e.Name(), ".json"+recordTempMarker)
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || alive(pid) {
			continue
		}
		if os.Remove(filepath.Join(stateDir, e.Name())) == nil {
			rep.Removed = append(rep.Removed, "unfinished mount record "+e.Name())
		}
	}
}

// runDirPid returns the pid in the name of a run's directory of temporary
// mounts.
func runDirPid(dir string) (int, bool) {
	rest, ok := strings.CutPrefix(filepath.Base(dir), RunDirPrefix)
	if !ok || !filepath.IsAbs(dir) {
		return 0, false
	}
	pidText, _, _ := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(pidText)
	return pid, err == nil
}

// cleanRunDir unmounts the temporary mounts left in a dead run's directory
// and removes the directory. Only empty directories are removed (never
// RemoveAll): what is still mounted stays visible and untouched.
func cleanRunDir(dir string, rep *CleanupReport) error {
	if _, ok := runDirPid(dir); !ok {
		return nil // not a name ctrforensics gives: not ours to touch
	}
	done, err := mountutil.UnmountUnder(dir)
	for _, m := range done {
		rep.Removed = append(rep.Removed, "mount "+m)
	}
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	for _, e := range entries {
		os.Remove(filepath.Join(dir, e.Name()))
	}
	os.Remove(dir)
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
	// Pause records first: a paused production task is the most urgent.
	sort.SliceStable(ls, func(i, j int) bool {
		return ls[i].Labels[LabelPurpose] == purposePause && ls[j].Labels[LabelPurpose] != purposePause
	})
	for _, l := range ls {
		purpose, ours := l.Labels[LabelPurpose]
		if !ours {
			continue
		}
		if why := leaseInUse(l, purpose, stateDir); why != "" {
			rep.InUse = append(rep.InUse, fmt.Sprintf("lease %s in %s (%s)", l.ID, ns, why))
			continue
		}
		if purpose == purposePause {
			if err := c.cleanPause(ctx, ns, l, rep); err != nil {
				return err
			}
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
		if purpose == purposePause {
			return "pause of " + l.Labels[LabelPausedTask] + " by running pid " + strconv.Itoa(pid)
		}
		return purpose + " by running pid " + strconv.Itoa(pid)
	}
	return ""
}

// removeLease aborts a stale lease's unfinished upload, removes its views,
// partial output and mount record, then the lease.
func (c *Client) removeLease(ctx context.Context, ns string, l leases.Lease, stateDir string, rep *CleanupReport) error {
	res, err := c.c.LeasesService().ListResources(ctx, l)
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("resources of lease %s: %w", l.ID, err)
	}
	if err := cleanRunDir(l.Labels[LabelMountDir], rep); err != nil {
		return err
	}
	if err := abortUpload(ctx, l.Labels, l.CreatedAt, rep); err != nil {
		return err // the lease stays: a later cleanup tries again
	}
	var views []View
	for _, r := range res {
		sn, ok := strings.CutPrefix(r.Type, "snapshots/")
		if ok && strings.HasPrefix(r.ID, l.ID+"-view-") {
			views = append(views, View{Snapshotter: sn, Key: r.ID})
		}
	}
	removed, err := c.Release(ctx, ns, l.ID, views)
	for _, r := range removed {
		rep.Removed = append(rep.Removed, r+" in "+ns)
	}
	if err != nil {
		return err
	}
	if mp := l.Labels[LabelMountpoint]; mp != "" {
		os.Remove(recordPath(stateDir, mp))
		os.Remove(coverPath(stateDir, mp))
	}
	removeOutputs(l.Labels, rep)
	return nil
}

// abortUpload aborts the multipart upload to object storage a killed collect
// left unfinished (LabelUpload among the labels of its lease or run record,
// created at created), so that no part stays stored.
func abortUpload(ctx context.Context, labels map[string]string, created time.Time, rep *CleanupReport) error {
	rec := labels[LabelUpload]
	if rec == "" {
		return nil
	}
	ids, err := objstore.AbortLeft(ctx, rec, created)
	for _, id := range ids {
		rep.Removed = append(rep.Removed, "unfinished upload to "+objstore.URLOf(rec)+" (upload "+id+" aborted)")
	}
	if err != nil {
		return fmt.Errorf("abort the upload a killed collect left: %w", err)
	}
	return nil
}

// partialKind names what a killed run of purpose left half written: a
// collect's bag, or a commit's layout. (A commit's OCI layout is staged the
// way a bag is, so bundle.RemovePartial removes either.)
func partialKind(purpose string) string {
	if purpose == purposeCommit {
		return "partial output"
	}
	return "partial bag"
}

// pauseGrace is how long after its record a killed run's pause call may still
// land in the runtime: cleanup looks at the task again once it has passed.
const pauseGrace = 2 * time.Second

// cleanPause resumes the task a killed run left paused, when it is paused, and
// removes the run's pause record.
func (c *Client) cleanPause(ctx context.Context, ns string, l leases.Lease, rep *CleanupReport) error {
	id := l.Labels[LabelPausedTask]
	resumed, err := c.resumeLeftPaused(ctx, id, l.CreatedAt)
	if err != nil {
		return fmt.Errorf("resume %s in %s, left paused by a killed run: %w", id, ns, err)
	}
	if resumed {
		rep.Removed = append(rep.Removed, fmt.Sprintf("pause of %s in %s: task resumed (a killed run had paused it)", id, ns))
	}
	err = c.c.LeasesService().Delete(ctx, l)
	switch {
	case err == nil:
		rep.Removed = append(rep.Removed, "pause record "+l.ID+" in "+ns)
	case !errdefs.IsNotFound(err):
		return fmt.Errorf("delete pause record %s: %w", l.ID, err)
	}
	return nil
}

// resumeLeftPaused resumes container id's task if it is paused. A task still
// running is looked at again once the record is pauseGrace old, in case the
// killed run's pause call is still on its way.
func (c *Client) resumeLeftPaused(ctx context.Context, id string, recorded time.Time) (bool, error) {
	ctr, err := c.c.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	resumed, err := resumeIfPaused(ctx, task)
	if resumed || err != nil {
		return resumed, err
	}
	if wait := time.Until(recorded.Add(pauseGrace)); wait > 0 {
		time.Sleep(wait)
		return resumeIfPaused(ctx, task)
	}
	return false, nil
}
