package snapshot

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/attest"
	"github.com/ctrforensics/ctrforensics/forensic/bagit"
	"github.com/ctrforensics/ctrforensics/forensic/bundle"
	"github.com/ctrforensics/ctrforensics/forensic/custody"
	"github.com/ctrforensics/ctrforensics/internal/version"
)

// LabelPartial names, on a collect's lease, the partial bag a killed run
// leaves, so that `cleanup` can remove it.
const LabelPartial = "ctrforensics.io/partial"

// CollectOptions tune Collect.
type CollectOptions struct {
	// Output is a directory, or a .tar, .tar.gz or .tgz file.
	Output               string
	Case, Examiner, Note string
	// SignKey signs the bag (DSSE) and its collected custody event.
	SignKey       ed25519.PrivateKey
	IncludeLayers bool
	// Pause pauses a running task for a consistent capture and resumes it.
	Pause      bool
	Algorithms []bagit.Algorithm
	Diff       DiffOptions
	// Progress, when set, is called about twice a second with the payload
	// written so far.
	Progress func(files, bytes int64)
}

// CollectResult describes a sealed bag.
type CollectResult struct {
	Path        string
	Acquisition *bundle.Acquisition
	// Head is the custody chain's head digest, to record elsewhere.
	Head   string
	Signed bool
}

// Collect acquires a container into a sealed evidence bag at opts.Output. The
// bag is built under a temporary name next to the output and renamed when
// sealed; on failure or interruption nothing is left but what `cleanup`
// removes after a SIGKILL.
func (c *Client) Collect(ctx context.Context, ctr *Container, opts CollectOptions) (*CollectResult, error) {
	out, err := newOutput(opts.Output)
	if err != nil {
		return nil, err
	}
	res, err := c.collect(ctx, ctr, opts, out)
	if err != nil {
		out.abandon()
		return nil, err
	}
	if err := out.commit(); err != nil {
		out.abandon()
		return nil, err
	}
	res.Path = out.final
	return res, nil
}

func (c *Client) collect(ctx context.Context, ctr *Container, opts CollectOptions, out *output) (*CollectResult, error) {
	acq := c.newAcquisition(ctr, opts)
	w, err := bagit.Create(out.bag, opts.Algorithms...)
	if err != nil {
		return nil, err
	}
	stop := reportProgress(w, opts.Progress)
	defer stop()
	s, err := c.Begin(ctx, "", SessionOptions{Purpose: "collect", Labels: map[string]string{LabelPartial: out.partial}})
	if err != nil {
		return nil, err
	}
	err = c.acquire(ctx, s, ctr, opts, w, acq)
	err = errors.Join(err, s.Close(ctx))
	if err != nil {
		return nil, err
	}
	for _, e := range s.Effects() {
		acq.SideEffects = append(acq.SideEffects, bundle.SideEffect(e))
	}
	return seal(w, out, acq, opts)
}

func (c *Client) newAcquisition(ctr *Container, opts CollectOptions) *bundle.Acquisition {
	a := &bundle.Acquisition{Case: opts.Case, Examiner: opts.Examiner, Note: opts.Note, Host: forensic.ReadHost(),
		Start: forensic.FormatTime(time.Now()), ImageLayersIncluded: opts.IncludeLayers}
	a.Tool.Name, a.Tool.Version, a.Tool.Commit, a.Tool.Go = "ctrforensics", version.Version, version.Commit, goVersion()
	a.Containerd.Version, a.Containerd.Address, a.Containerd.Namespace = c.version, c.address, ctr.Namespace
	a.Container.ID, a.Container.Image, a.Container.TaskStatus = ctr.Info.ID, ctr.Info.Image, ctr.Status
	a.Container.Snapshotter, a.Container.SnapshotKey = ctr.Info.Snapshotter, ctr.Info.SnapshotKey
	for _, alg := range opts.Algorithms {
		a.Algorithms = append(a.Algorithms, string(alg))
	}
	return a
}

