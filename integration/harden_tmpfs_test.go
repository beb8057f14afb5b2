package integration

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestHardenTmpfs drops an executable in the /run tmpfs of containerd's
// default spec (mounted without noexec) and writes a session file in its
// /dev/shm (mounted noexec): harden, which reads the tmpfs mounts through
// the task's mount namespace as diff does, must keep both mounts writable,
// propose noexec for /run only, report the dropped binary as drift, say
// that nothing was written in /dev, and leave all of them out of the root
// file system's writable set; the host is as it was.
func TestHardenTmpfs(t *testing.T) {
	c := runWithSpec(t, "harden-tmpfs")
	h.attack(t, c, `cp /bin/busybox /run/.x && chmod 755 /run/.x && echo s > /dev/shm/sess && mkdir -p /run/app && echo 1 > /run/app/pid`)
	upper := h.upperDir(t, c)
	before, host := captureTree(t, upper), captureHost(t)

	var prof struct {
		Writable []struct{ Path string }
		Drift    []struct{ Kind, Path, Reason string }
		Tmpfs    []struct {
			Path         string
			Examined     bool
			Files        int
			Executables  []string
			KeepWritable bool     `json:"keep_writable"`
			AddOptions   []string `json:"add_options"`
		}
		Notes []string
	}
	out := h.mustCLI(t, "harden", "--format", "json", c.id)
	if err := json.Unmarshal([]byte(out), &prof); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	got := map[string]string{}
	for _, m := range prof.Tmpfs {
		got[m.Path] = strings.Join([]string{word(m.Examined, "examined"), word(m.KeepWritable, "keep"),
			strings.Join(m.AddOptions, ","), strings.Join(m.Executables, ",")}, " ")
	}
	for path, want := range map[string]string{
		"/dev":     "examined -  ",
		"/dev/shm": "examined keep  ",
		"/run":     "examined keep noexec /run/.x",
	} {
		if got[path] != want {
			t.Errorf("tmpfs %s: %q, want %q (all: %+v)", path, got[path], want, prof.Tmpfs)
		}
	}
	if !slices.ContainsFunc(prof.Drift, func(d struct{ Kind, Path, Reason string }) bool {
		return d.Kind == "A" && d.Path == "/run/.x" && strings.Contains(d.Reason, "tmpfs")
	}) {
		t.Errorf("the binary dropped in /run is not drift: %+v", prof.Drift)
	}
	for _, w := range prof.Writable {
		if strings.HasPrefix(w.Path, "/dev") || strings.HasPrefix(w.Path, "/run") {
			t.Errorf("a tmpfs entry in the root file system's writable set: %s", w.Path)
		}
	}
	for _, n := range prof.Notes {
		if strings.Contains(n, "mount at /run:") {
			t.Errorf("note on /run, which was examined: %s", n)
		}
	}
	table := h.mustCLI(t, "harden", c.id)
	if !strings.Contains(table, "/dev/shm") || !strings.Contains(table, "written: keep it writable; mount it noexec") ||
		!strings.Contains(table, "/run/.x") {
		t.Errorf("harden table lacks the tmpfs advice:\n%s", table)
	}
	compareTrees(t, "upper", before, captureTree(t, upper))
	compareHost(t, "after harden", host, captureHost(t))
}

// word is w when b holds, "-" otherwise.
func word(b bool, w string) string {
	if b {
		return w
	}
	return "-"
}
