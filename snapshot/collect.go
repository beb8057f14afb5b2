package snapshot

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/containerd/containerd/v2/client"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/bagit"
	"github.com/ctrforensics/ctrforensics/forensic/bundle"
	"github.com/ctrforensics/ctrforensics/forensic/changetar"
	"github.com/ctrforensics/ctrforensics/forensic/diff"
	"github.com/ctrforensics/ctrforensics/forensic/procfs"
)

// LabelPartial names, on a collect's lease, the partial bag a killed run
// leaves, so that `cleanup` can remove it.
const LabelPartial = "ctrforensics.io/partial"

// LabelUpload describes, on a collect's lease, the upload to object storage a
// killed run may leave unfinished (objstore.Sink.Record), so that `cleanup`
// aborts it.
const LabelUpload = "ctrforensics.io/upload"

// CollectOptions tune Collect.
type CollectOptions struct {
	// Output is a directory, or a .tar, .tar.gz or .tgz file.
	Output string
	// Sink, when set, receives the bag instead of Output, as one stream
	// written while it is collected (see bundle.CreateStream): nothing is
	// written to local disk. It cannot take Commit (ErrCommitToSink).
	Sink bundle.Sink
	// SinkRecord, with Sink, is what lets `cleanup` abort an upload a
	// killed run left (LabelUpload).
	SinkRecord           string
	Case, Examiner, Note string
	// SignKey signs the bag (DSSE) and its collected custody event.
	SignKey       ed25519.PrivateKey
	IncludeLayers bool
	// Commit adds the committed image (see Commit) to the image layout as a
	// second manifest, ref name CommittedRefName; it implies IncludeLayers.
	Commit bool
	// Pause pauses a running task for a consistent capture and resumes it.
	Pause bool
	// Volumes includes the content of the spec's volumes (bind-mounted
	// directories), which are otherwise only listed.
	Volumes    bool
	Algorithms []bagit.Algorithm
	Diff       DiffOptions
	// Progress, when set, is called about twice a second with the payload
	// written so far.
	Progress func(files, bytes int64)
	// BagGroup names the group of bags this one belongs to (bag-info.txt
	// Bag-Group-Identifier).
	BagGroup string
	// Orchestration records the cluster-wide run this bag is part of; its
	// target, when named, must be the container collected.
	Orchestration *bundle.Orchestration
}

// CollectResult describes a sealed bag.
type CollectResult struct {
	Path        string
	Acquisition *bundle.Acquisition
	// Head is the custody chain's head digest, to record elsewhere.
	Head   string
	Signed bool
	// Notes are what the examiner must know of the acquisition (files that
	// changed between the diff and the archive, not archived, vanished...),
	// as the acquisition record lists them.
	Notes []string
	// VolumesLeftOut counts the volumes listed whose content is not in the
	// bag (CollectOptions.Volumes was not set).
	VolumesLeftOut int
}

// Collect acquires a container into a sealed evidence bundle at opts.Output
// (see bundle.Writer), which must not be inside the container's own file
// system (OutputInsideError). On failure or interruption nothing is left but what
// `cleanup` removes after a SIGKILL: a lease labelled with the partial output
// is held from before the first byte is written until the bundle is
// committed, so that a run killed at any moment, sealing and packing
// included, leaves a record cleanup finds.
func (c *Client) Collect(ctx context.Context, ctr *Container, opts CollectOptions) (*CollectResult, error) {
	opts.IncludeLayers = opts.IncludeLayers || opts.Commit
	if o := opts.Orchestration; o != nil && o.Target.ContainerID != "" && o.Target.ContainerID != ctr.Info.ID {
		return nil, fmt.Errorf("the orchestration names container %s, not %s", o.Target.ContainerID, ctr.Info.ID)
	}
	if opts.Sink != nil && opts.Commit {
		return nil, ErrCommitToSink
	}
	w, hold, err := c.createBundle(ctx, ctr, opts)
	if err != nil {
		return nil, err
	}
	res, err := c.collect(ctx, ctr, opts, w, hold.Effects())
	switch {
	case err == nil && opts.Sink != nil:
		res.Path, res.Head, err = w.Store(ctx)
	case err == nil:
		res.Path, err = w.Commit()
	}
	if err != nil {
		w.Abandon()
		return nil, errors.Join(err, hold.Close(ctx))
	}
	if err := hold.Close(ctx); err != nil {
		return nil, fmt.Errorf("bundle committed to %s, but %w", res.Path, err)
	}
	return res, nil
}

// ErrCommitToSink refuses a committed image in a bundle sent to a sink: its
// layer is compressed on local disk before its size is known, and a
// streamed bundle writes nothing locally.
var ErrCommitToSink = errors.New("a bundle streamed to object storage cannot hold the committed image: its layer would be built on local disk first")

