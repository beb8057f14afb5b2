// Package testobjstore runs a real S3-compatible server for tests and
// benchmarks: versitygw with its POSIX backend (buckets are directories,
// versioning and object lock enabled), on a loopback port, with its own
// credentials. The binary is built from the Go module proxy by
// scripts/versitygw.sh into a cache outside the checkout, so the server stays
// out of the product's go.mod.
package testobjstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Region is the region the server's clients use (versitygw accepts any).
const Region = "us-east-1"

// Server is a running versitygw.
type Server struct {
	// Endpoint is the server's URL, http://127.0.0.1:PORT.
	Endpoint string
	// AccessKey and SecretKey are its root credentials.
	AccessKey, SecretKey string
	cmd                  *exec.Cmd
	exited               chan struct{}
	log                  *os.File
}

// Binary returns the versitygw binary: $CTRFORENSICS_VERSITYGW, or the one
// scripts/versitygw.sh builds (once; cached).
func Binary() (string, error) {
	if b := os.Getenv("CTRFORENSICS_VERSITYGW"); b != "" {
		return b, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	out, err := exec.Command("bash", filepath.Join(root, "scripts", "versitygw.sh")).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("build versitygw: %v: %s", err, ee.Stderr)
		}
		return "", fmt.Errorf("build versitygw: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// moduleRoot finds the directory of the main module's go.mod from the
// working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "scripts", "versitygw.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("scripts/versitygw.sh not found above the working directory: set CTRFORENSICS_VERSITYGW")
		}
		dir = parent
	}
}

// Start runs bin on a free loopback port, keeping its buckets, versions and
// log under dir, and waits until it answers.
func Start(ctx context.Context, bin, dir string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	data, versions := filepath.Join(dir, "buckets"), filepath.Join(dir, "versions")
	for _, d := range []string{data, versions} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	log, err := os.Create(filepath.Join(dir, "versitygw.log"))
	if err != nil {
		return nil, err
	}
	s := &Server{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), AccessKey: "ctrforensics-test", SecretKey: "ctrforensics-test-secret",
		exited: make(chan struct{}), log: log}
	s.cmd = exec.Command(bin, "--port", fmt.Sprintf("127.0.0.1:%d", port), "--access", s.AccessKey, "--secret", s.SecretKey,
		"posix", "--versioning-dir", versions, data)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	go func() { s.cmd.Wait(); close(s.exited) }()
	if err := s.wait(ctx, port); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// wait waits until the server accepts connections.
func (s *Server) wait(ctx context.Context, port int) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			b, _ := os.ReadFile(s.log.Name())
			return fmt.Errorf("versitygw exited: %s", b)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("versitygw did not answer within 30s")
}

// Stop ends the server.
func (s *Server) Stop() error {
	defer s.log.Close()
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-s.exited
	return nil
}

// Env is the environment of a process that uses the server through the
// standard AWS chain, with no shared config of the host's user.
func (s *Server) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey, "AWS_REGION=" + Region,
		"AWS_ENDPOINT_URL=" + s.Endpoint, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true"}
}

// Client returns an S3 client of the server (path-style).
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{Region: Region, BaseEndpoint: aws.String(s.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, "")})
}

// CreateBucket creates a bucket, with object lock (and so versioning) when
// lock is set.
func (s *Server) CreateBucket(ctx context.Context, name string, lock bool) error {
	in := &s3.CreateBucketInput{Bucket: &name}
	if lock {
		in.ObjectLockEnabledForBucket = aws.Bool(true)
	}
	if _, err := s.Client().CreateBucket(ctx, in); err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	return nil
}
