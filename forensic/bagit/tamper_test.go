package bagit

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tamperLarge is the size of data/rootfs/changes.tar in the tampered bags.
const tamperLarge = 1 << 20

func editFile(t *testing.T, path string, edit func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, edit(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

func flipByte(off int) func([]byte) []byte {
	return func(b []byte) []byte {
		b[off] ^= 0x40
		return b
	}
}

func replaceText(old, new string) func([]byte) []byte {
	return func(b []byte) []byte { return bytes.Replace(b, []byte(old), []byte(new), 1) }
}

// editLine replaces the first line of a file that ends with suffix.
func editLine(suffix string, edit func(string) string) func([]byte) []byte {
	return func(b []byte) []byte {
		lines := strings.SplitAfter(string(b), "\n")
		for i, l := range lines {
			if strings.HasSuffix(l, suffix+"\n") {
				lines[i] = edit(l)
				break
			}
		}
		return []byte(strings.Join(lines, ""))
	}
}

func changeDigest(line string) string {
	c := byte('0')
	if line[0] == '0' {
		c = '1'
	}
	return string(c) + line[1:]
}

func TestTamper(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, dir string)
		check  string
		path   string
	}{
		{"payload byte flipped", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "data/rootfs/changes.tar"), flipByte(tamperLarge/2))
		}, checkDigest, "data/rootfs/changes.tar"},
		{"payload deleted", func(t *testing.T, dir string) {
			must(t, os.Remove(filepath.Join(dir, "data/a b.txt")))
		}, checkMissing, "data/a b.txt"},
		{"extra file in data", func(t *testing.T, dir string) {
			must(t, os.WriteFile(filepath.Join(dir, "data/rootfs/extra"), []byte("x"), 0o644))
		}, checkUnlisted, "data/rootfs/extra"},
		{"file renamed: old name", func(t *testing.T, dir string) {
			must(t, os.Rename(filepath.Join(dir, "data/empty"), filepath.Join(dir, "data/empty2")))
		}, checkMissing, "data/empty"},
		{"file renamed: new name", func(t *testing.T, dir string) {
			must(t, os.Rename(filepath.Join(dir, "data/empty"), filepath.Join(dir, "data/empty2")))
		}, checkUnlisted, "data/empty2"},
		{"manifest digest edited", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "manifest-sha256.txt"), editLine("data/a b.txt", changeDigest))
		}, checkDigest, "data/a b.txt"},
		{"manifest edit caught by tag manifest", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "manifest-sha512.txt"), editLine("data/a b.txt", changeDigest))
		}, checkDigest, "manifest-sha512.txt"},
		{"manifest line malformed", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "manifest-sha256.txt"), editLine("data/empty", func(string) string { return "garbage\n" }))
		}, checkManifest, "manifest-sha256.txt"},
		{"bag-info edited", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "bag-info.txt"), replaceText("case 42", "case 43"))
		}, checkDigest, "bag-info.txt"},
		{"payload oxum edited", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "bag-info.txt"), replaceText("Payload-Oxum: ", "Payload-Oxum: 1"))
		}, checkOxum, "bag-info.txt"},
		{"tag manifest edited", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "tagmanifest-sha512.txt"), editLine("bagit.txt", changeDigest))
		}, checkDigest, "bagit.txt"},
		{"tag file edited", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, testTag), replaceText("ctr", "CTR"))
		}, checkDigest, testTag},
		{"unlisted tag file", func(t *testing.T, dir string) {
			must(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644))
		}, checkUnlisted, "notes.txt"},
		{"bagit.txt removed", func(t *testing.T, dir string) {
			must(t, os.Remove(filepath.Join(dir, "bagit.txt")))
		}, checkBagit, "bagit.txt"},
		{"bagit.txt version changed", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "bagit.txt"), replaceText("1.0", "0.96"))
		}, checkBagit, "bagit.txt"},
		{"manifest removed", func(t *testing.T, dir string) {
			must(t, os.Remove(filepath.Join(dir, "manifest-sha256.txt")))
			must(t, os.Remove(filepath.Join(dir, "manifest-sha512.txt")))
		}, checkManifest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := makeBag(t, tamperLarge)
			tt.tamper(t, dir)
			for _, path := range []string{dir, packBag(t, dir, false), packBag(t, dir, true)} {
				expectProblem(t, path, tt.check, tt.path)
			}
		})
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// expectProblem verifies the bag at path and wants a problem check at want.
func expectProblem(t *testing.T, path, check, want string) {
	t.Helper()
	res, err := Verify(context.Background(), path, Options{})
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(path), err)
	}
	if res.Valid() || !hasProblem(res, check, want) {
		t.Errorf("%s: want a %q problem at %q; got:%s", filepath.Base(path), check, want, problemList(res))
	}
	if fi, err := os.Lstat(path); err == nil && fi.IsDir() {
		sameAsRoot(t, path, res)
	}
}

// sameAsRoot checks that verifyRoot, the directory verifier of systems other
// than Linux, finds exactly what verifyDir found.
func sameAsRoot(t *testing.T, dir string, want *Result) {
	t.Helper()
	got, err := verifyRoot(context.Background(), dir, Options{})
	if err != nil {
		t.Fatalf("verifyRoot: %v", err)
	}
	if problemList(got) != problemList(want) || got.PayloadFiles != want.PayloadFiles || got.PayloadBytes != want.PayloadBytes {
		t.Errorf("verifyRoot found:%s\n%d files, %d bytes\nverifyDir found:%s\n%d files, %d bytes",
			problemList(got), got.PayloadFiles, got.PayloadBytes, problemList(want), want.PayloadFiles, want.PayloadBytes)
	}
}

func TestTamperArchive(t *testing.T) {
	dir := makeBag(t, tamperLarge)
	plain := packBag(t, dir, false)
	compressed := packBag(t, dir, true)
	content, err := os.ReadFile(filepath.Join(dir, "data/rootfs/changes.tar"))
	must(t, err)
	tests := []struct {
		name  string
		src   string
		edit  func(t *testing.T, b []byte) []byte
		check string
		path  string
	}{
		{"truncated tar", plain, func(t *testing.T, b []byte) []byte {
			return b[:offsetOf(t, b, content)+tamperLarge/2]
		}, checkUnreadable, "data/rootfs/changes.tar"},
		{"truncated tar.gz", compressed, func(_ *testing.T, b []byte) []byte { return b[:len(b)*3/4] }, checkUnreadable, "data/rootfs/changes.tar"},
		{"byte flipped in a tar's payload", plain, func(t *testing.T, b []byte) []byte {
			return flipByte(offsetOf(t, b, content) + 1000)(b)
		}, checkDigest, "data/rootfs/changes.tar"},
		{"byte flipped in a tar header", plain, func(t *testing.T, b []byte) []byte {
			return flipByte(bytes.Index(b, []byte("bag/data/empty")) + 3)(b)
		}, checkUnreadable, ""},
		{"gzip checksum flipped", compressed, func(_ *testing.T, b []byte) []byte { return flipByte(len(b) - 6)(b) }, checkUnreadable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := os.ReadFile(tt.src)
			must(t, err)
			path := filepath.Join(t.TempDir(), "bag.tar")
			must(t, os.WriteFile(path, tt.edit(t, b), 0o644))
			expectProblem(t, path, tt.check, tt.path)
		})
	}
}

// offsetOf returns where the first 512 bytes of content are in b.
func offsetOf(t *testing.T, b, content []byte) int {
	t.Helper()
	i := bytes.Index(b, content[:512])
	if i < 0 {
		t.Fatal("content not found in the archive")
	}
	return i
}