// createBundle starts the bundle, at opts.Output (which may not be inside
// the container's own file system) or streamed to opts.Sink, and the lease
// that names what a killed run leaves: the partial output, created first, or
// the upload, named before it starts.
func (c *Client) createBundle(ctx context.Context, ctr *Container, opts CollectOptions) (*bundle.Writer, *Session, error) {
	bopts := bundle.CreateOptions{Algorithms: opts.Algorithms, Progress: opts.Progress}
	if opts.Sink != nil {
		labels := map[string]string{}
		if opts.SinkRecord != "" {
			labels[LabelUpload] = opts.SinkRecord
		}
		hold, err := c.Begin(ctx, "", SessionOptions{Purpose: "collect", Labels: labels})
		if err != nil {
			return nil, nil, err
		}
		hold.Record("upload", opts.Sink.Name()+" (named on this lease until the upload is complete)")
		w, err := bundle.CreateStream(ctx, opts.Sink, bopts)
		if err != nil {
			return nil, nil, errors.Join(err, hold.Close(ctx))
		}
		return w, hold, nil
	}
	if err := c.refuseOutputInside(ctx, ctr, "output", opts.Output); err != nil {
		return nil, nil, err
	}
	w, err := bundle.Create(opts.Output, bopts)
	if err != nil {
		return nil, nil, err
	}
	hold, err := c.Begin(ctx, "", SessionOptions{Purpose: "collect", Labels: map[string]string{LabelPartial: w.Partial()}})
	if err != nil {
		w.Abandon()
		return nil, nil, err
	}
	hold.Record("partial output", w.Partial()+" (named on this lease until the bundle is committed)")
	return w, hold, nil
}

// collect acquires into w and seals it; effects are the side effects that
// came before (the output's lease).
func (c *Client) collect(ctx context.Context, ctr *Container, opts CollectOptions, w *bundle.Writer, effects []SideEffect) (*CollectResult, error) {
	acq := c.newAcquisition(ctr, opts)
	s, err := c.Begin(ctx, "", SessionOptions{Purpose: "collect"})
	if err != nil {
		return nil, err
	}
	err = c.acquire(ctx, s, ctr, opts, w, acq)
	err = errors.Join(err, s.Close(ctx))
	if err != nil {
		return nil, err
	}
	acq.SideEffects = append(append(acq.SideEffects, effects...), s.Effects()...)
	sealed, err := w.Seal(acq, opts.SignKey)
	if err != nil {
		return nil, err
	}
	return &CollectResult{Acquisition: acq, Head: sealed.Head, Signed: sealed.Signed, Notes: acq.Notes,
		VolumesLeftOut: len(acq.VolumesNotArchived)}, nil
}

func (c *Client) newAcquisition(ctr *Container, opts CollectOptions) *bundle.Acquisition {
	a := bundle.NewAcquisition(time.Now())
	a.Case, a.Examiner, a.Note, a.Host = opts.Case, opts.Examiner, opts.Note, procfs.ReadHost()
	a.ImageLayersIncluded = opts.IncludeLayers
	a.BagGroup, a.Orchestration = opts.BagGroup, opts.Orchestration
	a.Containerd.Version, a.Containerd.Address, a.Containerd.Namespace = c.version, c.address, ctr.Namespace
	a.Container.ID, a.Container.Image, a.Container.TaskStatus = ctr.Info.ID, ctr.Info.Image, string(ctr.Status)
	a.Container.Snapshotter, a.Container.SnapshotKey = ctr.Info.Snapshotter, ctr.Info.SnapshotKey
	a.DiskRoot, a.Notes = c.DiskRoot(), c.RootNotes()
	if !ctr.Pod.IsZero() {
		pod := ctr.Pod
		a.Pod = &pod
	}
	for _, alg := range opts.Algorithms {
		a.Algorithms = append(a.Algorithms, string(alg))
	}
	return a
}

