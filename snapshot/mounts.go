package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/changetar"
	"github.com/ctrforensics/ctrforensics/forensic/diff"
	"github.com/ctrforensics/ctrforensics/mountutil"
)

// Mounts is what a container could write outside its snapshot, as its OCI
// runtime spec mounts it: tmpfs mounts (read through the running task's
// mount namespace), the files the runtime bind-mounts from the host
// (/etc/hosts, /etc/resolv.conf, /etc/hostname) and bind-mounted
// directories (volumes), both read from their host source. Every mount of
// the spec has a record; what could not be examined is in Notes. Close
// releases the read-only clones the examination holds.
type Mounts struct {
	// Records has one entry per mount of the spec, in the spec's order.
	Records []forensic.Mount
	// Changes lists every entry found, sorted by path: tmpfs and volume
	// entries as added, a bind-mounted file as changed (it shadows the
	// image's file, which it is not compared with).
	Changes []forensic.Change
	// Notes say what was not examined and why.
	Notes []string
	// examined holds, per examined record, what WriteArchives reads.
	examined []*examinedMount
}

// examinedMount is a mount whose entries were read through root.
type examinedMount struct {
	record int
	root   *mountutil.Detached
	// changes are relative to root, as WritePlainTar reads them.
	changes []forensic.Change
}

// noTaskNote says why the tmpfs mounts of a container without a task are
// not examined.
const noTaskNote = "not examined: the container has no running task, and a tmpfs's content dies with its task"

// kernelFS are the file systems of a spec that hold no data a container
// stores: they are recorded, not examined.
var kernelFS = []string{"proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2"}

// MountsOptions tune ExamineMounts.
type MountsOptions struct {
	diff.Options
	// DiskRoot is set when the container comes from a containerd root on a
	// disk (a dead host), not from the live host: the host paths its spec
	// names are then not this machine's, and bind mounts are not examined
	// (with a note) rather than read from the examiner's own files. A
	// session of a client that reads a disk root sets it itself.
	DiskRoot string
}

// ExamineMounts examines every mount of the container's spec (see Mounts).
// A bind-mounted directory on a host tmpfs (a CRI pod's /dev/shm) counts as
// a tmpfs, read from its host source.
// Nothing it cannot examine is skipped silently: a stopped task (whose
// tmpfs content died with it), a bind source that is gone or not a file or
// directory, a mount that is not where the spec says, each gives a note.
// Every read-only clone it makes is recorded in the session.
func (s *Session) ExamineMounts(ctx context.Context, ctr *Container, opts MountsOptions) (*Mounts, error) {
	if opts.DiskRoot == "" && s != nil {
		opts.DiskRoot = s.c.Root()
	}
	m := &Mounts{}
	if ctr.Spec == nil {
		m.Notes = append(m.Notes, "the container's OCI spec could not be read: its mounts were not examined")
		return m, nil
	}
	for _, sm := range ctr.Spec.Mounts {
		rec := forensic.Mount{Destination: sm.Destination, Type: sm.Type, Source: sm.Source,
			Options: slices.Clone(sm.Options), Writable: !slices.Contains(sm.Options, "ro")}
		if rec.Options == nil {
			rec.Options = []string{}
		}
		var err error
		switch {
		case sm.Type == "tmpfs":
			rec.Kind = forensic.SourceTmpfs
			err = s.examineTmpfs(ctx, ctr, m, &rec, opts.Options)
		case isBind(sm) && opts.DiskRoot != "":
			rec.Kind = forensic.SourceBind
			m.skip(&rec, "not examined: its host source %s is a path of the host the disk root %s came from, not of this one", forensic.EscapePath(sm.Source), forensic.EscapePath(opts.DiskRoot))
		case isBind(sm):
			err = s.examineBind(ctx, ctr, m, &rec, opts.Options)
		case slices.Contains(kernelFS, sm.Type):
			// Kernel state, not stored data: recorded, without a note on
			// every diff.
			rec.Note = "kernel file system: not examined"
		default:
			rec.Note = fmt.Sprintf("file system type %q: not examined", sm.Type)
			m.Notes = append(m.Notes, fmt.Sprintf("mount %s: %s", forensic.EscapePath(sm.Destination), rec.Note))
		}
		if err != nil {
			m.Close()
			return nil, err
		}
		m.Records = append(m.Records, rec)
	}
	var died []string
	for _, r := range m.Records {
		if r.Note == noTaskNote {
			died = append(died, forensic.EscapePath(r.Destination))
		}
	}
	if len(died) > 0 {
		m.Notes = append(m.Notes, "tmpfs "+strings.Join(died, ", ")+": "+noTaskNote)
	}
	diff.MarkRuntime(m.Changes, ctr.Mountpoints())
	markRuntimeDevices(m.Changes)
	markRuntimeFiles(m.Changes, taskStart(ctr))
	sort.SliceStable(m.Changes, func(i, j int) bool { return m.Changes[i].Path < m.Changes[j].Path })
	return m, nil
}

