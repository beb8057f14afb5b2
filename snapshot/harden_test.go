package snapshot

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestHardenEvidence checks what harden says about how long a container ran:
// read from a disk root, its age is unknown and said so (not "no running
// process"); stopped, it has none; running briefly, a short run is warned of.
func TestHardenEvidence(t *testing.T) {
	tests := []struct {
		name    string
		ctr     Container
		want    string
		started bool
	}{
		{"disk root", Container{Status: TaskOffline}, "read from a disk root: whether the container was running, and for how long, is unknown", false},
		{"stopped", Container{Status: TaskStopped}, "has no running process (task stopped)", false},
		{"running just now", Container{Status: TaskRunning, Pid: uint32(os.Getpid())}, "has run for only", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.started && runtime.GOOS != "linux" {
				t.Skip("a process's start time is read from /proc")
			}
			var r HardenResult
			r.evidence(&tt.ctr, time.Now())
			if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], tt.want) {
				t.Errorf("warnings %q, want one with %q", r.Warnings, tt.want)
			}
			if r.Started.IsZero() == tt.started {
				t.Errorf("started %v, want set: %v", r.Started, tt.started)
			}
		})
	}
}
