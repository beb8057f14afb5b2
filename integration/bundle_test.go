package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"

	"github.com/ctrforensics/ctrforensics/forensic/bundle"
	"github.com/ctrforensics/ctrforensics/internal/testimage"
)

// keyPair makes a signing key pair with the CLI.
func keyPair(t *testing.T, name string) (priv, pub string) {
	t.Helper()
	prefix := filepath.Join(t.TempDir(), name)
	h.mustCLI(t, "key", "generate", "--out", prefix)
	return prefix + ".key", prefix + ".pub"
}

// attackedForBundle is a container holding the article's attack, a deletion,
// a hostile name and a symlink pointing out.
func attackedForBundle(t *testing.T, id string) *container {
	c := h.runContainer(t, id, "overlayfs")
	h.attack(t, c, scenarios(t)[0].script+`
rm /etc/app/config.ini
touch "/tmp/$(printf 'evil\nname')"
ln -s /etc/shadow /tmp/shadow-link`)
	return c
}

// TestCollectAndVerify collects an attacked container into each bundle form,
// checks every part with ctrforensics verify and with stock tools, and checks
// the evidence and the host are untouched and the container still runs.
func TestCollectAndVerify(t *testing.T) {
	c := attackedForBundle(t, "collect")
	priv, pub := keyPair(t, "examiner")
	upper := h.upperDir(t, c)
	before, host := captureTree(t, upper), captureHost(t)
	diffJSON := decodeChanges(t, h.mustCLI(t, "diff", "--format", "json", c.id))
	for _, form := range []string{"bag", "bag.tar", "bag.tar.gz"} {
		t.Run(form, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), form)
			res := h.mustCLI(t, "collect", "-o", out, "--case", "IR-2026-042", "--examiner", "alice",
				"--note", "web shell found", "--sign-key", priv, c.id)
			if !strings.Contains(res, "collected container "+c.id+" into "+out) {
				t.Errorf("collect said %q", res)
			}
			v := h.mustCLI(t, "verify", "--pubkey", pub, out)
			for _, want := range []string{"signature: valid", "custody:   1 event(s)", "collected    alice", "result:    VALID"} {
				if !strings.Contains(v, want) {
					t.Errorf("verify output lacks %q:\n%s", want, v)
				}
			}
			bag := out
			if form != "bag" {
				bag = extract(t, out)
			}
			checkBagContent(t, bag, c, diffJSON)
			checkStockTools(t, bag, c)
			compareTrees(t, "upper", before, captureTree(t, upper))
			compareHost(t, "after collect", host, captureHost(t))
			if st, err := c.task.Status(h.ctx(t)); err != nil || st.Status != "running" {
				t.Errorf("container is %v after collect (%v)", st.Status, err)
			}
		})
	}
}

// extract unpacks a tar bundle with tar(1) for the stock-tool checks.
func extract(t *testing.T, archive string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-xf", archive, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("tar -xf %s: %v\n%s", archive, err, out)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 || !entries[0].IsDir() {
		t.Fatalf("%s must hold one top-level directory: %v %v", archive, entries, err)
	}
	return filepath.Join(dir, entries[0].Name())
}

// bagFile reads the file p of the bag directory bag.
func bagFile(t *testing.T, bag, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bag, p))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkBagChanges checks that a bag's changes, of the snapshot and of the
// mounts, are those diff --format json gave.
func checkBagChanges(t *testing.T, bag string, diffJSON []change) {
	t.Helper()
	inBag := mergeByPath(decodeChanges(t, string(bagFile(t, bag, bundle.ChangesJSONL))), decodeChanges(t, string(bagFile(t, bag, bundle.MountChangesJSONL))))
	if got, want := comparable(inBag), comparable(diffJSON); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes.jsonl of the snapshot and of the mounts differ from diff --format json:\n%s", firstDifferences(got, want))
	}
}

