package bagit

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"runtime"
	"testing"
	"time"
)

// manyBag generates a packed bag of n one-byte payload files, manifests first,
// without holding it in memory. File i is data/<i/1000>/<i%1000> and holds
// the byte i%256.
type manyBag struct {
	n       int
	hex256  [256]string
	hex512  [256]string
	tagSums [2][]byte // sha256 and sha512 of the tag files, in tagNames order
	info    []byte
}

var manyTagNames = [...]string{bagInfoTxt, bagitTxt, "manifest-sha256.txt", "manifest-sha512.txt"}

func newManyBag(n int) *manyBag {
	m := &manyBag{n: n}
	for i := range 256 {
		s256, s512 := sha256.Sum256([]byte{byte(i)}), sha512.Sum512([]byte{byte(i)})
		m.hex256[i], m.hex512[i] = hex.EncodeToString(s256[:]), hex.EncodeToString(s512[:])
	}
	m.info = fmt.Appendf(nil, "Payload-Oxum: %d.%d\n", n, n)
	for k, newHash := range []func() hash.Hash{sha256.New, sha512.New} {
		for _, name := range manyTagNames {
			h := newHash()
			m.writeTag(h, name)
			m.tagSums[k] = h.Sum(m.tagSums[k])
		}
	}
	return m
}

func manyName(i int) string {
	return string(appendManyName(make([]byte, 0, 12), i))
}

// appendManyName appends "data/DDD/FFF" for file i.
func appendManyName(b []byte, i int) []byte {
	d, f := i/1000, i%1000
	return append(b, 'd', 'a', 't', 'a', '/', byte('0'+d/100), byte('0'+d/10%10), byte('0'+d%10), '/',
		byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
}

// writeTag writes the content of a tag file other than the tag manifests.
func (m *manyBag) writeTag(w io.Writer, name string) {
	switch name {
	case bagitTxt:
		writeBagitTxt(w)
	case bagInfoTxt:
		w.Write(m.info)
	case "manifest-sha256.txt", "manifest-sha512.txt":
		sums := m.hex256[:]
		if name == "manifest-sha512.txt" {
			sums = m.hex512[:]
		}
		line := make([]byte, 0, 256)
		for i := range m.n {
			line = appendManyName(append(append(line[:0], sums[i%256]...), "  "...), i)
			w.Write(append(line, '\n'))
		}
	}
}

func (m *manyBag) tagManifest(k int) []byte {
	var b []byte
	size := []int{32, 64}[k]
	for j, name := range manyTagNames {
		b = fmt.Appendf(b, "%x  %s\n", m.tagSums[k][j*size:(j+1)*size], name)
	}
	return b
}

type sizeWriter struct{ n int64 }

func (s *sizeWriter) Write(b []byte) (int, error) { s.n += int64(len(b)); return len(b), nil }

// write writes the whole archive.
func (m *manyBag) write(w io.Writer) error {
	tw := tar.NewWriter(w)
	mtime := time.Unix(1700000000, 0)
	entry := func(name string, typ byte, size int64) error {
		return tw.WriteHeader(&tar.Header{Name: "bag/" + name, Typeflag: typ, Mode: 0o644, Size: size, ModTime: mtime})
	}
	if err := entry("", tar.TypeDir, 0); err != nil {
		return err
	}
	for _, name := range manyTagNames {
		var s sizeWriter
		m.writeTag(&s, name)
		if err := entry(name, tar.TypeReg, s.n); err != nil {
			return err
		}
		m.writeTag(tw, name)
	}
	for k, name := range []string{"tagmanifest-sha256.txt", "tagmanifest-sha512.txt"} {
		b := m.tagManifest(k)
		if err := entry(name, tar.TypeReg, int64(len(b))); err != nil {
			return err
		}
		tw.Write(b)
	}
	for i := range m.n {
		if i%1000 == 0 {
			if err := entry(fmt.Sprintf("data/%03d/", i/1000), tar.TypeDir, 0); err != nil {
				return err
			}
		}
		if err := entry(manyName(i), tar.TypeReg, 1); err != nil {
			return err
		}
		if _, err := tw.Write([]byte{byte(i)}); err != nil {
			return err
		}
	}
	return tw.Close()
}

func TestManyFiles(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	m := newManyBag(n)
	open := func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			bw := bufio.NewWriterSize(pw, 1<<20)
			err := m.write(bw)
			if err == nil {
				err = bw.Flush()
			}
			pw.CloseWithError(err)
		}()
		return pr, nil
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	peak := sampleHeap(t)
	start := time.Now()
	res, err := verifyTar(context.Background(), open, Options{})
	elapsed := time.Since(start)
	heap := peak()
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Valid() || res.PayloadFiles != int64(n) {
		t.Fatalf("%d files, problems:%s", res.PayloadFiles, problemList(res))
	}
	t.Logf("%d files verified in %v; peak heap in use %d MiB (%d bytes a file), %d MiB allocated in all",
		n, elapsed.Round(time.Millisecond), heap>>20, heap/uint64(n), (after.TotalAlloc-before.TotalAlloc)>>20)
	if limit := uint64(n)*600 + 64<<20; heap > limit { // about twice the live heap, as the GC lets garbage grow
		t.Errorf("peak heap %d MiB, want at most %d MiB", heap>>20, limit>>20)
	}
}
