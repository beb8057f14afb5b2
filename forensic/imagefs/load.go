package imagefs

import (
	"bytes"
	"runtime"
	"strconv"
)

// catAhead is how many layers Cat reads at once: readAhead(), or 1 while the
// host's CPUs are all busy (a one-minute load average of at least the
// number of CPUs), where reading a layer that may not be needed would slow
// the one that is.
func catAhead() int {
	if load, ok := loadAverage(); ok && load >= float64(runtime.NumCPU()) {
		return 1
	}
	return readAhead()
}

// parseLoadAverage returns the first field of /proc/loadavg.
func parseLoadAverage(b []byte) (float64, bool) {
	f := bytes.Fields(b)
	if len(f) == 0 {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(f[0]), 64)
	return v, err == nil && v >= 0
}