func checkBagContent(t *testing.T, bag string, c *container, diffJSON []change) {
	t.Helper()
	read := func(p string) []byte { return bagFile(t, bag, p) }
	checkBagChanges(t, bag, diffJSON)
	entries := tarEntries(t, read("data/rootfs/changes.tar"))
	if e, ok := entries["var/www/html/shell.php"]; !ok || e.content != "<?php eval($_GET['cmd']); ?>\n" || e.hdr.Uid != 0 {
		t.Errorf("changes.tar shell.php: %+v", e)
	}
	if _, ok := entries["etc/app/.wh.config.ini"]; !ok {
		t.Error("changes.tar has no whiteout for the deleted config.ini")
	}
	if e := entries["tmp/shadow-link"]; e.hdr == nil || e.hdr.Typeflag != tar.TypeSymlink || e.hdr.Linkname != "/etc/shadow" {
		t.Errorf("changes.tar symlink: %+v", e.hdr)
	}
	if e := entries["var/www/html/index.html"]; e.hdr == nil || e.hdr.ModTime.Nanosecond() == 0 && e.hdr.PAXRecords["mtime"] == "" {
		t.Errorf("changes.tar index.html lost its nanosecond mtime: %+v", e.hdr)
	}
	var procs []struct {
		Pid     int      `json:"pid"`
		Cmdline []string `json:"cmdline"`
		Exe     string   `json:"exe"`
		Digest  string   `json:"exe_digest"`
	}
	if err := json.Unmarshal(read("data/processes/processes.json"), &procs); err != nil || len(procs) == 0 {
		t.Fatalf("processes.json: %v %d", err, len(procs))
	}
	if !strings.Contains(strings.Join(procs[0].Cmdline, " "), "sleep 100000") || !strings.HasPrefix(procs[0].Digest, "sha256:") {
		t.Errorf("first process: %+v", procs[0])
	}
	var acq bundle.Acquisition
	if err := json.Unmarshal(read(bundle.AcquisitionFile), &acq); err != nil {
		t.Fatal(err)
	}
	effects := ""
	for _, e := range acq.SideEffects {
		effects += e.Action + "; "
	}
	for _, want := range []string{"lease created", "snapshot leased", "mounted read-only", "unmounted", "lease released"} {
		if !strings.Contains(effects, want) {
			t.Errorf("acquisition side effects lack %q: %s", want, effects)
		}
	}
	if acq.Case != "IR-2026-042" || acq.CollectedBy != "alice" || acq.Container.ID != c.id || acq.Host.BootID == "" || acq.DiffMethod != "overlay" {
		t.Errorf("acquisition record: %+v", acq)
	}
	info := string(read("bag-info.txt"))
	for _, want := range []string{"External-Identifier: IR-2026-042", "Payload-Oxum: ", "Bagging-Date: ", "Bag-Software-Agent: ctrforensics"} {
		if !strings.Contains(info, want) {
			t.Errorf("bag-info.txt lacks %q:\n%s", want, info)
		}
	}
}

type tarEntry struct {
	hdr     *tar.Header
	content string
}

func tarEntries(t *testing.T, b []byte) map[string]tarEntry {
	t.Helper()
	out := map[string]tarEntry{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		content, _ := io.ReadAll(tr)
		out[strings.TrimSuffix(hdr.Name, "/")] = tarEntry{hdr: hdr, content: string(content)}
	}
}