func isBind(sm specs.Mount) bool {
	return sm.Type == "bind" || slices.Contains(sm.Options, "bind") || slices.Contains(sm.Options, "rbind")
}

// hasTask reports whether the container has a running or paused task.
func hasTask(ctr *Container) bool {
	return (ctr.Status == TaskRunning || ctr.Status == TaskPaused) && ctr.Pid != 0
}

// skip records why a mount was not examined, in its record and the notes.
func (m *Mounts) skip(rec *forensic.Mount, format string, args ...any) {
	rec.Note = fmt.Sprintf(format, args...)
	m.Notes = append(m.Notes, fmt.Sprintf("%s %s: %s", rec.Kind, forensic.EscapePath(rec.Destination), rec.Note))
}

func (s *Session) examineTmpfs(ctx context.Context, ctr *Container, m *Mounts, rec *forensic.Mount, opts diff.Options) error {
	if !hasTask(ctr) {
		// One note for all of them, after the loop.
		rec.Note = noTaskNote
		return nil
	}
	root, err := mountutil.CloneTaskMount(int(ctr.Pid), rec.Destination, "tmpfs")
	if err != nil {
		m.skip(rec, "not examined: %v", err)
		return nil
	}
	s.Record("read-only clone", fmt.Sprintf("tmpfs %s of task %d, detached (in no mount table), released at the end", rec.Destination, ctr.Pid))
	d, err := diff.List(ctx, root.Root(), rec.Destination, opts)
	if err != nil {
		root.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		m.skip(rec, "not examined: %v", err)
		return nil
	}
	m.add(rec, root, d, forensic.Added)
	return nil
}

func (s *Session) examineBind(ctx context.Context, ctr *Container, m *Mounts, rec *forensic.Mount, opts diff.Options) error {
	rec.Kind = forensic.SourceVolume
	st, err := os.Lstat(rec.Source)
	if err != nil {
		m.skip(rec, "host source %s: %v", forensic.EscapePath(rec.Source), errors.Unwrap(err))
		return nil
	}
	if hasTask(ctr) {
		// The host path may have been replaced since the task started: then
		// the container sees another file than the one read here.
		same, err := mountutil.SameInTask(int(ctr.Pid), rec.Destination, rec.Source)
		switch {
		case err != nil:
			m.Notes = append(m.Notes, fmt.Sprintf("bind %s: could not check that the host source is what the container sees: %v", forensic.EscapePath(rec.Destination), err))
		case !same:
			m.Notes = append(m.Notes, fmt.Sprintf("bind %s: the host source %s is not the file the container sees (replaced on the host since the task started); read from the host source", forensic.EscapePath(rec.Destination), forensic.EscapePath(rec.Source)))
		}
	}
	dir, names, kind := rec.Source, []string(nil), forensic.Added
	switch {
	case st.Mode().IsDir():
		// A host tmpfs shared into the container (a CRI pod's /dev/shm) is
		// memory, bounded and short-lived: a tmpfs, archived by default.
		if tmp, err := mountutil.IsTmpfs(rec.Source); err == nil && tmp {
			rec.Kind = forensic.SourceTmpfs
		}
	case st.Mode().IsRegular():
		rec.Kind, kind = forensic.SourceBind, forensic.Changed
		dir, names = path.Dir(rec.Source), []string{path.Base(rec.Source)}
	default:
		m.skip(rec, "host source %s is a %s: not examined", forensic.EscapePath(rec.Source), st.Mode().Type())
		return nil
	}
	root, err := mountutil.CloneReadOnly(dir)
	if err != nil {
		m.skip(rec, "not examined: %v", err)
		return nil
	}
	s.Record("read-only clone", fmt.Sprintf("host directory %s, detached (in no mount table), released at the end", dir))
	var d *diff.Diff
	if names == nil {
		d, err = diff.List(ctx, root.Root(), rec.Destination, opts)
	} else {
		d, err = diff.ListEntries(ctx, root.Root(), names, opts)
	}
	if err != nil {
		root.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		m.skip(rec, "not examined: %v", err)
		return nil
	}
	m.add(rec, root, d, kind)
	return nil
}

