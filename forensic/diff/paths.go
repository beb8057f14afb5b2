package diff

import "unsafe"

// paths builds the paths of a walk so that a path extending the last one built
// shares its bytes: the paths of a chain of n nested directories then take
// O(n) bytes instead of O(n²). Bytes handed out in a string are never written
// again: the buffer only grows at its end, and a full buffer is replaced, not
// reused.
type paths struct {
	buf []byte
}

// join returns dir + "/" + name ("/" + name for the root).
func (a *paths) join(dir, name string) string {
	if dir == "/" {
		dir = ""
	}
	n := len(dir) + 1 + len(name)
	end := len(a.buf)
	if len(dir) > 0 && end >= len(dir) && cap(a.buf)-end >= 1+len(name) &&
		unsafe.StringData(dir) == unsafe.SliceData(a.buf[end-len(dir):]) {
		// dir is the last path built: extend it in place.
		a.buf = append(append(a.buf, '/'), name...)
		return unsafe.String(&a.buf[end-len(dir)], n)
	}
	if cap(a.buf)-end < n {
		a.buf = make([]byte, 0, max(64<<10, 2*n))
		end = 0
	}
	a.buf = append(append(append(a.buf, dir...), '/'), name...)
	return unsafe.String(&a.buf[end], n)
}
