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

// processStart reads when pid started, from /proc/PID/stat (clock ticks
// after boot) and the boot time in /proc/stat.
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
	var info unix.Sysinfo_t
	if err := unix.Sysinfo(&info); err != nil {
		return time.Time{}, fmt.Errorf("uptime: %w", err)
	}
	const hz = 100 // USER_HZ, fixed at 100 on every Linux architecture Go supports
	uptime := time.Duration(info.Uptime) * time.Second
	return time.Now().Add(-uptime + time.Duration(ticks)*time.Second/hz).UTC(), nil
}
