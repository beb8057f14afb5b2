package snapshot

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ctrforensics/ctrforensics/forensic/bundle"
)

// Run records. A session on a disk root talks to no daemon, so it has no
// lease to carry what cleanup must find after a SIGKILL: the partial output
// of a collect, a commit or an export. Such a session writes the labels its
// lease would have had into a run record in the state directory (on the
// examiner's host, never under the root it reads) before it returns, and
// removes the record when it closes. Cleanup treats a record whose process
// is gone as it treats that process's lease.

// runRecordPrefix starts the name of a run record in the state directory.
const runRecordPrefix = "run-"

// runRecord is what a session on a disk root records in place of a lease.
type runRecord struct {
	ID      string            `json:"id"`
	Created time.Time         `json:"created"`
	Labels  map[string]string `json:"labels"`
}

// SetStateDir sets where the client's sessions on a disk root record what a
// killed run leaves (DefaultStateDir when never set); Cleanup must be given
// the same directory.
func (c *Client) SetStateDir(dir string) { c.stateDir = dir }

func (c *Client) stateDirectory() string {
	if c.stateDir == "" {
		return DefaultStateDir
	}
	return c.stateDir
}

// writeRunRecord writes the run record of a session on a disk root with
// labels, and returns its path. It is written under a temporary name first,
// which cleanup removes when the writer was killed.
func (c *Client) writeRunRecord(labels map[string]string) (string, error) {
	dir := c.stateDirectory()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create state directory: %w", err)
	}
	rec := runRecord{ID: "ctrforensics-" + randomID(), Created: time.Now().UTC(), Labels: labels}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, runRecordPrefix+labels[LabelPid]+"-"+rec.ID+".json")
	tmp := p + recordTempMarker + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return "", fmt.Errorf("write run record: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("write run record: %w", err)
	}
	return p, nil
}

// cleanRunRecords aborts the unfinished upload and removes the partial
// outputs the run records of killed runs name, then the records; a record
// whose process runs is in use. A record whose upload could not be aborted
// stays for a later cleanup.
func cleanRunRecords(ctx context.Context, stateDir string, rep *CleanupReport) error {
	entries, err := os.ReadDir(stateDir)
	if err != nil {
		return nil // no state directory: no run was ever recorded
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, runRecordPrefix) || !strings.HasSuffix(name, ".json") {
			continue
		}
		p := filepath.Join(stateDir, name)
		b, err := os.ReadFile(p)
		var rec runRecord
		if err == nil {
			err = json.Unmarshal(b, &rec)
		}
		if err != nil {
			rep.InUse = append(rep.InUse, fmt.Sprintf("run record %s (unreadable, left for you to look at: %v)", p, err))
			continue
		}
		purpose := rec.Labels[LabelPurpose]
		if pid, err := strconv.Atoi(rec.Labels[LabelPid]); err == nil && alive(pid) {
			rep.InUse = append(rep.InUse, fmt.Sprintf("run record %s (%s by running pid %d)", name, purpose, pid))
			continue
		}
		if err := abortUpload(ctx, rec.Labels, rec.Created, rep); err != nil {
			return err
		}
		removeOutputs(rec.Labels, rep)
		if os.Remove(p) == nil {
			rep.Removed = append(rep.Removed, "run record "+name+" ("+purpose+" on a disk root)")
		}
	}
	return nil
}

// removeOutputs removes the partial outputs that the labels of a killed
// run's lease or run record name.
func removeOutputs(labels map[string]string, rep *CleanupReport) {
	if p := labels[LabelPartial]; p != "" && bundle.RemovePartial(p) {
		rep.Removed = append(rep.Removed, partialKind(labels[LabelPurpose])+" "+p)
	}
	if p := labels[LabelPartialFile]; p != "" && removePartialFile(p) {
		rep.Removed = append(rep.Removed, "partial output "+p)
	}
}
