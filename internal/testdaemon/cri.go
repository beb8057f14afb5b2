package testdaemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	"google.golang.org/grpc"

	"github.com/ctrforensics/ctrforensics/internal/testcri"
	"github.com/ctrforensics/ctrforensics/internal/testimage"
)

// CRINamespace is the containerd namespace of the CRI plugin's pods,
// containers and images (fixed by containerd).
const CRINamespace = "k8s.io"

// criReadyTimeout bounds the wait for the CRI runtime and the pause image.
const criReadyTimeout = 30 * time.Second

// CRI reports whether the daemon runs the CRI plugin.
func (d *Daemon) CRI() bool { return d.cri }

// CgroupParent is the cgroup parent every CRI pod of the daemon must use
// (cgroupfs driver): Stop removes the cgroups under it.
func (d *Daemon) CgroupParent() string { return "/" + d.Namespace }

// CRIClient returns a CRI client connected to the daemon whose pods use
// CgroupParent. It shares the connection setup of Client (the CRI plugin
// serves on the same socket). The caller must Close it.
func (d *Daemon) CRIClient() (*testcri.Client, error) {
	if !d.cri {
		return nil, errors.New("testdaemon: the CRI plugin is not enabled (start with Options.CRI)")
	}
	c, err := d.Client()
	if err != nil {
		return nil, err
	}
	conn, ok := c.Conn().(grpc.ClientConnInterface)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("testdaemon: the containerd client's connection is a %T, not a gRPC connection", c.Conn())
	}
	return testcri.New(conn, d.CgroupParent(), c.Close), nil
}

// majorVersion runs `bin --version` and returns containerd's major version
// ("containerd github.com/containerd/containerd/v2 v2.4.2" gives 2).
func majorVersion(ctx context.Context, bin string) (int, error) {
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return 0, fmt.Errorf("%s --version: %w", bin, err)
	}
	fields := strings.Fields(string(out))
	if len(fields) < 3 {
		return 0, fmt.Errorf("%s --version: unexpected output %q", bin, out)
	}
	major, _, _ := strings.Cut(strings.TrimPrefix(fields[2], "v"), ".")
	n, err := strconv.Atoi(major)
	if err != nil {
		return 0, fmt.Errorf("%s --version: no version in %q", bin, out)
	}
	return n, nil
}

// criConfig renders the configuration with the CRI plugin for the major
// version of bin: config version 2 and the single CRI plugin section for
// containerd 1.x, version 3 and the split runtime/images/server sections for
// 2.x (whose NRI plugin, which listens on a host-global socket, is disabled).
func (d *Daemon) criConfig(ctx context.Context, bin string) (string, error) {
	major, err := majorVersion(ctx, bin)
	if err != nil {
		return "", err
	}
	for _, dir := range []string{d.cniDir("bin"), d.cniDir("net.d")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("create %s: %w", dir, err)
		}
	}
	q := strconv.Quote
	const what = " (CRI enabled)"
	if major < 2 {
		return d.configText(what, 2, nil, `  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = `+q(testimage.PauseImageName)+`
    restrict_oom_score_adj = true
    disable_apparmor = true
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = `+q(d.cniDir("bin"))+`
      conf_dir = `+q(d.cniDir("net.d"))+`
`), nil
	}
	return d.configText(what, 3, []string{"io.containerd.nri.v1.nri"}, `  [plugins."io.containerd.cri.v1.images"]
    snapshotter = "overlayfs"
    [plugins."io.containerd.cri.v1.images".pinned_images]
      sandbox = `+q(testimage.PauseImageName)+`
  [plugins."io.containerd.cri.v1.runtime"]
    restrict_oom_score_adj = true
    disable_apparmor = true
    [plugins."io.containerd.cri.v1.runtime".cni]
      bin_dirs = [`+q(d.cniDir("bin"))+`]
      conf_dir = `+q(d.cniDir("net.d"))+`
  [plugins."io.containerd.grpc.v1.cri"]
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
`), nil
}

func (d *Daemon) cniDir(name string) string { return filepath.Join(d.Dir, "cni", name) }

// prepareCRI waits for the CRI runtime, imports the pause image into
// CRINamespace and waits until the CRI image store has it.
func (d *Daemon) prepareCRI(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, criReadyTimeout)
	defer cancel()
	cri, err := d.CRIClient()
	if err != nil {
		return err
	}
	defer cri.Close()
	if err := cri.Ready(ctx); err != nil {
		return err
	}
	pause, err := testimage.PauseImage()
	if err != nil {
		return err
	}
	c, err := d.Client()
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := ImportImage(namespaces.WithNamespace(ctx, CRINamespace), c, pause, "overlayfs"); err != nil {
		return err
	}
	return cri.WaitImage(ctx, testimage.PauseImageName)
}

// removePods stops and removes every CRI pod, as kubelet would, and returns
// the sandboxes and containers it saw.
func (d *Daemon) removePods(ctx context.Context) ([]nsID, error) {
	ctx, cancel := context.WithTimeout(ctx, apiCleanupBudget)
	defer cancel()
	cri, err := d.CRIClient()
	if err != nil {
		return nil, err
	}
	defer cri.Close()
	ids, err := cri.RemoveAllPods(ctx)
	seen := make([]nsID, len(ids))
	for i, id := range ids {
		seen[i] = nsID{CRINamespace, id}
	}
	if err != nil {
		return seen, fmt.Errorf("remove CRI pods: %w", err)
	}
	return seen, nil
}
