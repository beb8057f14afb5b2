package snapshot

import (
	"context"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ctrforensics/ctrforensics/forensic"
)

// TestRuntimeMarks checks which entries outside the snapshot count as the
// runtime's (left out of the table): runc's /dev entries only with their
// usual numbers and targets, bind-mounted files only as first written.
func TestRuntimeMarks(t *testing.T) {
	born := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	dev := func(p string, typ forensic.FileType, major, minor uint32, target string) forensic.Change {
		return forensic.Change{Kind: forensic.Added, Path: p, Source: forensic.SourceTmpfs, Mount: "/dev",
			Meta: &forensic.Metadata{Type: typ, DevMajor: major, DevMinor: minor, LinkTarget: target}}
	}
	file := func(p string, ctime time.Time, btime *time.Time) forensic.Change {
		return forensic.Change{Kind: forensic.Changed, Path: p, Source: forensic.SourceBind, Mount: p,
			Meta: &forensic.Metadata{Type: forensic.TypeFile, Ctime: ctime, Btime: btime}}
	}
	start := born.Add(2 * time.Second) // the task's first process
	tests := []struct {
		name    string
		c       forensic.Change
		start   time.Time
		runtime bool
	}{
		{"null", dev("/dev/null", forensic.TypeChar, 1, 3, ""), time.Time{}, true},
		{"null with other numbers", dev("/dev/null", forensic.TypeChar, 8, 0, ""), time.Time{}, false},
		{"null replaced by a file", dev("/dev/null", forensic.TypeFile, 0, 0, ""), time.Time{}, false},
		{"fd", dev("/dev/fd", forensic.TypeSymlink, 0, 0, "/proc/self/fd"), time.Time{}, true},
		{"fd pointing elsewhere", dev("/dev/fd", forensic.TypeSymlink, 0, 0, "/"), time.Time{}, false},
		{"a file of the container's", dev("/dev/x", forensic.TypeFile, 0, 0, ""), time.Time{}, false},
		{"hosts as written", file("/etc/hosts", born.Add(time.Millisecond), &born), time.Time{}, true},
		{"hosts changed later", file("/etc/hosts", born.Add(time.Second), &born), time.Time{}, false},
		{"no birth time", file("/etc/hosts", born, nil), time.Time{}, false},
		{"written slowly before the task started", file("/etc/hosts", born.Add(time.Second), &born), start, true},
		{"no birth time, before the task started", file("/etc/hosts", born, nil), start, true},
		{"changed after the task started", file("/etc/hosts", start.Add(time.Millisecond), &born), start, false},
		{"changed as the task started", file("/etc/hosts", start, &born), start, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changes := []forensic.Change{tt.c}
			markRuntimeDevices(changes)
			markRuntimeFiles(changes, tt.start)
			if changes[0].Runtime != tt.runtime {
				t.Errorf("runtime = %v, want %v", changes[0].Runtime, tt.runtime)
			}
		})
	}
}

// TestMountsOfADiskRoot checks that the host paths of a dead host's spec
// are never read on the examiner's machine, and that this is said.
func TestMountsOfADiskRoot(t *testing.T) {
	ctr := &Container{Status: TaskUnknown, Spec: &specs.Spec{Mounts: []specs.Mount{
		{Destination: "/etc/hosts", Type: "bind", Source: "/etc/hosts", Options: []string{"rbind", "ro"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm"},
	}}}
	var s *Session // nothing is examined, so nothing is recorded
	m, err := s.ExamineMounts(context.Background(), ctr, MountsOptions{DiskRoot: "/mnt/evidence"})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Changes) != 0 || len(m.Records) != 2 || m.Records[0].Examined || m.Records[0].Writable {
		t.Fatalf("records %+v, changes %+v", m.Records, m.Changes)
	}
	want := []string{
		"bind /etc/hosts: not examined: its host source /etc/hosts is a path of the host the disk root /mnt/evidence came from, not of this one",
		"tmpfs /dev/shm: " + noTaskNote,
	}
	if len(m.Notes) != len(want) || m.Notes[0] != want[0] || m.Notes[1] != want[1] {
		t.Errorf("notes %q, want %q", m.Notes, want)
	}
}
