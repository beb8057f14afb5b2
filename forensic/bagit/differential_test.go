package bagit

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rawHeader returns a tar header block for name with typeflag typ and size,
// written by archive/tar as a regular file and then retyped, since
// archive/tar refuses to write GNU long-name and PAX headers by hand.
func rawHeader(t testing.TB, name string, typ byte, size int) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	must(t, tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size),
		ModTime: time.Unix(0, 0), Format: tar.FormatUSTAR}))
	blk := append([]byte(nil), buf.Bytes()[:512]...)
	blk[156] = typ
	copy(blk[148:156], "        ")
	sum := 0
	for _, b := range blk {
		sum += int(b)
	}
	copy(blk[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return blk
}

func padBlock(b []byte) []byte {
	return append(b, make([]byte, (512-len(b)%512)%512)...)
}

// paxRecord encodes one PAX extended header record.
func paxRecord(key, value string) string {
	body := " " + key + "=" + value + "\n"
	n := len(body) + 1
	for len(fmt.Sprint(n))+len(body) != n {
		n++
	}
	return fmt.Sprint(n) + body
}

// TestNameDifferential appends to a valid bag an entry that carries two
// names: a GNU long name, which archive/tar uses, and a PAX path, which GNU
// tar uses. archive/tar sees a harmless name; GNU tar extracts the entry
// over a payload file. The verification must report the entry for what it
// is, whatever other check its visible name trips.
func TestNameDifferential(t *testing.T) {
	entries := smallBagEntries(t)
	top, _, _ := strings.Cut(entries[0].hdr.Name, "/")
	valid := writeTarEntries(t, entries)
	body := valid[:len(valid)-1024] // without the end-of-archive marker
	target := top + "/data/a b.txt"
	for _, goName := range []string{top + "/manifest-md5.txt", top + "/tagmanifest-md5.txt",
		top + "/manifest-nope.txt", top + "/tagmanifest-x.txt", top + "/data", top + "/ignored/x"} {
		t.Run(goName, func(t *testing.T) {
			evil := []byte("evil content\n")
			long := []byte(goName + "\x00")
			pax := []byte(paxRecord("path", target))
			var b []byte
			b = append(b, body...)
			b = append(b, rawHeader(t, "././@LongLink", tar.TypeGNULongName, len(long))...)
			b = append(b, padBlock(long)...)
			b = append(b, rawHeader(t, "PaxHeaders/x", tar.TypeXHeader, len(pax))...)
			b = append(b, padBlock(pax)...)
			b = append(b, rawHeader(t, top+"/ignored", tar.TypeReg, len(evil))...)
			b = append(b, padBlock(evil)...)
			b = append(b, make([]byte, 1024)...)
			if gnu, err := exec.LookPath("tar"); err == nil {
				dir := t.TempDir()
				archive := filepath.Join(dir, "bag.tar")
				must(t, os.WriteFile(archive, b, 0o644))
				if out, err := exec.Command(gnu, "-xf", archive, "-C", dir).CombinedOutput(); err != nil {
					t.Fatalf("tar -x: %v %s", err, out)
				}
				if got, _ := os.ReadFile(filepath.Join(dir, target)); !bytes.Equal(got, evil) {
					t.Logf("tar extracted %q as %s, not the crafted content", got, target)
				}
			}
			res := verifyBytes(t, b, Options{})
			if problems := problemList(res); res.Valid() || !strings.Contains(problems, "two names") {
				t.Errorf("an entry named %s for archive/tar and %s for GNU tar: problems %s, want it named", goName, target, problems)
			}
		})
	}
}

// TestGlobalHeaderDifferential puts a PAX global header naming a payload file
// before the last entry of a valid bag: archive/tar skips it, GNU tar renames
// the last entry to that payload file and extracts it over the real one. The
// verification must report it; a global header holding only a comment (git
// archive writes one) stays harmless.
func TestGlobalHeaderDifferential(t *testing.T) {
	entries := smallBagEntries(t)
	top, _, _ := strings.Cut(entries[0].hdr.Name, "/")
	last := writeTarEntries(t, entries[len(entries)-1:])
	head := writeTarEntries(t, entries[:len(entries)-1])
	for _, tt := range []struct {
		record string
		valid  bool
	}{
		{paxRecord("path", top+"/data/a b.txt"), false},
		{paxRecord("comment", "made by hand"), true},
	} {
		var b []byte
		b = append(b, head[:len(head)-1024]...)
		b = append(b, rawHeader(t, "pax_global_header", tar.TypeXGlobalHeader, len(tt.record))...)
		b = append(b, padBlock([]byte(tt.record))...)
		b = append(b, last...)
		if res := verifyBytes(t, b, Options{}); res.Valid() != tt.valid {
			t.Errorf("global header %q: valid %v, want %v: %s", tt.record, res.Valid(), tt.valid, problemList(res))
		}
	}
}