// acquire reads everything from the host into the bag's payload.
func (c *Client) acquire(ctx context.Context, s *Session, ctr *Container, opts CollectOptions, w *bagit.Writer, acq *bundle.Acquisition) (err error) {
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
	if err := writeChanges(ctx, s, r, d, w, opts, acq); err != nil {
		return err
	}
	return c.writeImage(ctx, ctr, w, opts, acq)
}

// task returns the container's task, or nil when it has none.
func (c *Client) task(ctx context.Context, ctr *Container) (client.Task, error) {
	if ctr.Status == StatusNoTask {
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

func writeContainerRecord(w *bagit.Writer, ctr *Container) error {
	record := map[string]any{
		"id": ctr.Info.ID, "namespace": ctr.Namespace, "labels": ctr.Info.Labels, "image": ctr.Info.Image,
		"runtime": ctr.Info.Runtime, "snapshotter": ctr.Info.Snapshotter, "snapshot_key": ctr.Info.SnapshotKey,
		"created_at": forensic.FormatTime(ctr.Info.CreatedAt), "updated_at": forensic.FormatTime(ctr.Info.UpdatedAt),
		"extensions": extensionNames(ctr), "sandbox_id": ctr.Info.SandboxID,
	}
	files := map[string]any{
		"container/container.json": record,
		"container/spec.json":      ctr.Spec,
		"container/task.json":      map[string]any{"status": ctr.Status, "pid": ctr.Pid},
	}
	for _, name := range []string{"container/container.json", "container/spec.json", "container/task.json"} {
		if err := writeJSON(w, name, files[name]); err != nil {
			return err
		}
	}
	return nil
}

func extensionNames(ctr *Container) map[string]string {
	out := map[string]string{}
	for k, v := range ctr.Info.Extensions {
		out[k] = v.GetTypeUrl()
	}
	return out
}

func writeJSON(w *bagit.Writer, rel string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", rel, err)
	}
	return w.WritePayload(rel, append(b, '\n'))
}

// writeProcesses records the processes of a running or paused task from /proc.
func (c *Client) writeProcesses(ctx context.Context, task client.Task, ctr *Container, w *bagit.Writer, opts CollectOptions, acq *bundle.Acquisition) error {
	if task == nil || (ctr.Status != "running" && ctr.Status != "paused") {
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
	procs, err := forensic.ReadProcesses(ctx, "/proc", pids, opts.Diff.Options)
	if err != nil {
		return err
	}
	return writeJSON(w, "processes/processes.json", procs)
}

// writeChanges writes changes.jsonl, the changes tar and the timeline.
func writeChanges(ctx context.Context, s *Session, r *Rootfs, d *forensic.Diff, w *bagit.Writer, opts CollectOptions, acq *bundle.Acquisition) error {
	if err := writeStream(w, "rootfs/changes.jsonl", func(f io.Writer) error {
		enc := json.NewEncoder(f)
		enc.SetEscapeHTML(false)
		for _, ch := range d.Changes {
			if err := enc.Encode(ch); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := writeStream(w, "timeline/bodyfile.txt", func(f io.Writer) error { return forensic.WriteBodyfile(f, d.Changes) }); err != nil {
		return err
	}
	mounts, err := r.ReadOnlyMounts()
	if err != nil {
		return err
	}
	return s.WithMount(ctx, "container "+r.Key, mounts, func(root string) error {
		return writeStream(w, "rootfs/changes.tar", func(f io.Writer) error {
			st, err := forensic.WriteChangesTar(ctx, f, root, d.Changes, opts.Diff.Options)
			if err == nil {
				acq.Notes = append(acq.Notes, st.Notes...)
			}
			return err
		})
	})
}

// writeStream writes a payload file with fn.
func writeStream(w *bagit.Writer, rel string, fn func(io.Writer) error) error {
	f, err := w.CreatePayload(rel)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", rel, err)
	}
	return f.Close()
}

func (c *Client) writeImage(ctx context.Context, ctr *Container, w *bagit.Writer, opts CollectOptions, acq *bundle.Acquisition) error {
	if ctr.Info.Image == "" {
		acq.Notes = append(acq.Notes, "the container names no image: no image layout")
		return nil
	}
	exp, err := c.ExportLayout(c.nsctx(ctx, ctr.Namespace), ctr.Info.Image, opts.IncludeLayers, func(rel string, r io.Reader) error {
		return writeStream(w, "image/"+rel, func(f io.Writer) error {
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
	return err
}

// seal writes the acquisition record and the manifests, signs, and starts the
// chain of custody.
func seal(w *bagit.Writer, out *output, acq *bundle.Acquisition, opts CollectOptions) (*CollectResult, error) {
	end := time.Now()
	acq.End, acq.CollectedAt, acq.CollectedBy = forensic.FormatTime(end), forensic.FormatTime(end), opts.Examiner
	b, err := json.MarshalIndent(acq, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := w.WriteTag(bundle.AcquisitionFile, append(b, '\n')); err != nil {
		return nil, err
	}
	if err := w.Finish(bagInfo(acq)); err != nil {
		return nil, err
	}
	bag, err := fileDigest(filepath.Join(out.bag, "tagmanifest-sha256.txt"))
	if err != nil {
		return nil, err
	}
	res := &CollectResult{Acquisition: acq, Signed: opts.SignKey != nil}
	if opts.SignKey != nil {
		if err := writeAttestation(out.bag, acq, opts.SignKey); err != nil {
			return nil, err
		}
	}
	line, err := custody.Next(nil, end, custody.ActionCollected, opts.Examiner, opts.Note, bag, opts.SignKey)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(out.bag, custody.FileName), line, 0o644); err != nil {
		return nil, fmt.Errorf("write custody chain: %w", err)
	}
	res.Head = custody.LineDigest(line)
	return res, nil
}

func bagInfo(acq *bundle.Acquisition) []bagit.Field {
	info := []bagit.Field{
		{Label: "Bagging-Date", Value: acq.CollectedAt[:10]},
		{Label: "Bag-Software-Agent", Value: "ctrforensics " + acq.Tool.Version + " (commit " + acq.Tool.Commit + ")"},
		{Label: "External-Description", Value: "containerd container " + acq.Container.ID + " (namespace " + acq.Containerd.Namespace + ", image " + acq.Container.Image + ") on " + acq.Host.Hostname},
		{Label: "Contact-Name", Value: acq.Examiner},
	}
	if acq.Case != "" {
		info = append(info, bagit.Field{Label: "External-Identifier", Value: acq.Case})
	}
	if acq.Note != "" {
		info = append(info, bagit.Field{Label: "Internal-Sender-Description", Value: strings.ReplaceAll(acq.Note, "\n", " ")})
	}
	return info
}

// writeAttestation signs an in-toto statement whose subjects are the tag
// manifests, as a DSSE envelope.
func writeAttestation(bag string, acq *bundle.Acquisition, key ed25519.PrivateKey) error {
	st := &attest.Statement{Type: attest.StatementType, PredicateType: attest.PredicateType}
	for _, name := range []string{"tagmanifest-sha256.txt", "tagmanifest-sha512.txt"} {
		d, err := fileDigest(filepath.Join(bag, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		st.Subject = append(st.Subject, attest.Subject{Name: name, Digest: map[string]string{"sha256": strings.TrimPrefix(d, "sha256:")}})
	}
	pred, err := json.Marshal(map[string]any{"case": acq.Case, "examiner": acq.Examiner, "container": acq.Container.ID,
		"image": acq.Container.Image, "host": acq.Host.Hostname, "collected_at": acq.CollectedAt})
	if err != nil {
		return err
	}
	st.Predicate = pred
	env, err := attest.SignStatement(st, key)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(bag, bundle.AttestationFile), append(b, '\n'), 0o644)
}

// reportProgress calls fn twice a second until the returned stop is called.
func reportProgress(w *bagit.Writer, fn func(files, bytes int64)) (stop func()) {
	if fn == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fn(w.Progress())
			}
		}
	}()
	return func() { close(done); <-finished }
}
