// Package snapshot turns containerd objects into what is on disk: a container's
// snapshotter, active snapshot, upper directory and image layers, an image's
// chain of snapshots. Every operation runs inside a Session that holds a
// containerd lease and records each side effect on the host, and undoes them all
// when it ends.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/containerd/containerd/v2/client"
)

// DefaultAddress is containerd's default gRPC socket.
const DefaultAddress = "/run/containerd/containerd.sock"

// connectTimeout bounds the first call to the daemon, so that a dead socket is
// reported at once instead of after gRPC's retries.
const connectTimeout = 5 * time.Second

// UnreachableError says the containerd daemon could not be reached.
type UnreachableError struct {
	Address string
	Err     error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach containerd at %s: %v", e.Address, e.Err)
}

// Unwrap returns the connection error.
func (e *UnreachableError) Unwrap() error { return e.Err }

// Client is a connection to one containerd daemon, working in one namespace.
type Client struct {
	c         *client.Client
	address   string
	namespace string
	version   string
	// disk is set for a client of a disk root (OpenRoot), read without a daemon.
	disk *diskRoot
	// stateDir holds the run records of sessions on a disk root (SetStateDir).
	stateDir string
}

// Connect opens a connection to the containerd daemon at address and checks
// that it answers.
func Connect(ctx context.Context, address, namespace string) (*Client, error) {
	if _, err := os.Stat(address); err != nil {
		return nil, &UnreachableError{Address: address, Err: errors.Unwrap(err)}
	}
	c, err := client.New(address, client.WithDefaultNamespace(namespace), client.WithTimeout(connectTimeout))
	if err != nil {
		return nil, &UnreachableError{Address: address, Err: err}
	}
	vctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	v, err := c.Version(vctx)
	if err != nil {
		c.Close()
		if ctx.Err() != nil { // interrupted: the daemon is not at fault
			return nil, fmt.Errorf("connect to containerd: %w", ctx.Err())
		}
		return nil, &UnreachableError{Address: address, Err: err}
	}
	return &Client{c: c, address: address, namespace: namespace, version: v.Version}, nil
}

// Close closes the connection, or the disk root's databases.
func (c *Client) Close() error {
	err := c.c.Close()
	if c.disk != nil {
		err = errors.Join(err, c.disk.close())
	}
	return err
}

// Address is the daemon's socket.
func (c *Client) Address() string { return c.address }

// Namespace is the containerd namespace the client works in.
func (c *Client) Namespace() string { return c.namespace }

// ServerVersion is the daemon's version.
func (c *Client) ServerVersion() string { return c.version }

// Containerd returns the underlying containerd client, for tests.
func (c *Client) Containerd() *client.Client { return c.c }
