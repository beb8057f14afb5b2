// Package testdaemon runs a private containerd daemon for integration
// tests and the demo.
//
// The daemon gets its own root, state, temp and opt directories, gRPC and
// ttrpc sockets, config file and log file, all under one directory, so it
// can coexist with a containerd the host already runs at /run/containerd.
// Stop tears everything down again: tasks, containers, shims, mounts and
// the directory.
//
// StartWith can enable containerd's CRI plugin (Options.CRI) for tests that
// create Kubernetes pods; the default daemon runs without it, which starts
// faster. CRI pods live in containerd's namespace k8s.io (CRINamespace).
//
// Some runtime state is host-global by design of containerd and runc: shim
// sockets (/run/containerd/s/<hash>), runc state (/run/containerd/runc/<ns>)
// and cgroups (/<ns>/<container id>). To keep those apart from the host's
// and from other test daemons running in parallel, every Daemon has its own
// randomly named Namespace; clients from Daemon.Client use it by default.
package testdaemon

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"golang.org/x/sys/unix"
)

// Timeouts used by Start and Stop.
const (
	startTimeout     = 20 * time.Second
	apiCleanupBudget = 60 * time.Second
	perTaskTimeout   = 15 * time.Second
	termGrace        = 10 * time.Second
	// cgroupSettle bounds the wait for a killed container's cgroup to empty.
	cgroupSettle = 5 * time.Second
	// maxSocketPath is the usable length of sockaddr_un.sun_path.
	maxSocketPath = 107
)

// DefaultParentDir is where Start creates the daemon directory when the
// caller passes "" and DirEnv is unset. It must be a real (e.g. ext4)
// filesystem: overlayfs cannot use an overlay as upper layer, and forensics
// tests need inode semantics that tmpfs does not share with real disks.
const DefaultParentDir = "/var/tmp"

// Environment variables that choose what Start runs and where.
const (
	// ContainerdEnv names the containerd binary to run (default: the
	// first containerd on PATH). Its directory is searched first for the
	// shim, so a containerd built elsewhere runs with its own shim.
	ContainerdEnv = "CTRFORENSICS_TEST_CONTAINERD"
	// DirEnv names the directory under which Start creates daemon
	// directories (default DefaultParentDir).
	DirEnv = "CTRFORENSICS_TEST_DIR"
)

// parentDir is DirEnv, or DefaultParentDir.
func parentDir() string {
	if dir := os.Getenv(DirEnv); dir != "" {
		return dir
	}
	return DefaultParentDir
}

// containerdBinary is ContainerdEnv, or containerd found on PATH.
func containerdBinary() (string, error) {
	if bin := os.Getenv(ContainerdEnv); bin != "" {
		if _, err := exec.LookPath(bin); err != nil {
			return "", fmt.Errorf("%s=%s: %w", ContainerdEnv, bin, err)
		}
		return filepath.Abs(bin)
	}
	bin, err := exec.LookPath("containerd")
	if err != nil {
		return "", fmt.Errorf("find containerd binary (install containerd or set %s): %w", ContainerdEnv, err)
	}
	return bin, nil
}

// Daemon is a running private containerd.
type Daemon struct {
	// Dir is the directory that holds everything below.
	Dir string
	// Root is containerd's persistent root (content store, snapshots,
	// metadata).
	Root string
	// State is containerd's state directory (task bundles, rootfs mounts).
	State string
	// Address is the path of the gRPC socket.
	Address string
	// TTRPCAddress is the path of the ttrpc socket.
	TTRPCAddress string
	// ConfigPath is the path of the generated config.toml.
	ConfigPath string
	// LogPath is the daemon's log file (stdout and stderr).
	LogPath string
	// Namespace is a containerd namespace unique to this daemon; clients
	// returned by Client use it by default.
	Namespace string

	cmd    *exec.Cmd
	exited chan struct{} // closed once the daemon process has been reaped
	waitMu sync.Mutex
	// waitErr is the result of cmd.Wait, valid after exited is closed.
	waitErr error

	// cri is set when the CRI plugin is enabled.
	cri bool

	stopMu  sync.Mutex
	stopped bool
}