// add keeps the entries d found in the mount rec, read through root: a
// bind-mounted file's one entry is renamed to the destination; the others
// are named in the container already.
func (m *Mounts) add(rec *forensic.Mount, root *mountutil.Detached, d *diff.Diff, kind forensic.Kind) {
	rec.Examined, rec.Entries = true, len(d.Changes)
	for _, n := range d.Notes {
		m.Notes = append(m.Notes, fmt.Sprintf("%s %s: %s", rec.Kind, forensic.EscapePath(rec.Destination), n))
	}
	ex := &examinedMount{record: len(m.Records), root: root, changes: make([]forensic.Change, len(d.Changes))}
	m.examined = append(m.examined, ex)
	for i, c := range d.Changes {
		rel := c
		if rec.Kind == forensic.SourceBind {
			c.Path = rec.Destination
		} else {
			rel.Path, rel.HardLinkTo = below(rec.Destination, c.Path), below(rec.Destination, c.HardLinkTo)
		}
		ex.changes[i] = rel
		c.Kind, c.Source, c.Mount = kind, rec.Kind, rec.Destination
		m.Changes = append(m.Changes, c)
	}
}

// below returns p, a path below dir, relative to dir (still absolute), or
// "" for "".
func below(dir, p string) string {
	if p == "" || dir == "/" {
		return p
	}
	return strings.TrimPrefix(p, dir)
}

// Close releases the read-only clones.
func (m *Mounts) Close() {
	for _, ex := range m.examined {
		ex.root.Close()
	}
	m.examined = nil
}

// MountArchivesOptions tune WriteArchives.
type MountArchivesOptions struct {
	// Volumes archives the content of volumes too; it is left out by default
	// (a volume may be a database of any size), its entries still listed.
	Volumes bool
	// MaxBytes is the size above which a file's content is left out.
	MaxBytes int64
}

