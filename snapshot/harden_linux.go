package snapshot

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// processStart reads when pid started: /proc/PID/stat gives it in clock
// ticks (10 ms) after boot, and CLOCK_BOOTTIME how long ago the boot was, to
// the nanosecond. The result is at most one tick before the true start, never
// after it.
func processStart(pid int) (time.Time, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return time.Time{}, fmt.Errorf("read process %d: %w", pid, err)
	}
	// Fields after the command name (which may hold spaces and parentheses).
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) < 20 {
		return time.Time{}, fmt.Errorf("process %d: short stat", pid)
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64) // field 22: starttime
	if err != nil {
		return time.Time{}, fmt.Errorf("process %d: starttime: %w", pid, err)
	}
	var boot unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot); err != nil {
		return time.Time{}, fmt.Errorf("time since boot: %w", err)
	}
	const hz = 100 // USER_HZ, fixed at 100 on every Linux architecture Go supports
	sinceBoot := time.Duration(boot.Nano())
	return time.Now().Add(-sinceBoot + time.Duration(ticks)*time.Second/hz).UTC(), nil
}
