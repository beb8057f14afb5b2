package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ctrforensics/ctrforensics/forensic/bundle"
	"github.com/ctrforensics/ctrforensics/forensic/custody"
	"github.com/ctrforensics/ctrforensics/snapshot"
)

// TestCollectKilledWhileSealing kills collect with SIGKILL at several moments
// of sealing and packing a bundle large enough for that to take a while; then
// `cleanup` must leave no partial output and no lease of ours (issue 13
// item 4: the lease naming the partial output was released before sealing).
func TestCollectKilledWhileSealing(t *testing.T) {
	c := h.runContainer(t, "collect-seal-kill", "overlayfs")
	h.attack(t, c, `dd if=/dev/urandom of=/tmp/big bs=1M count=256 2>/dev/null`)
	moments := []struct {
		name  string
		ready func(partial string) bool
		delay time.Duration
	}{
		{"bag-info written", exists(bundle.BagInfo), 0},
		{"custody started", exists(bundle.CustodyFile), 0},
		{"packing begun", packing, 0},
		{"packing", packing, 200 * time.Millisecond},
		{"packing late", packing, 400 * time.Millisecond},
	}
	hit := 0
	for _, m := range moments {
		t.Run(m.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "bag.tar.gz")
			cmd := exec.Command(h.bin, "--address", h.daemon.Address, "-n", h.daemon.Namespace, "collect", "-o", out, c.id)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			if !waitFor(done, func() bool { return m.ready(partialIn(dir)) }) {
				t.Logf("collect finished before %s: moment missed", m.name)
				return
			}
			time.Sleep(m.delay)
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			if cmd.ProcessState.Success() {
				t.Logf("collect finished before it was killed %s", m.name)
				return
			}
			hit++
			rep := h.mustCLI(t, "cleanup")
			if !strings.Contains(rep, "removed: partial bag ") {
				t.Errorf("cleanup did not remove the partial bag:\n%s", rep)
			}
			// A kill that lands after the sealed bag was renamed into place
			// leaves the finished bag: it must then be complete and valid.
			// Anything else left is a partial output cleanup missed.
			left, _ := os.ReadDir(dir)
			for _, e := range left {
				if e.Name() == filepath.Base(out) {
					h.mustCLI(t, "verify", out)
					continue
				}
				t.Errorf("left in the output directory after cleanup: %s", e.Name())
			}
			if ls := ourLeases(t); len(ls) != 0 {
				t.Errorf("leases left after cleanup: %v", ls)
			}
		})
	}
	if hit < 3 {
		t.Errorf("only %d of %d moments were hit: make the container larger", hit, len(moments))
	}
}

// exists reports whether a bag path exists in the partial bundle.
func exists(name string) func(string) bool {
	return func(partial string) bool {
		if partial == "" {
			return false
		}
		bags, _ := filepath.Glob(filepath.Join(partial, "*", name))
		return len(bags) > 0
	}
}

// packing reports whether the partial bundle is being packed into a tar.
func packing(partial string) bool {
	if partial == "" {
		return false
	}
	_, err := os.Stat(partial + ".tar")
	return err == nil
}

// partialIn returns the partial output directory in dir, or "".
func partialIn(dir string) string {
	m, _ := filepath.Glob(filepath.Join(dir, "*"+bundle.PartialMarker+"*"))
	for _, p := range m {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p
		}
	}
	return ""
}

// waitFor polls cond every millisecond until it holds (true) or done is
// closed (false).
func waitFor(done <-chan struct{}, cond func() bool) bool {
	for {
		if cond() {
			return true
		}
		select {
		case <-done:
			return cond()
		case <-time.After(time.Millisecond):
		}
	}
}

// ourLeases lists the leases ctrforensics made in the test namespace.
func ourLeases(t *testing.T) []string {
	t.Helper()
	ls, err := h.client.LeasesService().List(h.ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		if _, ok := l.Labels[snapshot.LabelPurpose]; ok {
			out = append(out, l.ID+" "+l.Labels[snapshot.LabelPurpose])
		}
	}
	return out
}

