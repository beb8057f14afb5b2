//go:build !linux

package snapshot

import (
	"errors"
	"time"
)

// processStart needs Linux's /proc.
func processStart(int) (time.Time, error) {
	return time.Time{}, errors.New("process start times are read from Linux's /proc")
}
