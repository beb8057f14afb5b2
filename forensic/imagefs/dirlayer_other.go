//go:build !linux

package imagefs

import (
	"context"
	"fmt"
	"io"
	"runtime"

	"github.com/containerd/errdefs"
)

// DirLayer reads an unpacked snapshot directory as a layer on Linux only: it
// relies on Linux's descriptor-relative calls and overlay xattrs. Elsewhere
// its Open fails.
func DirLayer(dir string) Layer {
	return Layer{Open: func(context.Context) (io.ReadCloser, error) {
		return nil, fmt.Errorf("read snapshot directory %s on %s: %w", dir, runtime.GOOS, errdefs.ErrNotImplemented)
	}}
}
