// Package testapiserver runs a real Kubernetes control plane's front for
// tests: etcd and kube-apiserver, both on loopback, built from the Go module
// proxy by scripts/kubeapiserver.sh into a cache outside the checkout (so
// neither enters the product's go.mod). No controller manager, scheduler or
// kubelet runs: objects are stored, validated, admitted and authorised as on
// a cluster, but no pod is ever scheduled or run, and nothing creates a
// namespace's default service account; a test plays those parts.
//
// Invariants:
//   - Everything a Server writes (etcd's data, certificates, keys,
//     kubeconfigs, logs) is under its own temporary directory, which Stop
//     removes after both processes have exited.
//   - The API server authorises with RBAC only; the admin is a client
//     certificate in group system:masters, and every other identity a test
//     uses gets exactly the RBAC the test grants it.
//   - Both processes die with the test binary (parent-death signal), so a
//     killed test run leaves no server behind.
package testapiserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Env names the directory holding the etcd and kube-apiserver binaries
// (what scripts/kubeapiserver.sh prints). Tests that need the API server
// skip without it.
const Env = "CTRFORENSICS_KUBE"

// AdminUser is the admin's user name (its group is system:masters).
const AdminUser = "ctrforensics-test-admin"

// startTimeout bounds the wait for /readyz: on a busy two-core machine the
// API server's post-start hooks (RBAC bootstrap policy) take a while.
const startTimeout = 3 * time.Minute

// Server is a running etcd and kube-apiserver.
type Server struct {
	// URL is the API server's https://127.0.0.1:PORT.
	URL string
	// Dir holds everything the server wrote; AdminKubeconfig is the admin's
	// kubeconfig in it.
	Dir             string
	AdminKubeconfig string
	pki             *pki
	etcd, apiserver *process
}

// process is a started server process.
type process struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

// ForTest starts a server for t from the binaries in $CTRFORENSICS_KUBE,
// stopped when t ends; it skips t when the variable is not set.
func ForTest(t testing.TB) *Server {
	t.Helper()
	dir := os.Getenv(Env)
	if dir == "" {
		t.Skipf("%s is not set: no kube-apiserver and etcd to run (make test-kube builds them with scripts/kubeapiserver.sh)", Env)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	s, err := Start(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop the API server: %v", err)
		}
	})
	return s
}

// Start runs etcd and kube-apiserver from binDir in a new temporary
// directory and waits until the API server is ready (/readyz).
func Start(ctx context.Context, binDir string) (_ *Server, err error) {
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			return nil, fmt.Errorf("%s: %w", Env, err)
		}
	}
	dir, err := os.MkdirTemp("", "ctrforensics-apiserver-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Stop())
		}
	}()
	if s.pki, err = newPKI(dir); err != nil {
		return nil, err
	}
	if err := s.pki.clientCert("admin", AdminUser, "system:masters"); err != nil {
		return nil, err
	}
	etcdURL, err := s.startEtcd(binDir)
	if err != nil {
		return nil, err
	}
	if err := s.startAPIServer(binDir, etcdURL); err != nil {
		return nil, err
	}
	s.AdminKubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := s.WriteKubeconfig(s.AdminKubeconfig, "admin", &clientcmdapi.AuthInfo{
		ClientCertificate: s.pki.path("admin.crt"), ClientKey: s.pki.path("admin.key")}); err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// startEtcd starts a single-member etcd on loopback ports and returns its
// client URL.
func (s *Server) startEtcd(binDir string) (string, error) {
	ports, err := freePorts(2)
	if err != nil {
		return "", err
	}
	clientURL, peerURL := "http://127.0.0.1:"+strconv.Itoa(ports[0]), "http://127.0.0.1:"+strconv.Itoa(ports[1])
	s.etcd, err = start("etcd", filepath.Join(binDir, "etcd"), s.Dir,
		"--name=test", "--data-dir="+filepath.Join(s.Dir, "etcd"),
		"--listen-client-urls="+clientURL, "--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL, "--initial-cluster=test="+peerURL,
		"--unsafe-no-fsync", "--log-level=warn")
	return clientURL, err
}