// checkStockTools checks the bag with sha256sum, sha512sum, mactime and skopeo.
func checkStockTools(t *testing.T, bag string, c *container) {
	t.Helper()
	run := func(dir string, name string, args ...string) string {
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run(bag, "sha256sum", "--quiet", "-c", "manifest-sha256.txt")
	run(bag, "sha512sum", "--quiet", "-c", "manifest-sha512.txt")
	run(bag, "sha256sum", "--quiet", "-c", "tagmanifest-sha256.txt")
	if tl := run(bag, "mactime", "-b", "data/timeline/bodyfile.txt", "-d"); !strings.Contains(tl, "/var/www/html/shell.php") ||
		!strings.Contains(tl, "/etc/app/config.ini (deleted)") {
		t.Errorf("mactime timeline lacks the changes:\n%s", tl)
	}
	var inspect struct{ Digest string }
	if err := json.Unmarshal([]byte(run(bag, "skopeo", "inspect", "oci:"+filepath.Join(bag, "data/image"))), &inspect); err != nil {
		t.Fatal(err)
	}
	img, err := c.ctr.Image(h.ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if inspect.Digest != img.Target().Digest.String() {
		t.Errorf("skopeo sees manifest %s, containerd has %s", inspect.Digest, img.Target().Digest)
	}
}

// TestCollectPause pauses the task for the capture and resumes it.
func TestCollectPause(t *testing.T) {
	c := attackedForBundle(t, "collect-pause")
	out := filepath.Join(t.TempDir(), "bag")
	h.mustCLI(t, "collect", "--pause", "-o", out, c.id)
	b, err := os.ReadFile(filepath.Join(out, bundle.AcquisitionFile))
	if err != nil {
		t.Fatal(err)
	}
	var acq bundle.Acquisition
	if err := json.Unmarshal(b, &acq); err != nil {
		t.Fatal(err)
	}
	var effects []string
	for _, e := range acq.SideEffects {
		effects = append(effects, e.Action)
	}
	joined := strings.Join(effects, ", ")
	if !acq.Paused || !strings.Contains(joined, "task paused") || !strings.Contains(joined, "task resumed") {
		t.Errorf("paused %v, effects %s", acq.Paused, joined)
	}
	if st, err := c.task.Status(h.ctx(t)); err != nil || st.Status != "running" {
		t.Errorf("task is %v after a paused collect (%v)", st.Status, err)
	}
	h.mustCLI(t, "verify", out)
}

// TestTamperMatrix tampers with copies of one signed bundle, one way each:
// verify must exit 1 and name the cause.
func TestTamperMatrix(t *testing.T) {
	c := attackedForBundle(t, "tamper")
	priv, pub := keyPair(t, "examiner")
	bobPriv, bobPub := keyPair(t, "bob")
	other, _ := keyPair(t, "intruder")
	sealed := filepath.Join(t.TempDir(), "bag")
	h.mustCLI(t, "collect", "-o", sealed, "--sign-key", priv, "--examiner", "alice", c.id)
	h.mustCLI(t, "custody", "add", "--action", "transferred", "--actor", "bob", "--sign-key", bobPriv, sealed)
	h.mustCLI(t, "custody", "add", "--action", "received", "--actor", "carol", "--sign-key", priv, sealed)
	h.mustCLI(t, "verify", "--pubkey", pub, "--pubkey", bobPub, sealed)
	sealedTar := filepath.Join(t.TempDir(), "bag.tar")
	h.mustCLI(t, "collect", "-o", sealedTar, c.id)

	edit := func(p string, fn func([]byte) []byte) func(t *testing.T, bag string) {
		return func(t *testing.T, bag string) {
			b, err := os.ReadFile(filepath.Join(bag, p))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(bag, p), fn(b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	lines := func(fn func([]string) []string) func([]byte) []byte {
		return func(b []byte) []byte {
			ls := strings.SplitAfter(string(b), "\n")
			return []byte(strings.Join(fn(ls[:len(ls)-1]), ""))
		}
	}
	tests := []struct {
		name   string
		tamper func(t *testing.T, bag string)
		want   string
	}{
		{"byte flipped in payload", edit("data/rootfs/changes.tar", func(b []byte) []byte { b[600] ^= 1; return b }),
			"FAIL data/rootfs/changes.tar: digest"},
		{"payload file deleted", func(t *testing.T, bag string) { os.Remove(filepath.Join(bag, "data/timeline/bodyfile.txt")) },
			"FAIL data/timeline/bodyfile.txt: missing"},
		{"extra file in data", func(t *testing.T, bag string) {
			os.WriteFile(filepath.Join(bag, "data/planted.txt"), []byte("x"), 0o644)
		}, "FAIL data/planted.txt: unlisted"},
		{"file renamed", func(t *testing.T, bag string) {
			os.Rename(filepath.Join(bag, "data/container/spec.json"), filepath.Join(bag, "data/container/spec2.json"))
		}, "FAIL data/container/spec.json: missing"},
		{"manifest line edited", edit("manifest-sha256.txt", func(b []byte) []byte {
			return bytes.Replace(b, []byte("data/container/task.json"), []byte("data/container/tusk.json"), 1)
		}),
			"FAIL manifest-sha256.txt: digest"},
		{"bag-info edited", edit("bag-info.txt", func(b []byte) []byte { return append(b, "Contact-Name: mallory\n"...) }),
			"FAIL bag-info.txt: digest"},
		{"tag manifest edited", edit("tagmanifest-sha512.txt", func(b []byte) []byte { b[0] ^= 1; return b }),
			"FAIL tagmanifest-sha512.txt"},
		{"signature edited", edit(bundle.AttestationFile, func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"sig": "`), []byte(`"sig": "AAAA`), 1)
		}), "FAIL attestation.dsse.json: signature"},
		{"signed with another key", func(t *testing.T, bag string) {
			out := filepath.Join(t.TempDir(), "resigned")
			h.mustCLI(t, "collect", "-o", out, "--sign-key", other, c.id)
			b, _ := os.ReadFile(filepath.Join(out, bundle.AttestationFile))
			os.WriteFile(filepath.Join(bag, bundle.AttestationFile), b, 0o644)
		}, "FAIL attestation.dsse.json: signature"},
		{"custody event edited", edit("custody.jsonl", lines(func(l []string) []string {
			l[1] = strings.Replace(l[1], `"actor":"bob"`, `"actor":"eve"`, 1)
			return l
		})), "event 3: does not follow the event before it"},
		{"custody event removed", edit("custody.jsonl", lines(func(l []string) []string { return append(l[:1], l[2:]...) })),
			"has sequence number 3"},
		{"custody events reordered", edit("custody.jsonl", lines(func(l []string) []string { l[1], l[2] = l[2], l[1]; return l })),
			"FAIL custody.jsonl: custody"},
		{"first custody event edited", edit("custody.jsonl", lines(func(l []string) []string {
			l[0] = strings.Replace(l[0], `"actor":"alice"`, `"actor":"eve"`, 1)
			return l
		})), "the sealed acquisition record says collected by \"alice\""},
		{"signed last custody event edited", edit("custody.jsonl", lines(func(l []string) []string {
			l[2] = strings.Replace(l[2], `"actor":"carol"`, `"actor":"eve"`, 1)
			return l
		})), "event 3: signature does not verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bag := filepath.Join(t.TempDir(), "bag")
			if out, err := exec.Command("cp", "-a", sealed, bag).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v %s", err, out)
			}
			tt.tamper(t, bag)
			assertInvalid(t, tt.want, "verify", "--pubkey", pub, "--pubkey", bobPub, bag)
		})
	}
	t.Run("tar truncated", func(t *testing.T) {
		b, err := os.ReadFile(sealedTar)
		if err != nil {
			t.Fatal(err)
		}
		cut := filepath.Join(t.TempDir(), "cut.tar")
		n := len(b) * 2 / 3
		if n%512 == 0 {
			n += 100 // inside an entry, not between two (verify then names the missing files)
		}
		os.WriteFile(cut, b[:n], 0o644)
		assertInvalid(t, "unreadable", "verify", cut)
	})
	t.Run("unsigned newest event needs the recorded head", func(t *testing.T) {
		bag := filepath.Join(t.TempDir(), "bag")
		exec.Command("cp", "-a", sealed, bag).Run()
		head := h.mustCLI(t, "custody", "add", "--action", "analysed", "--actor", "dave", bag)
		recorded := strings.Fields(strings.SplitN(head, "custody head: ", 2)[1])[0]
		edit("custody.jsonl", func(b []byte) []byte { return bytes.Replace(b, []byte(`"actor":"dave"`), []byte(`"actor":"eve"`), 1) })(t, bag)
		v := h.mustCLI(t, "verify", "--pubkey", pub, "--pubkey", bobPub, "--allow-unsigned-custody", bag) // undetectable from the bag alone
		if !strings.Contains(v, "eve (UNPROTECTED: unsigned)") {
			t.Errorf("verify does not mark the unsigned event unprotected:\n%s", v)
		}
		assertInvalid(t, "event 4: is not signed", "verify", "--pubkey", pub, "--pubkey", bobPub, bag)
		assertInvalid(t, "the recorded head is "+recorded, "verify", "--custody-head", recorded, bag)
	})
}

func assertInvalid(t *testing.T, want string, args ...string) {
	t.Helper()
	r := h.cli(t, args...)
	if r.code != 1 {
		t.Fatalf("verify exit %d, want 1\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, want) {
		t.Errorf("verify output lacks %q:\n%s", want, r.stdout)
	}
	if !strings.Contains(r.stderr, "INVALID") {
		t.Errorf("stderr %q", r.stderr)
	}
}

// TestCustodyAppendChangesNothingElse appends events to a directory and a tar
// bundle and checks every other file is byte for byte the same.
func TestCustodyAppendChangesNothingElse(t *testing.T) {
	c := h.runContainer(t, "custody", "overlayfs")
	for _, form := range []string{"bag", "bag.tar.gz"} {
		t.Run(form, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), form)
			h.mustCLI(t, "collect", "-o", out, "--examiner", "alice", c.id)
			before := bundleFiles(t, out)
			h.mustCLI(t, "custody", "add", "--action", "transferred", "--actor", "bob", "--note", "to the lab", out)
			after := bundleFiles(t, out)
			for name, b := range before {
				if name != "custody.jsonl" && !bytes.Equal(b, after[name]) {
					t.Errorf("%s changed", name)
				}
			}
			if len(after) != len(before) || !bytes.HasPrefix(after["custody.jsonl"], before["custody.jsonl"]) {
				t.Errorf("the chain was not appended to: %d files before, %d after", len(before), len(after))
			}
			show := h.mustCLI(t, "custody", "show", out)
			if !strings.Contains(show, "transferred") || !strings.Contains(show, "to the lab") {
				t.Errorf("custody show:\n%s", show)
			}
			h.mustCLI(t, "verify", out)
		})
	}
}

// bundleFiles reads every file of a bundle directory or tar by name.
func bundleFiles(t *testing.T, p string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	if fi, _ := os.Stat(p); fi.IsDir() {
		filepath.Walk(p, func(f string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				b, _ := os.ReadFile(f)
				rel, _ := filepath.Rel(p, f)
				out[rel] = b
			}
			return err
		})
		return out
	}
	dir := extract(t, p)
	for name, b := range bundleFiles(t, dir) {
		out[name] = b
	}
	return out
}

// TestCollectInterrupted interrupts collect while it hashes: SIGINT must
// leave nothing; after SIGKILL, `cleanup` must remove what is left.
func TestCollectInterrupted(t *testing.T) {
	c := h.runContainer(t, "collect-interrupt", "overlayfs")
	h.attack(t, c, `truncate -s 12G /tmp/huge`)
	// The SIGKILL case runs cleanup, which also removes what earlier tests
	// left on purpose: start from a cleaned-up state.
	h.mustCLI(t, "cleanup")
	host := captureHost(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "bag.tar")
			cmd := exec.Command(h.bin, "--address", h.daemon.Address, "-n", h.daemon.Namespace, "collect", "-o", out, c.id)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitForTempMount(t, cmd, &stderr)
			time.Sleep(100 * time.Millisecond)
			cmd.Process.Signal(sig)
			cmd.Wait()
			if sig == syscall.SIGINT {
				if code := cmd.ProcessState.ExitCode(); code != 130 {
					t.Errorf("exit %d after SIGINT: %s", code, stderr.String())
				}
			} else {
				rep := h.mustCLI(t, "cleanup")
				for _, want := range []string{"removed: mount ", "removed: lease ctrforensics-", "removed: partial bag " + out} {
					if !strings.Contains(rep, want) {
						t.Errorf("cleanup did not report %q:\n%s", want, rep)
					}
				}
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("left in the output directory: %v", left)
			}
			compareHost(t, "after "+sig.String(), host, captureHost(t))
		})
	}
}

// TestCollectWithLayersAndJSONReport includes the image's layer blobs, checks
// skopeo can read the layout, and reads verify's JSON report; an unreadable
// path is exit 2.
func TestCollectWithLayersAndJSONReport(t *testing.T) {
	c := h.runContainer(t, "collect-layers", "overlayfs")
	out := filepath.Join(t.TempDir(), "bag")
	h.mustCLI(t, "collect", "--include-image-layers", "--hash", "sha256,sha512,md5", "-o", out, c.id)
	built, err := os.ReadDir(filepath.Join(out, "data/image/blobs/sha256"))
	if err != nil || len(built) != 4 { // manifest, config, two layers
		t.Errorf("blobs: %d (%v), want manifest, config and 2 layers", len(built), err)
	}
	if _, err := os.Stat(filepath.Join(out, "manifest-md5.txt")); err != nil {
		t.Errorf("--hash md5: %v", err)
	}
	if b, err := exec.Command("skopeo", "copy", "oci:"+filepath.Join(out, "data/image"), "dir:"+filepath.Join(t.TempDir(), "copy")).CombinedOutput(); err != nil {
		t.Errorf("skopeo copy of the layout with its layers: %v\n%s", err, b)
	}
	var rep struct {
		Valid        bool   `json:"valid"`
		Signature    string `json:"signature"`
		PayloadFiles int    `json:"payload_files"`
		Problems     []any  `json:"problems"`
	}
	if err := json.Unmarshal([]byte(h.mustCLI(t, "verify", "--format", "json", out)), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Valid || rep.Signature != "unsigned" || rep.PayloadFiles < 10 || len(rep.Problems) != 0 {
		t.Errorf("verify JSON: %+v", rep)
	}
	if r := h.cli(t, "verify", filepath.Join(t.TempDir(), "nothing-here")); r.code != 2 {
		t.Errorf("verify of a missing path: exit %d, want 2", r.code)
	}
	if r := h.cli(t, "collect", "--hash", "md5", "-o", filepath.Join(t.TempDir(), "x"), c.id); r.code != 2 || !strings.Contains(r.stderr, "must include sha256") {
		t.Errorf("--hash md5 alone: exit %d %q", r.code, r.stderr)
	}
}

// TestCollectMultiPlatformImage collects a container of a two-platform image
// of which containerd holds only this host's platform: the other platform's
// manifest is noted as not exported, and the bundle verifies.
//
// Import may store the other platform's blobs too, and the daemon's garbage
// collector removes them at a moment of its choosing; the test removes them
// itself so that the state it collects from is always the same.
func TestCollectMultiPlatformImage(t *testing.T) {
	ctx := h.ctx(t)
	m, err := testimage.MultiPlatformImage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m.Name = "docker.io/ctrforensics/multi-collect:1"
	built, err := m.Build()
	if err != nil {
		t.Fatal(err)
	}
	imgs := h.importArchive(t, built) // this platform's content only
	img := client.NewImage(h.client, imgs[0])
	if err := img.Unpack(ctx, "overlayfs"); err != nil {
		t.Fatal(err)
	}
	removeOtherPlatforms(t, ctx, built)
	ctr, err := h.client.NewContainer(ctx, "multi-collect", client.WithImage(img), client.WithSnapshotter("overlayfs"),
		client.WithNewSnapshot("multi-collect", img), client.WithNewSpec())
	if err != nil {
		t.Fatal(err)
	}
	defer ctr.Delete(ctx, client.WithSnapshotCleanup)
	out := filepath.Join(t.TempDir(), "bag")
	res := h.cli(t, "collect", "-o", out, "multi-collect")
	if res.code != 0 || !strings.Contains(res.stderr, "note: blob ") || !strings.Contains(res.stderr, "another platform, never pulled") ||
		!strings.Contains(res.stderr, "note: tmpfs /dev, /dev/shm, /run: not examined: the container has no running task") ||
		!strings.Contains(res.stdout, "  notes:        3 (on stderr") {
		t.Errorf("collect does not note the missing platform, the missing task and its tmpfs on stderr and count them (exit %d):\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	h.mustCLI(t, "verify", out)
}

// removeOtherPlatforms deletes from the content store every blob of built
// that only platforms other than this host's use, as if they had never been
// pulled.
func removeOtherPlatforms(t *testing.T, ctx context.Context, built *testimage.Built) {
	t.Helper()
	keep := map[digest.Digest]bool{}
	var other []digest.Digest
	for _, p := range built.Platforms {
		blobs := append([]digest.Digest{p.Manifest.Digest, p.Config.Digest}, layerDigests(p)...)
		if p.Manifest.Platform != nil && p.Manifest.Platform.Architecture == runtime.GOARCH {
			for _, d := range blobs {
				keep[d] = true
			}
			continue
		}
		other = append(other, blobs...)
	}
	if len(keep) == 0 {
		t.Skipf("the test image has no %s platform", runtime.GOARCH)
	}
	cs := h.client.ContentStore()
	for _, d := range other {
		if keep[d] {
			continue
		}
		if err := cs.Delete(ctx, d); err != nil && !errdefs.IsNotFound(err) {
			t.Fatalf("remove blob %s of another platform: %v", d, err)
		}
	}
}

// layerDigests returns the digests of built's layer blobs.
func layerDigests(built *testimage.Built) []digest.Digest {
	var ds []digest.Digest
	for _, l := range built.Layers {
		ds = append(ds, l.Digest)
	}
	return ds
}
