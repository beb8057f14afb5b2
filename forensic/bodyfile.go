package forensic

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteBodyfile writes the changes as a Sleuth Kit body file (format 3.x:
// MD5|name|inode|mode_as_string|UID|GID|size|atime|mtime|ctime|crtime, times in
// seconds since the epoch), which `mactime -b FILE` turns into a timeline. A
// deleted path is named with " (deleted)", as The Sleuth Kit does, and carries
// the image's metadata; a symlink is "name -> target". Names are escaped as by
// EscapePath, and "|" as \x7c, so that every record stays one line.
func WriteBodyfile(w io.Writer, changes []Change) error {
	bw := bufio.NewWriter(w)
	for _, c := range changes {
		md := c.Meta
		name := bodyName(c.Path)
		if md.Type == TypeSymlink {
			name += " -> " + bodyName(md.LinkTarget)
		}
		if c.Kind == Deleted {
			name += " (deleted)"
		}
		fmt.Fprintf(bw, "0|%s|%d|%s|%d|%d|%d|%d|%d|%d|%d\n", name, md.Inode, modeString(md), md.UID, md.GID, md.Size,
			unixOrZero(md.Atime), unixOrZero(md.Mtime), unixOrZero(md.Ctime), btimeOrZero(md.Btime))
	}
	return bw.Flush()
}

func bodyName(p string) string {
	return strings.ReplaceAll(EscapePath(p), "|", `\x7c`)
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func btimeOrZero(t *time.Time) int64 {
	if t == nil {
		return 0
	}
	return t.Unix()
}

// modeString renders a mode as The Sleuth Kit does: the name's type, a slash,
// then ls -l style type and permissions, e.g. r/rrwxr-xr-x.
func modeString(md *Metadata) string {
	t := typeLetter(md.Type)
	if t == '-' {
		t = 'r'
	}
	return string(t) + "/" + string(t) + LsMode(md.Type, md.Mode)[1:]
}

// LsMode renders a type and mode as `ls -l` does, e.g. -rwsr-xr-x.
func LsMode(t FileType, mode uint32) string {
	perm := []byte("rwxrwxrwx")
	for i := range perm {
		if mode&(1<<(8-i)) == 0 {
			perm[i] = '-'
		}
	}
	special := []struct {
		bit uint32
		pos int
		set byte
	}{{0o4000, 2, 's'}, {0o2000, 5, 's'}, {0o1000, 8, 't'}}
	for _, s := range special {
		if mode&s.bit != 0 {
			if perm[s.pos] == '-' {
				perm[s.pos] = s.set - 'a' + 'A'
			} else {
				perm[s.pos] = s.set
			}
		}
	}
	return string(typeLetter(t)) + string(perm)
}

func typeLetter(t FileType) byte {
	switch t {
	case TypeDir:
		return 'd'
	case TypeSymlink:
		return 'l'
	case TypeFIFO:
		return 'p'
	case TypeSocket:
		return 's'
	case TypeChar:
		return 'c'
	case TypeBlock:
		return 'b'
	}
	return '-'
}