// Options choose what StartWith enables beyond the default daemon.
type Options struct {
	// CRI enables containerd's CRI plugin with the configuration of the
	// running containerd's major version, the locally built pause image
	// (testimage.PauseImageName) as sandbox image, imported into
	// CRINamespace before StartWith returns, no CNI (pods must use the
	// node's network) and the OOM score restriction runc needs when
	// containerd cannot lower scores. Every pod must use the cgroup parent
	// CgroupParent, so that Stop can remove the pods' cgroups.
	CRI bool
}

// Start starts containerd with its own root, state, sockets, config and
// log under dir (a new directory under $CTRFORENSICS_TEST_DIR, or
// DefaultParentDir, if dir is ""),
// with the CRI plugin disabled and no debug or metrics listeners. It waits
// up to 20s until the daemon answers a Version request; on failure it
// cleans up and returns an error that includes the tail of the log.
//
// ctx bounds only the start-up wait: the daemon keeps running until Stop.
func Start(ctx context.Context, dir string) (*Daemon, error) {
	return StartWith(ctx, dir, Options{})
}

// StartWith is Start with opts.
func StartWith(ctx context.Context, dir string, opts Options) (*Daemon, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("testdaemon: containerd must run as root")
	}
	var err error
	created := dir == ""
	if created {
		if err = os.MkdirAll(parentDir(), 0o711); err == nil {
			dir, err = os.MkdirTemp(parentDir(), dirPrefix)
		}
	} else {
		err = os.MkdirAll(dir, 0o711)
	}
	if err != nil {
		return nil, fmt.Errorf("create daemon dir: %w", err)
	}
	d, err := newDaemon(dir)
	if err != nil {
		if created {
			_ = os.Remove(dir)
		}
		return nil, err
	}
	d.cri = opts.CRI
	if err := d.start(ctx); err != nil {
		tail := d.LogTail(40)
		stopErr := d.Stop(context.WithoutCancel(ctx))
		return nil, errors.Join(fmt.Errorf("start containerd in %s: %w\n--- containerd.log (tail) ---\n%s", d.Dir, err, tail), stopErr)
	}
	return d, nil
}

