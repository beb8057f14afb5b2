package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/urfave/cli/v3"

	"github.com/ctrforensics/ctrforensics/snapshot"
)

// source is what a CONTAINER|IMAGE argument names: a container, or else an
// image.
type source struct {
	container *snapshot.Container // nil for an image
	image     string              // the image's name, when container is nil
}

// resolveSource finds the container named name, else the image: a container
// ID (or unique prefix) wins over an image of the same name. Neither is a
// noSuchSourceError.
func resolveSource(ctx context.Context, cl *snapshot.Client, name string) (source, error) {
	ctr, err := cl.LoadContainer(ctx, name)
	var nf *snapshot.NotFoundError
	switch {
	case err == nil:
		return source{container: ctr}, nil
	case !errors.As(err, &nf):
		return source{}, err
	}
	ok, err := cl.HasImage(ctx, name)
	if err != nil {
		return source{}, err
	}
	if !ok {
		return source{}, &noSuchSourceError{name: name, namespace: cl.Namespace()}
	}
	return source{image: name}, nil
}

// noSuchSourceError says a CONTAINER|IMAGE argument names neither a
// container nor an image. It satisfies errdefs.IsNotFound.
type noSuchSourceError struct{ name, namespace string }

func (e *noSuchSourceError) Error() string {
	return fmt.Sprintf("neither a container nor an image named %q exists in namespace %q", e.name, e.namespace)
}

// Is makes errors.Is(err, errdefs.ErrNotFound) true.
func (e *noSuchSourceError) Is(target error) bool { return target == errdefs.ErrNotFound }

// withContainer connects to containerd and runs fn on the container named
// name (an ID or a unique prefix).
func withContainer(ctx context.Context, c *cli.Command, name string, fn func(ctx context.Context, cl *snapshot.Client, ctr *snapshot.Container) error) error {
	return withClient(ctx, c, func(ctx context.Context, cl *snapshot.Client) error {
		ctr, err := cl.LoadContainer(ctx, name)
		if err != nil {
			return err
		}
		return fn(ctx, cl, ctr)
	})
}
