package bundle

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// testKey returns a new ed25519 key pair.
func testKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// testPayload is a small bundle's payload by bag path.
var testPayload = map[string]string{
	ContainerJSON: `{"id":"web"}` + "\n",
	ChangesJSONL:  `{"kind":"A","path":"/var/www/html/shell.php"}` + "\n",
	Bodyfile:      "0|/var/www/html/shell.php|0|-rw-r--r--|0|0|30|0|0|0|0\n",
	ChangesTar:    strings.Repeat("tar", 4096),
}

// writeBundle writes payload with a Writer, seals it with key (nil for none)
// and commits it to name in a new directory.
func writeBundle(t *testing.T, name string, payload map[string]string, key ed25519.PrivateKey) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	w, err := Create(out, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(payload))
	for p := range payload {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		err := w.PutStream(p, func(f io.Writer) error {
			_, err := io.WriteString(f, payload[p])
			return err
		})
		if err != nil {
			w.Abandon()
			t.Fatal(err)
		}
	}
	acq := NewAcquisition(time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC))
	acq.Examiner, acq.Case, acq.Note = "alice", "IR-1", "web shell\nfound"
	if _, err := w.Seal(acq, key); err != nil {
		w.Abandon()
		t.Fatal(err)
	}
	got, err := w.Commit()
	if err != nil {
		w.Abandon()
		t.Fatal(err)
	}
	if got != out {
		t.Fatalf("committed to %s, want %s", got, out)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	pub, priv := testKey(t)
	for _, form := range []string{"bag", "bag.tar", "bag.tar.gz", "bag.tgz"} {
		t.Run(form, func(t *testing.T) {
			out := writeBundle(t, form, testPayload, priv)
			rep, err := Verify(context.Background(), out, VerifyOptions{Keys: []ed25519.PublicKey{pub}})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Valid() {
				t.Fatalf("problems: %+v", rep.Problems)
			}
			if !strings.HasPrefix(rep.Signature, "valid") {
				t.Errorf("signature %q", rep.Signature)
			}
			if len(rep.Custody) != 1 || rep.Custody[0].Actor != "alice" || rep.Custody[0].Sig == "" {
				t.Errorf("custody %+v", rep.Custody)
			}
			if rep.PayloadFiles != int64(len(testPayload)) || rep.Acquisition == nil || rep.Acquisition.Case != "IR-1" {
				t.Errorf("payload %d files, acquisition %+v", rep.PayloadFiles, rep.Acquisition)
			}
			entries, _ := os.ReadDir(filepath.Dir(out))
			if len(entries) != 1 {
				t.Errorf("the output directory holds %v: a partial output was left", entries)
			}
		})
	}
}

func TestAbandonLeavesNothing(t *testing.T) {
	for _, form := range []string{"bag", "bag.tar.gz"} {
		t.Run(form, func(t *testing.T) {
			dir := t.TempDir()
			w, err := Create(filepath.Join(dir, form), CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.PutJSON(ContainerJSON, map[string]string{"id": "web"}); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(w.Partial(), PartialMarker) {
				t.Errorf("partial output %s lacks %s", w.Partial(), PartialMarker)
			}
			w.Abandon()
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("left %v", entries)
			}
		})
	}
}

func TestCreateRefuses(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	if err := os.MkdirAll(filepath.Join(full, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	exists := filepath.Join(dir, "exists.tar")
	if err := os.WriteFile(exists, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"", full, exists} {
		if w, err := Create(p, CreateOptions{}); err == nil {
			w.Abandon()
			t.Errorf("Create(%q) succeeded", p)
		}
	}
	w, err := Create(filepath.Join(dir, "ok"), CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abandon()
	for _, p := range []string{AcquisitionFile, "data", "data/../x", "image/index.json"} {
		if err := w.PutJSON(p, 1); err == nil {
			t.Errorf("PutJSON(%q) outside the payload succeeded", p)
		}
	}
}

// TestTamper changes one thing in a sealed, signed bundle directory and
// checks that Verify names it.
func TestTamper(t *testing.T) {
	pub, priv := testKey(t)
	tests := []struct {
		name   string
		tamper func(t *testing.T, bag string)
		path   string // the problem's path
		check  string
	}{
		{"payload edited", edit(ChangesJSONL, func(b string) string { return b + "{}\n" }), ChangesJSONL, "digest"},
		{"payload removed", remove(Bodyfile), Bodyfile, "missing"},
		{"payload added", write("data/rootfs/extra", "x"), "data/rootfs/extra", "unlisted"},
		{"acquisition edited", edit(AcquisitionFile, func(b string) string { return strings.Replace(b, "alice", "mallo", 1) }), AcquisitionFile, "digest"},
		{"bag-info edited", edit(BagInfo, func(b string) string { return b + "X: y\n" }), BagInfo, "digest"},
		{"tag manifest edited", edit(TagManifest, func(b string) string { return b + "\n" }), TagManifest, "signature"},
		{"attestation removed", remove(AttestationFile), AttestationFile, "signature"},
		{"custody edited", edit(CustodyFile, func(b string) string { return strings.Replace(b, "alice", "mallo", 1) }), CustodyFile, "custody"},
		{"custody removed", remove(CustodyFile), CustodyFile, "custody"},
		{"symlink payload", symlink(ChangesTar, "/etc/passwd"), ChangesTar, "unsafe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bag := writeBundle(t, "bag", testPayload, priv)
			tt.tamper(t, bag)
			rep, err := Verify(context.Background(), bag, VerifyOptions{Keys: []ed25519.PublicKey{pub}})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range rep.Problems {
				if p.Path == tt.path && p.Check == tt.check {
					return
				}
			}
			t.Errorf("no %s problem for %s in %+v", tt.check, tt.path, rep.Problems)
		})
	}
}

func edit(name string, fn func(string) string) func(*testing.T, string) {
	return func(t *testing.T, bag string) {
		p := filepath.Join(bag, name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(fn(string(b))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func remove(name string) func(*testing.T, string) {
	return func(t *testing.T, bag string) {
		if err := os.Remove(filepath.Join(bag, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func write(name, content string) func(*testing.T, string) {
	return func(t *testing.T, bag string) {
		if err := os.WriteFile(filepath.Join(bag, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func symlink(name, target string) func(*testing.T, string) {
	return func(t *testing.T, bag string) {
		remove(name)(t, bag)
		if err := os.Symlink(target, filepath.Join(bag, name)); err != nil {
			t.Fatal(err)
		}
	}
}
