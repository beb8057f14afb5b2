package bagit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestDirUnsafe(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, dir string)
		check  string
		path   string
	}{
		{"symlink in data", func(t *testing.T, dir string) {
			must(t, os.Symlink("/etc/shadow", filepath.Join(dir, "data/rootfs/shadow")))
		}, checkUnsafe, "data/rootfs/shadow"},
		{"payload replaced by a symlink", func(t *testing.T, dir string) {
			must(t, os.Remove(filepath.Join(dir, "data/a b.txt")))
			must(t, os.Symlink("/etc/shadow", filepath.Join(dir, "data/a b.txt")))
		}, checkUnsafe, "data/a b.txt"},
		{"tag file replaced by a symlink", func(t *testing.T, dir string) {
			must(t, os.Remove(filepath.Join(dir, testTag)))
			must(t, os.Symlink("/etc/shadow", filepath.Join(dir, testTag)))
		}, checkUnsafe, testTag},
		{"data is a symlink", func(t *testing.T, dir string) {
			must(t, os.Rename(filepath.Join(dir, "data"), filepath.Join(dir, "../real")))
			must(t, os.Symlink("../real", filepath.Join(dir, "data")))
		}, checkUnsafe, "data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := makeBag(t, 100)
			tt.tamper(t, dir)
			expectProblem(t, dir, tt.check, tt.path)
		})
	}
}

func TestVerifyErrors(t *testing.T) {
	dir := makeBag(t, 10)
	link := filepath.Join(t.TempDir(), "link")
	must(t, os.Symlink(dir, link))
	text := filepath.Join(t.TempDir(), "text")
	must(t, os.WriteFile(text, bytes.Repeat([]byte("not a tar archive\n"), 100), 0o644))
	for _, path := range []string{filepath.Join(dir, "nonexistent"), link, text, "/dev/null"} {
		if _, err := Verify(context.Background(), path, Options{}); err == nil {
			t.Errorf("Verify(%s) succeeded", path)
		}
	}
}

// reorder rewrites a packed bag: payload first, then the tag files, with
// entry names changed by rename.
func reorder(t *testing.T, packed []byte, rename func(string) string) []byte {
	t.Helper()
	entries := readTarEntries(t, packed)
	sort.SliceStable(entries, func(i, j int) bool {
		return strings.Contains(entries[i].hdr.Name, "/data/") && !strings.Contains(entries[j].hdr.Name, "/data/")
	})
	for i := range entries {
		entries[i].hdr.Name = rename(entries[i].hdr.Name)
	}
	return writeTarEntries(t, entries)
}

func TestForeignTar(t *testing.T) {
	keep := func(s string) string { return s }
	tests := []struct {
		name   string
		algs   []Algorithm
		rename func(string) string
		flip   bool
		opens  int
		check  string
		path   string
	}{
		{"payload first", nil, keep, false, 1, "", ""},
		{"payload first, md5 needs a second pass", []Algorithm{MD5, SHA1}, keep, false, 2, "", ""},
		{"payload first, tampered", nil, keep, true, 1, checkDigest, "data/rootfs/changes.tar"},
		{"payload first, md5, tampered", []Algorithm{MD5}, keep, true, 2, checkDigest, "data/rootfs/changes.tar"},
		{"no top-level directory", nil, func(s string) string { return strings.TrimPrefix(s, "bag/") }, false, 1, "", ""},
		{"dot directory", nil, func(s string) string { return "./" + strings.TrimPrefix(s, "bag/") }, false, 1, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := makeBag(t, 2<<20, tt.algs...)
			if tt.flip {
				editFile(t, filepath.Join(dir, "data/rootfs/changes.tar"), flipByte(12345))
			}
			var buf bytes.Buffer
			must(t, Pack(dir, &buf, false))
			data := reorder(t, buf.Bytes(), tt.rename)
			opens := 0
			res, err := verifyTar(context.Background(), func() (io.ReadCloser, error) {
				opens++
				return io.NopCloser(bytes.NewReader(data)), nil
			}, Options{})
			must(t, err)
			if tt.check == "" && !res.Valid() || tt.check != "" && !hasProblem(res, tt.check, tt.path) {
				t.Errorf("want problem %q at %q, got:%s", tt.check, tt.path, problemList(res))
			}
			if opens != tt.opens {
				t.Errorf("archive read %d times, want %d", opens, tt.opens)
			}
		})
	}
}

func TestExtraAndKeepLimit(t *testing.T) {
	dir := makeBag(t, 10)
	must(t, os.WriteFile(filepath.Join(dir, "custody.jsonl"), []byte("{}\n"), 0o644))
	big := bytes.Repeat([]byte("x"), maxKeep+1)
	must(t, os.WriteFile(filepath.Join(dir, "attestation.dsse.json"), big, 0o644))
	extra := func(p string) bool { return p == "custody.jsonl" || p == "attestation.dsse.json" }
	res, err := Verify(context.Background(), dir, Options{Extra: extra, Keep: extra})
	must(t, err)
	if len(res.Problems) != 0 {
		t.Errorf("problems:%s", problemList(res))
	}
	if string(res.Files["custody.jsonl"]) != "{}\n" || res.Files["attestation.dsse.json"] != nil ||
		len(res.Oversized) != 1 || res.Oversized[0] != "attestation.dsse.json" {
		t.Errorf("kept %d files, oversized %v", len(res.Files), res.Oversized)
	}
}

func TestCancel(t *testing.T) {
	dir := makeBag(t, 10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, path := range []string{dir, packBag(t, dir, false), packBag(t, dir, true)} {
		if _, err := Verify(ctx, path, Options{}); !errors.Is(err, context.Canceled) {
			t.Errorf("Verify(%s) = %v, want context.Canceled", path, err)
		}
	}
}

func TestGNUTar(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("no tar")
	}
	tags := []string{"metadata", "bagit.txt", "bag-info.txt", "manifest-sha256.txt", "manifest-sha512.txt", "tagmanifest-sha256.txt", "tagmanifest-sha512.txt", "data"}
	tests := []struct {
		name string
		args func(dir string) []string
	}{
		{"top-level directory", func(dir string) []string { return []string{"-C", filepath.Dir(dir), "-c", "bag"} }},
		{"posix format, gzip", func(dir string) []string {
			return []string{"--format=posix", "-z", "-C", filepath.Dir(dir), "-c", "bag"}
		}},
		{"dot", func(dir string) []string { return []string{"-z", "-C", dir, "-c", "."} }},
		{"root, tag directory first", func(dir string) []string { return append([]string{"-C", dir, "-c"}, tags...) }},
	}
	dir := makeBag(t, 3<<20)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "bag.tar")
			cmd := exec.Command("tar", append([]string{"-f", out}, tt.args(dir)...)...)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v: %s", err, b)
			}
			res, err := Verify(context.Background(), out, Options{})
			must(t, err)
			if !res.Valid() {
				t.Errorf("problems:%s", problemList(res))
			}
		})
	}
}