// startAPIServer starts kube-apiserver on a loopback port, with etcd at
// etcdURL, RBAC, client certificate authentication and service account
// tokens signed by a key of the server's own.
func (s *Server) startAPIServer(binDir, etcdURL string) error {
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	port := ports[0]
	s.URL = "https://127.0.0.1:" + strconv.Itoa(port)
	p := s.pki.path
	certDir := filepath.Join(s.Dir, "certs")
	if err := os.Mkdir(certDir, 0o700); err != nil {
		return err
	}
	s.apiserver, err = start("kube-apiserver", filepath.Join(binDir, "kube-apiserver"), s.Dir,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(port),
		"--cert-dir="+certDir, "--tls-cert-file="+p("serving.crt"), "--tls-private-key-file="+p("serving.key"),
		"--client-ca-file="+p("ca.crt"),
		"--authorization-mode=RBAC", "--anonymous-auth=false",
		"--service-account-issuer=https://kubernetes.default.svc", "--service-account-key-file="+p("sa.pub"),
		"--service-account-signing-key-file="+p("sa.key"),
		"--service-cluster-ip-range=10.0.0.0/24", "--endpoint-reconciler-type=none", "--allow-privileged=true",
		"--enable-priority-and-fairness=false", "--profiling=false", "--v=1")
	return err
}

// start runs bin with args, its output in DIR/NAME.log.
func start(name, bin, dir string, args ...string) (*process, error) {
	p := &process{name: name, log: filepath.Join(dir, name+".log"), exited: make(chan struct{})}
	log, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	defer log.Close() // the child has its own descriptor
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = log, log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	return p, nil
}

// stop ends the process: SIGTERM, then SIGKILL after a grace period.
func (p *process) stop() error {
	if p == nil {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop %s: %w", p.name, err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(15 * time.Second):
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", p.name, err)
	}
	<-p.exited
	return nil
}

// tail is the end of the process's log, for an error message.
func (p *process) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// waitReady polls /readyz as the admin until it answers 200, either process
// exits, or ctx ends.
func (s *Server) waitReady(ctx context.Context) error {
	cfg, err := s.RESTConfig(s.AdminKubeconfig)
	if err != nil {
		return err
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	hc.Timeout = 5 * time.Second
	var last string
	for {
		select {
		case <-s.etcd.exited:
			return fmt.Errorf("etcd exited during start-up:\n%s", s.etcd.tail())
		case <-s.apiserver.exited:
			return fmt.Errorf("kube-apiserver exited during start-up:\n%s", s.apiserver.tail())
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready (%s): %w\n%s", last, ctx.Err(), s.apiserver.tail())
		case <-time.After(250 * time.Millisecond):
		}
		resp, err := hc.Get(s.URL + "/readyz")
		if err != nil {
			last = err.Error()
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		last = resp.Status
	}
}

// Stop ends kube-apiserver, then etcd, and removes the server's directory.
func (s *Server) Stop() error {
	err := errors.Join(s.apiserver.stop(), s.etcd.stop())
	if err != nil {
		return err // leave the directory: a process may still write there
	}
	return os.RemoveAll(s.Dir)
}

// WriteKubeconfig writes a kubeconfig at path whose current context, named
// name, reaches the server as auth.
func (s *Server) WriteKubeconfig(path, name string, auth *clientcmdapi.AuthInfo) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: s.URL, CertificateAuthorityData: s.pki.caPEM}
	cfg.AuthInfos[name] = auth
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: "test", AuthInfo: name}
	cfg.CurrentContext = name
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

// TokenKubeconfig writes a kubeconfig at path whose current context, named
// name, presents token (e.g. a service account's, from a TokenRequest).
func (s *Server) TokenKubeconfig(path, name, token string) error {
	return s.WriteKubeconfig(path, name, &clientcmdapi.AuthInfo{Token: token})
}

// RESTConfig loads the client configuration of a kubeconfig.
func (s *Server) RESTConfig(kubeconfig string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	return cfg, nil
}

// Admin returns the admin's client configuration.
func (s *Server) Admin() (*rest.Config, error) { return s.RESTConfig(s.AdminKubeconfig) }

// freePorts returns n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
