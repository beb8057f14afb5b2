package fdio

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Xattrs lists the extended attributes of the entry name below dirfd, never
// following a symlink, and reads the value of each attribute for which value
// returns true (every attribute when value is nil). It returns every name
// listed, except those removed while they were read, and the values read. A
// filesystem without extended attributes gives none.
//
// It uses listxattrat/getxattrat (Linux 6.13) and falls back to an O_PATH
// descriptor reached through /proc/self/fd on older kernels: the magic link
// leads to the inode the descriptor holds, which is the entry itself even
// when it is a symlink.
func Xattrs(dirfd int, name string, value func(attr string) bool) ([]string, map[string][]byte, error) {
	list := func(buf []byte) (int, error) { return listxattrat(dirfd, name, buf) }
	get := func(attr string, buf []byte) (int, error) { return getxattrat(dirfd, name, attr, buf) }
	names, values, err := collectXattrs(list, get, value)
	if err == unix.ENOSYS {
		names, values, err = xattrsViaProc(dirfd, name, value)
	}
	if err != nil {
		return nil, nil, &os.PathError{Op: "read xattrs", Path: name, Err: err}
	}
	return names, values, nil
}

// FdXattrs returns every extended attribute of the file open as fd.
func FdXattrs(fd int) (map[string][]byte, error) {
	list := func(buf []byte) (int, error) { return unix.Flistxattr(fd, buf) }
	get := func(attr string, buf []byte) (int, error) { return unix.Fgetxattr(fd, attr, buf) }
	_, values, err := collectXattrs(list, get, nil)
	return values, err
}

func xattrsViaProc(dirfd int, name string, value func(string) bool) ([]string, map[string][]byte, error) {
	fd, err := openat(dirfd, name, PathFlags)
	if err != nil {
		return nil, nil, err
	}
	defer unix.Close(fd)
	proc := ProcPath(fd)
	list := func(buf []byte) (int, error) { return unix.Listxattr(proc, buf) }
	get := func(attr string, buf []byte) (int, error) { return unix.Getxattr(proc, attr, buf) }
	return collectXattrs(list, get, value)
}

func collectXattrs(list func([]byte) (int, error), get func(string, []byte) (int, error),
	value func(string) bool) ([]string, map[string][]byte, error) {
	raw, err := growRead(list)
	if err != nil {
		if err == unix.ENOTSUP {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	var names []string
	var values map[string][]byte
	for _, a := range bytes.Split(raw, []byte{0}) {
		if len(a) == 0 {
			continue
		}
		attr := string(a)
		if value != nil && !value(attr) {
			names = append(names, attr)
			continue
		}
		v, err := growRead(func(buf []byte) (int, error) { return get(attr, buf) })
		if err == unix.ENODATA {
			continue // removed while we read
		}
		if err != nil {
			return nil, nil, fmt.Errorf("get %s: %w", attr, err)
		}
		if values == nil {
			values = make(map[string][]byte)
		}
		names, values[attr] = append(names, attr), v
	}
	return names, values, nil
}

// growRead calls read with a page-sized buffer, and asks for the size and
// retries only when the value does not fit: most entries have no or small
// attributes, so this is one system call instead of two.
func growRead(read func([]byte) (int, error)) ([]byte, error) {
	buf := make([]byte, 4096)
	for {
		n, err := read(buf)
		if err == unix.EINTR {
			continue
		}
		if err != unix.ERANGE {
			if err != nil || n == 0 {
				return nil, err
			}
			return buf[:n], nil
		}
		size, err := read(nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		buf = make([]byte, max(size, 2*len(buf)))
	}
}

// xattrArgs is struct xattr_args of linux/xattr.h.
type xattrArgs struct {
	value uint64
	size  uint32
	flags uint32
}

func getxattrat(dirfd int, name, attr string, dest []byte) (int, error) {
	namep, err := unix.BytePtrFromString(name)
	if err != nil {
		return 0, err
	}
	attrp, err := unix.BytePtrFromString(attr)
	if err != nil {
		return 0, err
	}
	args := xattrArgs{size: uint32(len(dest))}
	if len(dest) > 0 {
		args.value = uint64(uintptr(unsafe.Pointer(&dest[0])))
	}
	r, _, errno := unix.Syscall6(unix.SYS_GETXATTRAT, uintptr(dirfd), uintptr(unsafe.Pointer(namep)),
		unix.AT_SYMLINK_NOFOLLOW, uintptr(unsafe.Pointer(attrp)), uintptr(unsafe.Pointer(&args)), unsafe.Sizeof(args))
	runtime.KeepAlive(dest)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

func listxattrat(dirfd int, name string, dest []byte) (int, error) {
	namep, err := unix.BytePtrFromString(name)
	if err != nil {
		return 0, err
	}
	var buf unsafe.Pointer
	if len(dest) > 0 {
		buf = unsafe.Pointer(&dest[0])
	}
	r, _, errno := unix.Syscall6(unix.SYS_LISTXATTRAT, uintptr(dirfd), uintptr(unsafe.Pointer(namep)),
		unix.AT_SYMLINK_NOFOLLOW, uintptr(buf), uintptr(len(dest)), 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}
