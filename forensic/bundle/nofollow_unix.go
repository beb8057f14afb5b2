//go:build !windows

package bundle

import "syscall"

// oNoFollow makes opening a symlink fail.
const oNoFollow = syscall.O_NOFOLLOW