// TestVerifyCustodyAttacks runs the attacks of issue 13 item 2 through the
// CLI on a bundle signed at collection: with --pubkey, each must make verify
// exit 1 naming the cause, where before the fix they verified VALID.
func TestVerifyCustodyAttacks(t *testing.T) {
	c := h.runContainer(t, "custody-attack", "overlayfs")
	alice, alicePub := keyPair(t, "alice")
	bob, bobPub := keyPair(t, "bob")
	mallory, _ := keyPair(t, "mallory")
	sealed := filepath.Join(t.TempDir(), "bag")
	h.mustCLI(t, "collect", "-o", sealed, "--sign-key", alice, "--examiner", "alice", c.id)
	h.mustCLI(t, "custody", "add", "--action", "transferred", "--actor", "bob", "--sign-key", bob, sealed)
	trusted := []string{"--pubkey", alicePub, "--pubkey", bobPub}
	if v := h.mustCLI(t, append(append([]string{"verify"}, trusted...), sealed)...); !strings.Contains(v, "result:    VALID") {
		t.Fatalf("the honest chain does not verify:\n%s", v)
	}
	tests := []struct {
		name   string
		attack func(t *testing.T, bag string)
		extra  []string // more verify flags
		want   string
	}{
		{"signatures stripped, events rewritten", stripChain, nil, "event 1: is not signed"},
		{"stripped, unsigned allowed", stripChain, []string{"--allow-unsigned-custody"}, "event 1: is not the collected event the attestation signed"},
		{"appended unsigned event", func(t *testing.T, bag string) {
			appendForged(t, bag)
		}, nil, "event 3: is not signed"},
		{"appended event signed by an untrusted key", func(t *testing.T, bag string) {
			h.mustCLI(t, "custody", "add", "--action", "transferred", "--actor", "mallory", "--sign-key", mallory, bag)
		}, nil, "event 3: is signed by key"},
		{"attestation with an empty signature list", func(t *testing.T, bag string) {
			p := filepath.Join(bag, bundle.AttestationFile)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			var env map[string]any
			if err := json.Unmarshal(b, &env); err != nil {
				t.Fatal(err)
			}
			env["signatures"] = []any{}
			b, _ = json.Marshal(env)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, nil, "FAIL attestation.dsse.json: signature: the attestation carries no signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bag := filepath.Join(t.TempDir(), "bag")
			if out, err := exec.Command("cp", "-a", sealed, bag).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v %s", err, out)
			}
			tt.attack(t, bag)
			args := append(append(append([]string{"verify"}, trusted...), tt.extra...), bag)
			assertInvalid(t, tt.want, args...)
		})
	}
	t.Run("unsigned allowed and marked", func(t *testing.T) {
		bag := filepath.Join(t.TempDir(), "bag")
		if out, err := exec.Command("cp", "-a", sealed, bag).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
		h.mustCLI(t, "custody", "add", "--action", "stored", "--actor", "carol", bag)
		v := h.mustCLI(t, append(append([]string{"verify"}, trusted...), "--allow-unsigned-custody", "--format", "json", bag)...)
		var rep struct {
			Valid       bool  `json:"valid"`
			Unprotected []int `json:"unprotected_custody_events"`
		}
		if err := json.Unmarshal([]byte(v), &rep); err != nil || !rep.Valid || len(rep.Unprotected) != 1 || rep.Unprotected[0] != 3 {
			t.Errorf("report %+v (%v), want valid with event 3 unprotected:\n%s", rep, err, v)
		}
	})
}

// stripChain removes every custody signature, rewrites actor and note, and
// recomputes every prev: the chain still links.
func stripChain(t *testing.T, bag string) {
	t.Helper()
	p, _, entries := readCustodyFile(t, bag)
	var out []byte
	prev := ""
	for _, e := range entries {
		ev := e.Event
		ev.Sig, ev.KeyID, ev.Prev, ev.Note = "", "", prev, "nothing to see"
		if ev.Actor == "bob" {
			ev.Actor = "mallory"
		}
		line, _ := json.Marshal(ev)
		prev = custody.LineDigest(line)
		out = append(append(out, line...), '\n')
	}
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// readCustodyFile reads the custody log of the bag directory bag: its path,
// its bytes and its entries.
func readCustodyFile(t *testing.T, bag string) (string, []byte, []custody.Entry) {
	t.Helper()
	p := filepath.Join(bag, bundle.CustodyFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := custody.Read(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return p, b, entries
}

// appendForged appends an unsigned "transferred to mallory" event dated
// 2099, written by hand.
func appendForged(t *testing.T, bag string) {
	t.Helper()
	p, b, entries := readCustodyFile(t, bag)
	last := entries[len(entries)-1]
	ev := custody.Event{Seq: last.Seq + 1, Time: "2099-01-01T00:00:00.000000000Z", Action: "transferred",
		Actor: "mallory", Note: "to mallory", Bag: last.Bag, Prev: custody.LineDigest(last.Line)}
	line, _ := json.Marshal(ev)
	if err := os.WriteFile(p, append(append(b, line...), '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBundleArgumentMessages checks what verify and custody say of arguments
// that are not bundles (issue 13 item 13): one line and exit 2, naming what
// the argument is not; a symlink given as the argument itself is followed.
func TestBundleArgumentMessages(t *testing.T) {
	dir := t.TempDir()
	bag := filepath.Join(dir, "bag")
	w, err := bundle.Create(bag, bundle.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.PutJSON(bundle.ContainerJSON, map[string]string{"id": "web"}); err != nil {
		t.Fatal(err)
	}
	acq := bundle.NewAcquisition(time.Now())
	acq.Examiner = "alice"
	if _, err := w.Seal(acq, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(dir, "notes.txt")
	empty := filepath.Join(dir, "empty.tar")
	link := filepath.Join(dir, "link")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(text, []byte("not a bundle\n"), 0o644))
	must(os.WriteFile(empty, nil, 0o644))
	must(os.Symlink(bag, link))
	tests := []struct {
		args []string
		code int
		want string // in stdout for exit 0, in the one stderr line otherwise
	}{
		{[]string{"verify", link}, 0, "result:    VALID"},
		{[]string{"custody", "show", link}, 0, "alice"},
		{[]string{"verify", text}, 2, "not a tar archive"},
		{[]string{"verify", empty}, 2, "not a tar archive"},
		{[]string{"custody", "show", text}, 2, "not an evidence bundle: neither a bundle directory nor a tar archive"},
		{[]string{"custody", "show", dir}, 2, "not an evidence bundle (no tagmanifest-sha256.txt)"},
		{[]string{"custody", "add", "--action", "x", "--actor", "y", text}, 2, "not an evidence bundle"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[:len(tt.args)-1], " ")+" "+filepath.Base(tt.args[len(tt.args)-1]), func(t *testing.T) {
			r := h.cli(t, tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.code, r.stdout, r.stderr)
			}
			if tt.code == 0 {
				if !strings.Contains(r.stdout, tt.want) {
					t.Errorf("stdout lacks %q:\n%s", tt.want, r.stdout)
				}
				return
			}
			if lines := strings.Count(strings.TrimSuffix(r.stderr, "\n"), "\n") + 1; lines != 1 || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr %q: want one line with %q", r.stderr, tt.want)
			}
			if strings.Contains(r.stderr, "unexpected EOF") {
				t.Errorf("stderr %q says unexpected EOF", r.stderr)
			}
		})
	}
}
