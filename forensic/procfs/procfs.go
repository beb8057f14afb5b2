// Package procfs reads what the host's /proc says about the processes of a
// container, and the host's identity, without entering the container or
// signalling a process. Executables are hashed through /proc/PID/exe with
// O_NOATIME, within a size limit. The types are portable; reading needs Linux.
package procfs

import "github.com/opencontainers/go-digest"

// Process is what the host's /proc says about one process of a container,
// read without entering the container or signalling the process.
type Process struct {
	Pid  int      `json:"pid"`
	PPid int      `json:"ppid"`
	UIDs []string `json:"uids,omitempty"`
	GIDs []string `json:"gids,omitempty"`
	// Cmdline holds the arguments, which may be any bytes (escaped as forensic.EscapePath does).
	Cmdline []string `json:"cmdline"`
	// Exe is the executable's path as the kernel reports it (" (deleted)" when
	// the file was removed); ExeDigest is the sha256 of its content, read through
	// /proc even when deleted.
	Exe       string        `json:"exe"`
	ExeDigest digest.Digest `json:"exe_digest,omitempty"`
	Cwd       string        `json:"cwd"`
	Root      string        `json:"root"`
	Environ   []string      `json:"environ"`
	OpenFiles []OpenFile    `json:"open_files"`
	// Errors name what could not be read (the process may have exited).
	Errors []string `json:"errors,omitempty"`
}

// OpenFile is one file descriptor of a process.
type OpenFile struct {
	FD     int     `json:"fd"`
	Target string  `json:"target"`
	Socket *Socket `json:"socket,omitempty"`
}

// Socket describes a socket from the process's network namespace tables.
type Socket struct {
	Proto  string `json:"proto"`
	Local  string `json:"local,omitempty"`
	Remote string `json:"remote,omitempty"`
	State  string `json:"state,omitempty"`
	Path   string `json:"path,omitempty"`
}
