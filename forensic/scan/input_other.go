//go:build !linux

package scan

import (
	"context"
	"errors"
	"io"
)

// Walk implements Input; reading directories by descriptor needs Linux.
func (in *dirInput) Walk(context.Context, func(*File, io.Reader) error) error {
	return errors.New("scanning a directory is supported on Linux only")
}
