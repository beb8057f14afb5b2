package integration

import (
	"archive/tar"
	"crypto/sha256"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestCollectSparseFiles collects a container holding ten 1 GiB sparse files
// (made by truncate, one with data after its hole): the bag stays small, verify
// accepts it, and the changes tar gives back every file's logical content, to
// archive/tar and to GNU tar alike.
func TestCollectSparseFiles(t *testing.T) {
	c := h.runContainer(t, "sparse", "overlayfs")
	h.attack(t, c, `for i in 0 1 2 3 4 5 6 7 8 9; do truncate -s 1G /tmp/sparse$i || exit 1; done
printf tail >> /tmp/sparse0`)
	out := filepath.Join(t.TempDir(), "bag")
	h.mustCLI(t, "collect", "-o", out, c.id)
	var size int64
	var changesTar string
	must(t, filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		size += fi.Size()
		if d.Name() == "changes.tar" {
			changesTar = p
		}
		return err
	}))
	t.Logf("bag of ten 1 GiB sparse files: %d bytes", size)
	if size > 4<<20 {
		t.Errorf("bag is %d bytes, want under 4 MiB", size)
	}
	if v := h.mustCLI(t, "verify", out); !strings.Contains(v, "VALID") {
		t.Errorf("verify: %s", v)
	}
	want := map[string]string{"tmp/sparse0": digestOf(t, io.MultiReader(zeros(1<<30), strings.NewReader("tail")))}
	for _, i := range "123456789" {
		want["tmp/sparse"+string(i)] = zeroDigest(1 << 30)
	}
	f, err := os.Open(changesTar)
	must(t, err)
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		w, ok := want[hdr.Name]
		if !ok {
			continue
		}
		delete(want, hdr.Name)
		if hdr.Name != "tmp/sparse0" && hdr.Name != "tmp/sparse1" { // hashing 10 GiB adds nothing
			if hdr.Size != 1<<30 {
				t.Errorf("%s: size %d", hdr.Name, hdr.Size)
			}
			continue
		}
		if got := digestOf(t, tr); got != w {
			t.Errorf("%s read by archive/tar: %s, want %s", hdr.Name, got, w)
		}
	}
	if len(want) != 0 {
		t.Errorf("not in the changes tar: %v", want)
	}
	dir := t.TempDir()
	if b, err := exec.Command("tar", "-xf", changesTar, "-C", dir, "tmp/sparse0", "tmp/sparse1").CombinedOutput(); err != nil {
		t.Fatalf("GNU tar -xf: %v: %s", err, b)
	}
	for name, w := range map[string]string{"tmp/sparse0": digestOf(t, io.MultiReader(zeros(1<<30), strings.NewReader("tail"))), "tmp/sparse1": zeroDigest(1 << 30)} {
		b, err := exec.Command("sha256sum", filepath.Join(dir, name)).Output()
		must(t, err)
		if got := "sha256:" + strings.Fields(string(b))[0]; got != w {
			t.Errorf("%s restored by GNU tar: %s, want %s", name, got, w)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// zeros reads n zero bytes.
func zeros(n int64) io.Reader { return io.LimitReader(zeroReader{}, n) }

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func digestOf(t testing.TB, r io.Reader) string {
	t.Helper()
	h := sha256.New()
	_, err := io.Copy(h, r)
	must(t, err)
	return digest.NewDigest(digest.SHA256, h).String()
}
