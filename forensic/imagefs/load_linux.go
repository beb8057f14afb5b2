package imagefs

import "os"

// loadAverage is the host's one-minute load average, from /proc/loadavg.
func loadAverage() (float64, bool) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	return parseLoadAverage(b)
}
