package harden

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ctrforensics/ctrforensics/forensic"
)

// in is a change found in the tmpfs mounted at mount.
func in(mount string, c forensic.Change) forensic.Change {
	c.Source, c.Mount = forensic.SourceTmpfs, mount
	return c
}

func tmpfsMount(dest string, examined bool, opts ...string) forensic.Mount {
	return forensic.Mount{Destination: dest, Type: "tmpfs", Kind: forensic.SourceTmpfs, Writable: true, Examined: examined, Options: opts}
}

// TestDeriveTmpfs checks what the entries of the spec's tmpfs mounts say: a
// write keeps the mount writable, a dropped executable justifies noexec and
// is drift, a setuid file nosuid, a device node nodev (the runtime's own
// devices do not count), options the spec has are not proposed again, and
// none of it leaks into the snapshot's writable set.
func TestDeriveTmpfs(t *testing.T) {
	dev := forensic.Change{Kind: forensic.Added, Path: "/dev/shm/sda", Meta: &forensic.Metadata{Type: forensic.TypeBlock}}
	runtimeNull := forensic.Change{Kind: forensic.Added, Path: "/dev/null", Runtime: true, Meta: &forensic.Metadata{Type: forensic.TypeChar}}
	cases := []struct {
		name    string
		mounts  []forensic.Mount
		changes []forensic.Change
		tmpfs   string // path:files:bytes:keep:options ...
		drift   string
	}{
		{"nothing written", []forensic.Mount{tmpfsMount("/dev/shm", true)}, nil, "/dev/shm:0:0:false:", ""},
		{"a write", []forensic.Mount{tmpfsMount("/dev/shm", true)},
			[]forensic.Change{in("/dev/shm", dir(forensic.Added, "/dev/shm/q")), in("/dev/shm", file(forensic.Added, "/dev/shm/q/sess", 10, 0o600))},
			"/dev/shm:1:10:true:", ""},
		{"an executable dropped", []forensic.Mount{tmpfsMount("/dev/shm", true, "nosuid", "nodev")},
			[]forensic.Change{in("/dev/shm", file(forensic.Added, "/dev/shm/.x", 5000, 0o755))},
			"/dev/shm:1:5000:true:noexec", "/dev/shm/.x"},
		{"already noexec", []forensic.Mount{tmpfsMount("/run", true, "noexec")},
			[]forensic.Change{in("/run", file(forensic.Added, "/run/x", 1, 0o755))},
			"/run:1:1:true:", "/run/x"},
		{"setuid and a device", []forensic.Mount{tmpfsMount("/dev/shm", true)},
			[]forensic.Change{in("/dev/shm", file(forensic.Added, "/dev/shm/s", 1, 0o4644)), in("/dev/shm", dev)},
			"/dev/shm:2:1:true:nosuid,nodev", ""},
		{"the runtime's /dev", []forensic.Mount{tmpfsMount("/dev", true, "nosuid")}, []forensic.Change{in("/dev", runtimeNull)}, "/dev:0:0:false:", ""},
		{"not examined", []forensic.Mount{{Destination: "/run", Type: "tmpfs", Kind: forensic.SourceTmpfs, Writable: true, Note: "no task"}}, nil,
			"/run:0:0:false:", ""},
		{"read-only tmpfs and volumes left out", []forensic.Mount{{Destination: "/ro", Kind: forensic.SourceTmpfs},
			{Destination: "/data", Kind: forensic.SourceVolume, Writable: true}},
			[]forensic.Change{{Kind: forensic.Added, Path: "/data/x", Source: forensic.SourceVolume, Mount: "/data", Meta: &forensic.Metadata{Type: forensic.TypeFile, Mode: 0o755}}},
			"", ""},
		{"with the snapshot's changes", []forensic.Mount{tmpfsMount("/dev/shm", true)},
			append(article(), in("/dev/shm", file(forensic.Added, "/dev/shm/m", 1, 0o700))),
			"/dev/shm:1:1:true:noexec", "/dev/shm/m /var/www/html/index.html /var/www/html/shell.php"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := Derive(tc.changes, tc.mounts)
			var got, drift []string
			for _, x := range p.Tmpfs {
				got = append(got, fmt.Sprintf("%s:%d:%d:%v:%s", x.Path, x.Files, x.Bytes, x.KeepWritable, strings.Join(x.AddOptions, ",")))
			}
			for _, d := range p.Drift {
				drift = append(drift, d.Path)
			}
			if strings.Join(got, " ") != tc.tmpfs || strings.Join(drift, " ") != tc.drift {
				t.Errorf("tmpfs %v drift %v, want %q and %q", got, drift, tc.tmpfs, tc.drift)
			}
			for _, w := range p.Writable {
				if strings.HasPrefix(w.Path, "/dev") || w.Path == "/data" {
					t.Errorf("a mount's entry made the writable set: %+v", w)
				}
			}
		})
	}
}

func TestTmpfsAdvice(t *testing.T) {
	for _, tt := range []struct {
		in   Tmpfs
		want string
	}{
		{Tmpfs{Note: "not examined: the container has no running task"}, "not examined: the container has no running task"},
		{Tmpfs{Note: "file system gone"}, "not examined: file system gone"},
		{Tmpfs{Examined: true}, "nothing written seen"},
		{Tmpfs{Examined: true, KeepWritable: true}, "written: keep it writable"},
		{Tmpfs{Examined: true, KeepWritable: true, AddOptions: []string{"noexec", "nosuid"}, Executables: []string{"/run/x", "/run/y"}},
			"written: keep it writable; mount it noexec,nosuid; 2 executable(s) dropped there (drift)"},
	} {
		if got := TmpfsAdvice(tt.in); got != tt.want {
			t.Errorf("TmpfsAdvice(%+v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
