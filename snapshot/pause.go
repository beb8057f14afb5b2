package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/errdefs"
)

// Pausing a production container is the one side effect that hurts if it is
// left behind, so it follows a stricter discipline than the others:
//
//   - Before the pause, a pause record is created: a lease of its own, with no
//     expiry, labelled with the container it pauses and the pid of the run.
//     A run killed at any moment after that leaves the record, and `cleanup`
//     resumes the task it names (when the task is paused) and removes it.
//   - The resume is registered with the session before the pause is issued,
//     and both are issued on a context that is not cancelled: an interrupted
//     pause call cannot pause the task behind the caller's back, and Close
//     always resumes.
//   - The resume resumes only a task that is paused, and removes the record
//     only once the task runs again, so that a failed resume stays recorded.

// LabelPausedTask names, on a pause record, the container whose task the run
// paused (in the lease's namespace).
const LabelPausedTask = "ctrforensics.io/paused-task"

// purposePause is the purpose label of a pause record.
const purposePause = "pause"

// settleTimeout bounds how long a resume waits for a pause still in flight
// ("pausing") to land.
const settleTimeout = 5 * time.Second

// Pause pauses the container's task for a consistent capture, until Close.
// It reports whether it paused: a task that is not running is left alone (and
// the skip recorded).
func (s *Session) Pause(ctx context.Context, task client.Task, ctr *Container) (bool, error) {
	if task == nil || ctr.Status != TaskRunning {
		s.Record("pause skipped", fmt.Sprintf("task of %s is %s, not running", ctr.Info.ID, ctr.Status))
		return false, nil
	}
	nc := context.WithoutCancel(ctx)
	record, err := s.recordPause(nc, ctr)
	if err != nil {
		return false, err
	}
	s.resume = func(ctx context.Context) error { return s.resumeTask(ctx, task, ctr, record) }
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := task.Pause(s.c.nsctx(nc, ctr.Namespace)); err != nil {
		return false, fmt.Errorf("pause %s: %w", ctr.Info.ID, err)
	}
	s.Record("task paused", ctr.Info.ID)
	return true, nil
}

// recordPause creates the pause record of ctr's task.
func (s *Session) recordPause(ctx context.Context, ctr *Container) (leases.Lease, error) {
	labels := map[string]string{LabelPurpose: purposePause, LabelPid: strconv.Itoa(os.Getpid()),
		LabelPausedTask: ctr.Info.ID}
	l, err := s.c.c.LeasesService().Create(s.c.nsctx(ctx, ctr.Namespace),
		leases.WithID(s.lease.ID+"-pause"), leases.WithLabels(labels))
	if err != nil {
		return l, fmt.Errorf("record the pause of %s: %w", ctr.Info.ID, err)
	}
	s.Record("pause recorded", fmt.Sprintf("lease %s names %s, for cleanup should this run die", l.ID, ctr.Info.ID))
	return l, nil
}

// resumeTask resumes a task the session paused and then removes its pause
// record.
func (s *Session) resumeTask(ctx context.Context, task client.Task, ctr *Container, record leases.Lease) error {
	ctx = s.c.nsctx(ctx, ctr.Namespace)
	resumed, err := resumeIfPaused(ctx, task)
	if err != nil {
		return fmt.Errorf("resume %s: %w; the task is still paused and its pause record %s stays for cleanup",
			ctr.Info.ID, err, record.ID)
	}
	if resumed {
		s.Record("task resumed", ctr.Info.ID)
	}
	if err := s.c.c.LeasesService().Delete(ctx, record); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove pause record %s: %w", record.ID, err)
	}
	s.Record("pause record removed", record.ID)
	return nil
}

// resumeIfPaused resumes task when it is paused, once a pause in flight has
// landed, and reports whether it did.
func resumeIfPaused(ctx context.Context, task client.Task) (bool, error) {
	st, err := settledStatus(ctx, task)
	if err != nil {
		return false, err
	}
	if st != client.Paused {
		return false, nil
	}
	if err := task.Resume(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// settledStatus returns the task's status once it is no longer "pausing".
func settledStatus(ctx context.Context, task client.Task) (client.ProcessStatus, error) {
	deadline := time.Now().Add(settleTimeout)
	for {
		st, err := task.Status(ctx)
		if err != nil {
			return "", fmt.Errorf("task status: %w", err)
		}
		if st.Status != client.Pausing {
			return st.Status, nil
		}
		if time.Now().After(deadline) {
			return st.Status, errors.New("the task is still pausing")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
