//go:build !linux

package procfs

import (
	"context"
	"errors"
	"os"

	"github.com/ctrforensics/ctrforensics/forensic"
)

// ReadProcesses reads /proc, which needs Linux.
func ReadProcesses(ctx context.Context, procRoot string, pids []int, maxHashBytes int64) ([]Process, error) {
	return nil, errors.ErrUnsupported
}

// ReadHost reads the host's identity; outside Linux only its name is known.
func ReadHost() forensic.Host {
	var h forensic.Host
	h.Hostname, _ = os.Hostname()
	return h
}
