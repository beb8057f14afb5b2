package procfs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/internal/fsread"
	"github.com/ctrforensics/ctrforensics/internal/fdio"
)

// ReadProcesses reads the processes pids from procRoot (normally /proc),
// sorted by pid. An executable larger than maxHashBytes (0: the default of
// package diff) is not hashed, and says so in the process's errors. A process
// that exits meanwhile keeps what was read, with the errors noted.
func ReadProcesses(ctx context.Context, procRoot string, pids []int, maxHashBytes int64) ([]Process, error) {
	sort.Ints(pids)
	h := fsread.NewHasher(maxHashBytes)
	out := make([]Process, 0, len(pids))
	for _, pid := range pids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out = append(out, readProcess(ctx, filepath.Join(procRoot, strconv.Itoa(pid)), pid, h))
	}
	return out, nil
}

func readProcess(ctx context.Context, dir string, pid int, h *fsread.Hasher) Process {
	p := Process{Pid: pid}
	fail := func(what string, err error) { p.Errors = append(p.Errors, what+": "+err.Error()) }
	if b, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
		p.PPid, p.UIDs, p.GIDs = parseStatus(b)
	} else {
		fail("status", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		p.Cmdline = splitNul(b)
	} else {
		fail("cmdline", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "environ")); err == nil {
		p.Environ = splitNul(b)
	} else {
		fail("environ", err)
	}
	for name, dst := range map[string]*string{"exe": &p.Exe, "cwd": &p.Cwd, "root": &p.Root} {
		if t, err := os.Readlink(filepath.Join(dir, name)); err == nil {
			*dst = forensic.EscapePath(t)
		} else {
			fail(name, err)
		}
	}
	if d, err := exeDigest(ctx, dir, h); err == nil {
		p.ExeDigest = d
	} else {
		fail("exe content", err)
	}
	socks := readSockets(dir)
	fds, err := readFDs(dir, socks)
	if err != nil {
		fail("fd", err)
	}
	p.OpenFiles = fds
	return p
}

// exeDigest hashes the executable through /proc/PID/exe, which reaches the
// file even when it was deleted, opened with O_NOATIME.
func exeDigest(ctx context.Context, dir string, h *fsread.Hasher) (digest.Digest, error) {
	fd, err := fdio.OpenNoatime(unix.AT_FDCWD, filepath.Join(dir, "exe"), unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	d, why, err := h.HashFD(ctx, fd)
	if err != nil {
		return "", err
	}
	if why != nil {
		return "", errors.New(why.String())
	}
	return d, nil
}

func parseStatus(b []byte) (ppid int, uids, gids []string) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		switch k {
		case "PPid":
			ppid, _ = strconv.Atoi(strings.TrimSpace(v))
		case "Uid":
			uids = strings.Fields(v)
		case "Gid":
			gids = strings.Fields(v)
		}
	}
	return ppid, uids, gids
}

func splitNul(b []byte) []string {
	b = bytes.TrimSuffix(b, []byte{0})
	if len(b) == 0 {
		return []string{}
	}
	parts := bytes.Split(b, []byte{0})
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = forensic.EscapePath(string(p))
	}
	return out
}

func readFDs(dir string, socks map[string]Socket) ([]OpenFile, error) {
	entries, err := os.ReadDir(filepath.Join(dir, "fd"))
	if err != nil {
		return []OpenFile{}, err
	}
	out := make([]OpenFile, 0, len(entries))
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink(filepath.Join(dir, "fd", e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		of := OpenFile{FD: fd, Target: forensic.EscapePath(target)}
		if inode, ok := strings.CutPrefix(target, "socket:["); ok {
			if s, found := socks[strings.TrimSuffix(inode, "]")]; found {
				of.Socket = &s
			}
		}
		out = append(out, of)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FD < out[j].FD })
	return out, nil
}

// readSockets maps socket inodes to their entries in the process's network
// namespace tables.
func readSockets(dir string) map[string]Socket {
	socks := map[string]Socket{}
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
		b, err := os.ReadFile(filepath.Join(dir, "net", proto))
		if err != nil {
			continue
		}
		lines := strings.Split(string(b), "\n")
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) < 10 {
				continue
			}
			socks[f[9]] = Socket{Proto: proto, Local: hexAddr(f[1]), Remote: hexAddr(f[2]), State: tcpState(proto, f[3])}
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "net", "unix")); err == nil {
		for _, l := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(l)
			if len(f) < 7 {
				continue
			}
			s := Socket{Proto: "unix"}
			if len(f) > 7 {
				s.Path = forensic.EscapePath(f[7])
			}
			socks[f[6]] = s
		}
	}
	return socks
}

// hexAddr decodes a /proc/net address "0100007F:1F90" to "127.0.0.1:8080".
func hexAddr(s string) string {
	host, port, ok := strings.Cut(s, ":")
	if !ok {
		return s
	}
	p, _ := strconv.ParseUint(port, 16, 16)
	raw := make([]byte, len(host)/2)
	for i := range raw {
		v, _ := strconv.ParseUint(host[2*i:2*i+2], 16, 8)
		raw[i] = byte(v)
	}
	// The kernel prints each 32-bit word in host (little-endian) order.
	for i := 0; i+4 <= len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	if len(raw) == 4 {
		return fmt.Sprintf("%d.%d.%d.%d:%d", raw[0], raw[1], raw[2], raw[3], p)
	}
	return fmt.Sprintf("[%x]:%d", raw, p)
}

func tcpState(proto, code string) string {
	if !strings.HasPrefix(proto, "tcp") {
		return ""
	}
	states := map[string]string{"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
		"05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}
	if s, ok := states[code]; ok {
		return s
	}
	return code
}

// ReadHost reads the host's identity; what cannot be read is left empty.
func ReadHost() forensic.Host {
	var h forensic.Host
	h.Hostname, _ = os.Hostname()
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		h.Kernel = unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Version[:])
		h.Machine = unix.ByteSliceToString(u.Machine[:])
	}
	read := func(p string) string {
		b, _ := os.ReadFile(p)
		return strings.TrimSpace(string(b))
	}
	h.MachineID = read("/etc/machine-id")
	h.BootID = read("/proc/sys/kernel/random/boot_id")
	return h
}