// acquire reads everything from the host into the bag's payload.
func (c *Client) acquire(ctx context.Context, s *Session, ctr *Container, opts CollectOptions, w *bundle.Writer, acq *bundle.Acquisition) (err error) {
	task, err := c.task(ctx, ctr)
	if err != nil {
		return err
	}
	if opts.Pause {
		acq.Paused, err = s.Pause(ctx, task, ctr) // resumed by s.Close
		if err != nil {
			return err
		}
	}
	if err := writeContainerRecord(w, ctr); err != nil {
		return err
	}
	if err := c.writeProcesses(ctx, task, ctr, w, opts, acq); err != nil {
		return err
	}
	r, err := s.Rootfs(ctx, ctr)
	if err != nil {
		return err
	}
	d, err := s.DiffRootfs(ctx, r, ctr, opts.Diff)
	if err != nil {
		return fmt.Errorf("diff: %w", err)
	}
	acq.DiffMethod, acq.Changes, acq.Notes = string(d.Method), len(d.Changes), append(acq.Notes, d.Notes...)
	m, err := s.ExamineMounts(ctx, ctr, MountsOptions{Options: opts.Diff.Options})
	if err != nil {
		return fmt.Errorf("mounts: %w", err)
	}
	defer m.Close()
	// The package records come first: the bag's scan findings include the
	// package-owned files that no longer match them.
	integrity, err := s.writePackages(ctx, r, ctr, d, w, acq)
	if err != nil {
		return err
	}
	if err := writeChanges(ctx, s, r, d, m.Changes, w, opts, acq, integrity); err != nil {
		return err
	}
	if err := writeMounts(ctx, m, w, opts, acq); err != nil {
		return err
	}
	return c.writeImage(ctx, s, ctr, w, opts, acq, r, d)
}

// task returns the container's task, or nil when it has none.
func (c *Client) task(ctx context.Context, ctr *Container) (client.Task, error) {
	if ctr.Status == TaskNone || c.disk != nil {
		return nil, nil
	}
	ctx = c.nsctx(ctx, ctr.Namespace)
	loaded, err := c.c.LoadContainer(ctx, ctr.Info.ID)
	if err != nil {
		return nil, fmt.Errorf("load container %s: %w", ctr.Info.ID, err)
	}
	t, err := loaded.Task(ctx, nil)
	if err != nil {
		return nil, nil // deleted meanwhile: nothing to pause or list
	}
	return t, nil
}

func writeContainerRecord(w *bundle.Writer, ctr *Container) error {
	record := map[string]any{
		"id": ctr.Info.ID, "namespace": ctr.Namespace, "labels": ctr.Info.Labels, "image": ctr.Info.Image,
		"runtime": ctr.Info.Runtime, "snapshotter": ctr.Info.Snapshotter, "snapshot_key": ctr.Info.SnapshotKey,
		"created_at": forensic.FormatTime(ctr.Info.CreatedAt), "updated_at": forensic.FormatTime(ctr.Info.UpdatedAt),
		"extensions": extensionNames(ctr), "sandbox_id": ctr.Info.SandboxID,
	}
	if err := w.PutJSON(bundle.ContainerJSON, record); err != nil {
		return err
	}
	if err := w.PutJSON(bundle.SpecJSON, ctr.Spec); err != nil {
		return err
	}
	return w.PutJSON(bundle.TaskJSON, map[string]any{"status": ctr.Status, "pid": ctr.Pid})
}

func extensionNames(ctr *Container) map[string]string {
	out := map[string]string{}
	for k, v := range ctr.Info.Extensions {
		out[k] = v.GetTypeUrl()
	}
	return out
}

// writeProcesses records the processes of a running or paused task from /proc.
func (c *Client) writeProcesses(ctx context.Context, task client.Task, ctr *Container, w *bundle.Writer, opts CollectOptions, acq *bundle.Acquisition) error {
	if c.disk != nil {
		acq.Notes = append(acq.Notes, "read from a disk root: the task's state and processes are unknown, none recorded")
		return nil
	}
	if task == nil || (ctr.Status != TaskRunning && ctr.Status != TaskPaused) {
		acq.Notes = append(acq.Notes, "no running task: no processes recorded")
		return nil
	}
	infos, err := task.Pids(c.nsctx(ctx, ctr.Namespace))
	if err != nil {
		return fmt.Errorf("list processes of %s: %w", ctr.Info.ID, err)
	}
	pids := make([]int, len(infos))
	for i, p := range infos {
		pids[i] = int(p.Pid)
	}
	procs, err := procfs.ReadProcesses(ctx, "/proc", pids, opts.Diff.MaxHashBytes)
	if err != nil {
		return err
	}
	return w.PutJSON(bundle.ProcessesJSON, procs)
}