// WriteArchives writes the content of every examined mount as a plain tar
// (entries relative to the mount's destination) through put, which names
// each archive after the mount's index and kind (see bundle.MountArchive),
// and sets each record's Archive. put is given each archive's size, planned
// before any content is read (see changetar.Archive). It returns notes on
// what was left out.
func (m *Mounts) WriteArchives(ctx context.Context, name func(index int, kind forensic.Source) string,
	put func(name string, size int64, write func(io.Writer) error) error, opts MountArchivesOptions) ([]string, error) {
	var notes []string
	for _, ex := range m.examined {
		rec := &m.Records[ex.record]
		if rec.Kind == forensic.SourceVolume && !opts.Volumes {
			notes = append(notes, fmt.Sprintf("volume %s: %d entries listed with their digests; their content is not in the bag (volumes are archived only on request)", forensic.EscapePath(rec.Destination), rec.Entries))
			continue
		}
		a, err := changetar.Plan(ctx, ex.root.Root(), ex.changes, changetar.Plain, changetar.Options{MaxBytes: opts.MaxBytes})
		if err != nil {
			return nil, fmt.Errorf("archive %s %s: %w", rec.Kind, forensic.EscapePath(rec.Destination), err)
		}
		rec.Archive = name(ex.record, rec.Kind)
		err = put(rec.Archive, a.Size(), func(w io.Writer) error {
			st, err := a.WriteTo(ctx, w)
			if err == nil {
				for _, n := range st.Notes {
					notes = append(notes, fmt.Sprintf("%s %s: %s", rec.Kind, forensic.EscapePath(rec.Destination), n))
				}
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("archive %s %s: %w", rec.Kind, forensic.EscapePath(rec.Destination), err)
		}
	}
	return notes, nil
}

// runtimeDevices are the entries runc creates in a container's /dev tmpfs:
// a char device's numbers, or a symlink's target. An entry that differs in
// type or target is the container's own and stays in the table.
var runtimeDevices = map[string]struct {
	major, minor uint32
	target       string
}{
	"/dev/null": {1, 3, ""}, "/dev/zero": {1, 5, ""}, "/dev/full": {1, 7, ""},
	"/dev/random": {1, 8, ""}, "/dev/urandom": {1, 9, ""}, "/dev/tty": {5, 0, ""},
	"/dev/fd": {0, 0, "/proc/self/fd"}, "/dev/stdin": {0, 0, "/proc/self/fd/0"},
	"/dev/stdout": {0, 0, "/proc/self/fd/1"}, "/dev/stderr": {0, 0, "/proc/self/fd/2"},
	"/dev/ptmx": {0, 0, "pts/ptmx"}, "/dev/core": {0, 0, "/proc/kcore"},
}

// markRuntimeDevices marks the entries runc creates in a /dev tmpfs as the
// runtime's.
func markRuntimeDevices(changes []forensic.Change) {
	for i := range changes {
		c := &changes[i]
		want, ok := runtimeDevices[c.Path]
		if !ok || c.Source != forensic.SourceTmpfs || c.Mount != "/dev" {
			continue
		}
		switch c.Meta.Type {
		case forensic.TypeChar:
			c.Runtime = want.target == "" && c.Meta.DevMajor == want.major && c.Meta.DevMinor == want.minor
		case forensic.TypeSymlink:
			c.Runtime = want.target != "" && c.Meta.LinkTarget == want.target
		}
	}
}

// unchangedSinceBirth is how long after its birth a file's inode may last
// have changed and still count as written once, as the runtime writes a
// file it bind-mounts (created, then its content written at once).
const unchangedSinceBirth = 50 * time.Millisecond

// markRuntimeFiles decides which bind-mounted files are the runtime's as it
// wrote them: those whose inode (ctime, which no one can set back) last
// changed before the task's first process started (taskStart; zero when
// unknown), or within unchangedSinceBirth of the file's birth, as the runtime
// writes a file it bind-mounts (created, then its content written at once).
// They are left out of the table like the other paths the runtime made; a
// file changed later, by the container or on the host, stays in it, and so
// does every file whose file system records no birth time when the start is
// unknown.
func markRuntimeFiles(changes []forensic.Change, taskStart time.Time) {
	for i := range changes {
		c := &changes[i]
		if c.Source != forensic.SourceBind {
			continue
		}
		beforeStart := !taskStart.IsZero() && c.Meta.Ctime.Before(taskStart)
		c.Runtime = beforeStart || c.Meta.Btime != nil && c.Meta.Ctime.Sub(*c.Meta.Btime) < unchangedSinceBirth
	}
}

// taskStart is when ctr's task's first process started, or the zero time
// when there is no task or it cannot be read.
func taskStart(ctr *Container) time.Time {
	if ctr.Pid == 0 {
		return time.Time{}
	}
	t, err := processStart(int(ctr.Pid))
	if err != nil {
		return time.Time{}
	}
	return t
}