// newDaemon validates dir and fills in the paths of a daemon living there.
func newDaemon(dir string) (*Daemon, error) {
	dir, err := filepath.Abs(dir)
	if err == nil {
		dir, err = filepath.EvalSymlinks(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("resolve daemon dir: %w", err)
	}
	if err := checkFilesystem(dir); err != nil {
		return nil, err
	}
	if mounts, err := Mounts(dir); err != nil {
		return nil, err
	} else if len(mounts) > 0 {
		return nil, fmt.Errorf("daemon dir %s has stale mounts (%s ...); stop the previous daemon or unmount them", dir, mounts[0])
	}
	ns, err := randomHex(4)
	if err != nil {
		return nil, err
	}

	d := &Daemon{
		Dir:          dir,
		Root:         filepath.Join(dir, "root"),
		State:        filepath.Join(dir, "state"),
		Address:      filepath.Join(dir, "containerd.sock"),
		TTRPCAddress: filepath.Join(dir, "containerd.sock.ttrpc"),
		ConfigPath:   filepath.Join(dir, "config.toml"),
		LogPath:      filepath.Join(dir, "containerd.log"),
		Namespace:    "ctrf-" + ns,
		exited:       make(chan struct{}),
	}
	if len(d.TTRPCAddress) > maxSocketPath {
		return nil, fmt.Errorf("daemon dir %s is too long for a unix socket path (%d > %d bytes)", dir, len(d.TTRPCAddress), maxSocketPath)
	}
	return d, nil
}

// start writes the configuration, launches containerd and waits for it.
func (d *Daemon) start(ctx context.Context) error {
	for _, p := range []string{d.Root, d.State, d.tempDir(), d.optDir()} {
		if err := os.MkdirAll(p, 0o711); err != nil {
			return fmt.Errorf("create %s: %w", p, err)
		}
	}
	bin, err := containerdBinary()
	if err != nil {
		return err
	}
	config := d.config()
	if d.cri {
		if config, err = d.criConfig(ctx, bin); err != nil {
			return err
		}
	}
	if err := os.WriteFile(d.ConfigPath, []byte(config), 0o644); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	logFile, err := os.OpenFile(d.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	// A file (not a pipe) for stdout/stderr: shims inherit the daemon's
	// stdio, and a pipe would keep cmd.Wait (and go test) waiting for them.
	cmd := exec.Command(bin, "--config", d.ConfigPath)
	cmd.Dir = d.Dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "PATH="+searchPath(filepath.Dir(bin)))
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,            // keep terminal signals away from the daemon
		Pdeathsig: syscall.SIGTERM, // shut down if the test binary dies
	}
	err = cmd.Start()
	logFile.Close() // the child has its own descriptor
	if err != nil {
		return fmt.Errorf("exec %s: %w", bin, err)
	}
	d.cmd = cmd
	go func() {
		err := cmd.Wait()
		d.waitMu.Lock()
		d.waitErr = err
		d.waitMu.Unlock()
		close(d.exited)
	}()

	deadline := time.Now().Add(startTimeout)
	for {
		pingErr := d.ping(ctx)
		if pingErr == nil {
			if d.cri {
				return d.prepareCRI(ctx)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("daemon did not answer within %s: %w", startTimeout, pingErr)
		}
		select {
		case <-d.exited:
			d.waitMu.Lock()
			defer d.waitMu.Unlock()
			return fmt.Errorf("daemon exited during start-up: %v", d.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("waiting for daemon: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ping checks that the daemon answers a Version request.
func (d *Daemon) ping(ctx context.Context) error {
	if _, err := os.Stat(d.Address); err != nil {
		return fmt.Errorf("socket not ready: %w", err)
	}
	c, err := d.Client(client.WithTimeout(time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := c.Version(ctx); err != nil {
		return fmt.Errorf("version: %w", err)
	}
	return nil
}

// config renders the containerd (config version 2) configuration.
func (d *Daemon) config() string {
	return d.configText("", 2, []string{"io.containerd.grpc.v1.cri"}, "")
}

// configText renders a configuration of the given config version: the
// plugins disabled (with the snapshotters no test uses), the daemon's own
// directories and sockets, then plugins, the sections below [plugins].
func (d *Daemon) configText(what string, version int, disabled []string, plugins string) string {
	q := strconv.Quote
	var list strings.Builder
	for _, p := range append(disabled, "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
		"io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs") {
		list.WriteString("  " + q(p) + ",\n")
	}
	return `# generated by ctrforensics internal/testdaemon` + what + `
version = ` + strconv.Itoa(version) + `
root = ` + q(d.Root) + `
state = ` + q(d.State) + `
temp = ` + q(d.tempDir()) + `
oom_score = 0
disabled_plugins = [
` + list.String() + `]

[grpc]
  address = ` + q(d.Address) + `

[ttrpc]
  address = ` + q(d.TTRPCAddress) + `

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = ` + q(d.optDir()) + `
` + plugins
}

func (d *Daemon) tempDir() string { return filepath.Join(d.Dir, "tmp") }
func (d *Daemon) optDir() string  { return filepath.Join(d.Dir, "opt") }

// Client returns a new client connected to the daemon whose default
// namespace is d.Namespace. The caller must Close it.
func (d *Daemon) Client(opts ...client.Opt) (*client.Client, error) {
	opts = append([]client.Opt{client.WithDefaultNamespace(d.Namespace)}, opts...)
	c, err := client.New(d.Address, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", d.Address, err)
	}
	return c, nil
}

// Context returns ctx with d.Namespace set as containerd namespace.
func (d *Daemon) Context(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, d.Namespace)
}

// Pid returns the daemon's process id, or 0 if it was never started.
func (d *Daemon) Pid() int {
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// LogTail returns up to n last lines of the daemon log.
func (d *Daemon) LogTail(n int) string {
	data, err := os.ReadFile(d.LogPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", d.LogPath, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Stop tears the daemon down: it kills every task (SIGKILL) and deletes
// every container with its snapshot in every namespace, stops the daemon,
// kills the shims serving this daemon's socket (and their children),
// unmounts every mount under Dir (deepest first, lazily if needed) and
// removes Dir (unless a mount could not be removed). Outside Dir it only
// removes state keyed to this daemon: killed shims' sockets and the runc
// state and cgroups of d.Namespace. It never signals processes that do not
// belong to this daemon, is safe to call more than once, and works even
// when ctx is already cancelled (as t.Context() is during cleanup).
func (d *Daemon) Stop(ctx context.Context) error {
	d.stopMu.Lock()
	defer d.stopMu.Unlock()
	if d.stopped || d.Dir == "" {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	var errs []error

	var containers []nsID
	if d.running() && d.cri {
		pods, err := d.removePods(ctx)
		containers = append(containers, pods...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if d.running() {
		seen, err := d.cleanupViaAPI(ctx)
		containers = append(containers, seen...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := d.stopProcess(); err != nil {
		errs = append(errs, err)
	}
	killed, err := d.killShims()
	if err != nil {
		errs = append(errs, err)
	}
	d.removeHostState(append(containers, killed...))
	if err := UnmountAll(d.Dir); err != nil {
		errs = append(errs, err)
		// Never RemoveAll through a mount that is still there.
		return errors.Join(errs...)
	}
	if err := os.RemoveAll(d.Dir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", d.Dir, err))
	}
	d.stopped = len(errs) == 0
	if len(errs) > 0 {
		return fmt.Errorf("stop containerd in %s: %w", d.Dir, errors.Join(errs...))
	}
	return nil
}

// running reports whether the daemon process is alive.
func (d *Daemon) running() bool {
	if d.cmd == nil {
		return false
	}
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// nsID identifies a container.
type nsID struct{ ns, id string }

// cleanupViaAPI kills and deletes all tasks and containers (with their
// snapshots) in every namespace. It returns the containers it saw.
func (d *Daemon) cleanupViaAPI(ctx context.Context) ([]nsID, error) {
	ctx, cancel := context.WithTimeout(ctx, apiCleanupBudget)
	defer cancel()
	c, err := d.Client(client.WithTimeout(2 * time.Second))
	if err != nil {
		return nil, fmt.Errorf("cleanup: %w", err)
	}
	defer c.Close()
	nss, err := c.NamespaceService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	var seen []nsID
	var errs []error
	for _, ns := range nss {
		nctx := namespaces.WithNamespace(ctx, ns)
		ctrs, err := c.Containers(nctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("list containers in %s: %w", ns, err))
			continue
		}
		for _, ctr := range ctrs {
			seen = append(seen, nsID{ns, ctr.ID()})
			if err := removeContainer(nctx, ctr); err != nil {
				errs = append(errs, fmt.Errorf("namespace %s: %w", ns, err))
			}
		}
	}
	return seen, errors.Join(errs...)
}

// stopProcess terminates the daemon (SIGTERM, then SIGKILL) and reaps it.
func (d *Daemon) stopProcess() error {
	if !d.running() {
		return nil
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		return nil
	case <-time.After(termGrace):
	}
	if err := d.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill containerd: %w", err)
	}
	select {
	case <-d.exited:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("containerd (pid %d) did not exit after SIGKILL", d.cmd.Process.Pid)
	}
}

// ShimPIDs returns the pids of the containerd shims serving this daemon,
// i.e. containerd-shim* processes whose -address flag is d.Address.
func (d *Daemon) ShimPIDs() ([]int, error) {
	procs, err := listProcs()
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, p := range procs {
		if isShimFor(p.cmdline, d.Address) {
			pids = append(pids, p.pid)
		}
	}
	sort.Ints(pids)
	return pids, nil
}

// killShims SIGKILLs this daemon's shims and all their descendants (the
// container processes), then waits for them to disappear. It returns the
// namespace and id of every shim it killed.
func (d *Daemon) killShims() ([]nsID, error) {
	procs, err := listProcs()
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	var shims []int
	var killed []nsID
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p.pid)
		if isShimFor(p.cmdline, d.Address) {
			shims = append(shims, p.pid)
			ns, _ := flagValue(p.cmdline, "namespace")
			id, _ := flagValue(p.cmdline, "id")
			if ns != "" && id != "" {
				killed = append(killed, nsID{ns, id})
			}
		}
	}
	if len(shims) == 0 {
		return nil, nil
	}
	// Descendants first (containers' init processes take their pid
	// namespaces down with them), then the shims.
	var victims []int
	var walk func(pid int)
	walk = func(pid int) {
		for _, c := range children[pid] {
			walk(c)
			victims = append(victims, c)
		}
	}
	for _, s := range shims {
		walk(s)
	}
	victims = append(victims, shims...)
	for _, pid := range victims {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var alive []int
		for _, pid := range victims {
			if processAlive(pid) {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 {
			return killed, nil
		}
		if time.Now().After(deadline) {
			return killed, fmt.Errorf("processes %v still alive after SIGKILL", alive)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// removeHostState removes host-global leftovers that belong exclusively
// to this daemon: sockets of shims that were killed rather than shut down
// (their names hash this daemon's address), runc's state directory for
// d.Namespace, runc's state of this daemon's containers in other namespaces
// (CRI's k8s.io) and the (process-free) cgroups of d.Namespace, which are
// also the CRI pods' cgroup parent. d.Namespace
// is random and used by no one else, so nothing shared is touched.
func (d *Daemon) removeHostState(containers []nsID) {
	shared := map[string]bool{}
	for _, c := range containers {
		_ = os.Remove(shimSocketPath(d.Address, c.ns, c.id))
		if c.ns != d.Namespace && c.ns != "" && c.id != "" {
			// A shared namespace (k8s.io): only this daemon's containers.
			_ = os.RemoveAll(filepath.Join("/run/containerd/runc", c.ns, c.id))
			shared[c.ns] = true
		}
	}
	for ns := range shared {
		_ = os.Remove(filepath.Join("/run/containerd/runc", ns)) // only when empty
	}
	if d.Namespace == "" {
		return
	}
	_ = os.RemoveAll(filepath.Join("/run/containerd/runc", d.Namespace))
	roots, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", d.Namespace))
	roots = append(roots, filepath.Join("/sys/fs/cgroup", d.Namespace))
	for _, root := range roots {
		removeCgroupTree(root)
	}
}

// removeCgroupTree rmdirs a cgroup and its descendants, deepest first.
// A cgroup whose last process was just killed stays busy (EBUSY) until the
// kernel has reaped it, which takes a moment on a loaded machine: rmdir is
// retried for up to cgroupSettle. Cgroups that still hold processes then stay.
func removeCgroupTree(root string) {
	var dirs []string
	_ = filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	deadline := time.Now().Add(cgroupSettle)
	for i := len(dirs) - 1; i >= 0; i-- {
		for unix.Rmdir(dirs[i]) == unix.EBUSY && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// proc is one entry of /proc.
type proc struct {
	pid, ppid int
	cmdline   []string
}

// listProcs reads pid, ppid and argv of every process.
func listProcs() ([]proc, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	var procs []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		ppid, state, ok := parseStat(stat)
		if !ok || state == 'Z' {
			continue
		}
		raw, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		procs = append(procs, proc{pid: pid, ppid: ppid, cmdline: splitCmdline(raw)})
	}
	return procs, nil
}

// parseStat extracts the state and parent pid from /proc/<pid>/stat.
func parseStat(stat []byte) (ppid int, state byte, ok bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, false
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 2 || len(fields[0]) != 1 {
		return 0, 0, false
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return 0, 0, false
	}
	return ppid, fields[0][0], true
}

func splitCmdline(raw []byte) []string {
	raw = bytes.TrimRight(raw, "\x00")
	if len(raw) == 0 {
		return nil
	}
	return strings.Split(string(raw), "\x00")
}

// isShimFor reports whether argv is a containerd shim connected to the
// daemon at address (flag -address, --address or -a, with or without =).
func isShimFor(argv []string, address string) bool {
	if len(argv) == 0 || !strings.HasPrefix(filepath.Base(argv[0]), "containerd-shim") {
		return false
	}
	v, ok := flagValue(argv, "address", "a")
	return ok && strings.TrimPrefix(v, "unix://") == address
}

// flagValue returns the value of the first of the named Go-style flags
// (-name value, --name value, -name=value) in argv[1:]. Like the flag
// package, it stops at the first non-flag argument or "--"; the shims'
// boolean flags (-debug, -v) take no value.
func flagValue(argv []string, names ...string) (string, bool) {
	boolFlags := map[string]bool{"debug": true, "v": true, "version": true, "h": true, "help": true}
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		if a == "--" || !strings.HasPrefix(a, "-") {
			return "", false
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		for _, n := range names {
			if name != n {
				continue
			}
			if hasValue {
				return value, true
			}
			if i+1 < len(argv) {
				return argv[i+1], true
			}
			return "", false
		}
		if !hasValue && !boolFlags[name] {
			i++ // skip the flag's value
		}
	}
	return "", false
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	_, state, ok := parseStat(stat)
	return ok && state != 'Z'
}

// Mounts returns the mount points at or below dir listed in
// /proc/self/mountinfo, deepest first (one entry per stacked mount).
func Mounts(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("open mountinfo: %w", err)
	}
	defer f.Close()
	dir = filepath.Clean(dir)
	var mps []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mps = append(mps, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	sort.SliceStable(mps, func(i, j int) bool {
		di, dj := strings.Count(mps[i], "/"), strings.Count(mps[j], "/")
		if di != dj {
			return di > dj
		}
		return len(mps[i]) > len(mps[j])
	})
	return mps, nil
}

// unescapeMountinfo decodes the octal escapes (\040 etc.) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// UnmountAll unmounts every mount at or below dir, deepest first, falling
// back to a lazy (MNT_DETACH) unmount. It returns an error if any mount
// remains.
func UnmountAll(dir string) error {
	for attempt := 0; attempt < 10; attempt++ {
		mps, err := Mounts(dir)
		if err != nil {
			return err
		}
		if len(mps) == 0 {
			return nil
		}
		for _, mp := range mps {
			if err := unix.Unmount(mp, 0); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				_ = unix.Unmount(mp, unix.MNT_DETACH)
			}
		}
	}
	mps, err := Mounts(dir)
	if err != nil {
		return err
	}
	if len(mps) > 0 {
		return fmt.Errorf("mounts remain under %s: %v", dir, mps)
	}
	return nil
}

// checkFilesystem rejects directories on tmpfs or overlayfs.
func checkFilesystem(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", dir, err)
	}
	switch st.Type {
	case unix.TMPFS_MAGIC, unix.RAMFS_MAGIC:
		return fmt.Errorf("daemon dir %s is on tmpfs/ramfs; use a directory on a real filesystem such as %s", dir, DefaultParentDir)
	case unix.OVERLAYFS_SUPER_MAGIC:
		return fmt.Errorf("daemon dir %s is on overlayfs, which cannot host overlay upper dirs; use a real filesystem", dir)
	}
	return nil
}

// searchPath is binDir (containerd's own directory, where its shim is),
// then PATH, then the usual system directories, so the daemon finds its
// containerd-shim-runc-v2 and runc even under a minimal PATH.
func searchPath(binDir string) string {
	parts := append([]string{binDir}, filepath.SplitList(os.Getenv("PATH"))...)
	have := map[string]bool{}
	for _, p := range parts {
		have[p] = true
	}
	for _, p := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		if !have[p] {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, string(filepath.ListSeparator))
}

// randomHex returns 2n random hex digits.
func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// shimSocketPath returns the socket a containerd 1.6/1.7 shim creates for
// container id in namespace ns of the daemon at address (see
// runtime/v2/shim.SocketAddress: /run/containerd/s/sha256(address/ns/id)).
func shimSocketPath(address, ns, id string) string {
	sum := sha256.Sum256([]byte(filepath.Join(address, ns, id)))
	return filepath.Join("/run/containerd/s", hex.EncodeToString(sum[:]))
}