// writeChanges writes changes.jsonl, the changes tar, the archive of the
// names a layer cannot carry (when there are any) and the timeline, which
// also holds mountChanges.
func writeChanges(ctx context.Context, s *Session, r *Rootfs, d *diff.Diff, mountChanges []forensic.Change, w *bundle.Writer, opts CollectOptions, acq *bundle.Acquisition, integrity *packageIntegrity) error {
	if err := putJSONL(w, bundle.ChangesJSONL, d.Changes); err != nil {
		return err
	}
	timeline := append(slices.Clone(d.Changes), mountChanges...)
	if err := w.PutStream(bundle.Bodyfile, func(f io.Writer) error { return forensic.WriteBodyfile(f, timeline) }); err != nil {
		return err
	}
	mounts, err := r.ReadOnlyMounts()
	if err != nil {
		return err
	}
	topts := changetar.Options{MaxBytes: opts.Diff.MaxHashBytes}
	return s.WithMount(ctx, "container "+r.Key, mounts, func(root string) error {
		if err := putArchive(ctx, w, bundle.ChangesTar, root, d.Changes, changetar.Layer, topts, acq); err != nil {
			return err
		}
		if err := writeScanFindings(ctx, w, root, "container/"+acq.Container.ID, d.Changes, integrity, acq); err != nil {
			return err
		}
		unsafe := changetar.UnsafeChanges(d.Changes)
		if len(unsafe) == 0 {
			return nil
		}
		acq.Notes = append(acq.Notes, fmt.Sprintf("%d changes whose names an OCI layer reads as whiteouts are in %s, a plain tar never to be applied as a layer", len(unsafe), bundle.UnsafeNamesTar))
		return putArchive(ctx, w, bundle.UnsafeNamesTar, root, unsafe, changetar.Unsafe, topts, acq)
	})
}

// putArchive writes the archive of kind of changes read from root at name,
// planned first so that its size is known (a streamed bundle needs it), and
// adds its notes to the acquisition record.
func putArchive(ctx context.Context, w *bundle.Writer, name, root string, changes []forensic.Change, kind changetar.Kind, opts changetar.Options, acq *bundle.Acquisition) error {
	a, err := changetar.Plan(ctx, root, changes, kind, opts)
	if err != nil {
		return fmt.Errorf("archive changes: %w", err)
	}
	return w.PutSized(name, a.Size(), func(f io.Writer) error {
		st, err := a.WriteTo(ctx, f)
		if err == nil {
			acq.Notes = append(acq.Notes, st.Notes...)
		}
		return err
	})
}

// putJSONL writes changes at name, one JSON object per line.
func putJSONL(w *bundle.Writer, name string, changes []forensic.Change) error {
	return w.PutStream(name, func(f io.Writer) error {
		enc := json.NewEncoder(f)
		enc.SetEscapeHTML(false)
		for _, ch := range changes {
			if err := enc.Encode(ch); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeMounts writes what the container could write outside its snapshot:
// the mounts' records, their entries and the archives of their content.
func writeMounts(ctx context.Context, m *Mounts, w *bundle.Writer, opts CollectOptions, acq *bundle.Acquisition) error {
	acq.Notes = append(acq.Notes, m.Notes...)
	acq.Mounts, acq.MountChanges, acq.VolumesIncluded = len(m.Records), len(m.Changes), opts.Volumes
	if err := putJSONL(w, bundle.MountChangesJSONL, m.Changes); err != nil {
		return err
	}
	notes, err := m.WriteArchives(ctx, bundle.MountArchive, w.PutSized, MountArchivesOptions{Volumes: opts.Volumes, MaxBytes: opts.Diff.MaxHashBytes})
	if err != nil {
		return err
	}
	acq.Notes = append(acq.Notes, notes...)
	for _, r := range m.Records {
		if r.Examined && r.Archive == "" {
			acq.VolumesNotArchived = append(acq.VolumesNotArchived, r.Destination)
		}
	}
	records := m.Records
	if records == nil {
		records = []forensic.Mount{}
	}
	return w.PutJSON(bundle.MountsJSON, records)
}

func (c *Client) writeImage(ctx context.Context, s *Session, ctr *Container, w *bundle.Writer, opts CollectOptions, acq *bundle.Acquisition, r *Rootfs, d *diff.Diff) error {
	if ctr.Info.Image == "" {
		acq.Notes = append(acq.Notes, "the container names no image: no image layout")
		return nil
	}
	written := map[string]bool{}
	var index []byte // held back for the committed manifest
	exp, err := c.ExportLayout(c.nsctx(ctx, ctr.Namespace), ctr.Info.Image, opts.IncludeLayers, func(rel string, size int64, r io.Reader) error {
		if opts.Commit && rel == "index.json" {
			var err error
			index, err = io.ReadAll(r)
			return err
		}
		written[rel] = true
		return w.PutSized(bundle.ImagePath(rel), size, func(f io.Writer) error {
			_, err := io.Copy(f, r)
			return err
		})
	})
	var nf *NotFoundError
	if errors.As(err, &nf) {
		acq.Notes = append(acq.Notes, fmt.Sprintf("image %s is no longer in containerd: no image layout", ctr.Info.Image))
		return nil
	}
	if exp != nil {
		acq.Notes = append(acq.Notes, exp.Notes...)
		acq.ImageBlobsNotExported = exp.Missing
	}
	if err != nil || !opts.Commit {
		return err
	}
	return c.writeCommitted(ctx, s, ctr, w, opts, acq, r, d, written, index)
}
