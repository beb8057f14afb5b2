//go:build !linux

package contentdir

import "os"

// openBlob opens a blob read-only.
func openBlob(p string) (*os.File, error) { return os.Open(p) }
