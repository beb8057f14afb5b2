package bagit

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func linkEntry(name, target string, typ byte) tarEntry {
	return tarEntry{tar.Header{Name: name, Linkname: target, Typeflag: typ, Mode: 0o777, ModTime: time.Unix(0, 0)}, nil}
}

// smallBagEntries returns the entries of a small valid packed bag.
func smallBagEntries(t testing.TB) []tarEntry {
	t.Helper()
	var buf bytes.Buffer
	if err := Pack(makeBag(t, 100), &buf, false); err != nil {
		t.Fatal(err)
	}
	return readTarEntries(t, buf.Bytes())
}

func TestHostileTar(t *testing.T) {
	canary := t.TempDir()
	must(t, os.WriteFile(filepath.Join(canary, "secret"), []byte("canary"), 0o600))
	evil := filepath.Join(canary, "evil")
	tests := []struct {
		name  string
		add   []tarEntry
		check string
		path  string
	}{
		{"dotdot", []tarEntry{fileEntry("../x", []byte("x"))}, checkUnsafe, "../x"},
		{"dotdot inside the bag", []tarEntry{fileEntry("bag/data/../../x", []byte("x"))}, checkUnsafe, "bag/data/../../x"},
		{"absolute", []tarEntry{fileEntry(evil, []byte("x"))}, checkUnsafe, evil},
		{"absolute etc", []tarEntry{fileEntry("/etc/x", []byte("x"))}, checkUnsafe, "/etc/x"},
		{"symlink to /etc/shadow", []tarEntry{linkEntry("bag/data/shadow", "/etc/shadow", tar.TypeSymlink)}, checkUnsafe, "data/shadow"},
		{"hard link to /etc/shadow", []tarEntry{linkEntry("bag/data/shadow", "/etc/shadow", tar.TypeLink)}, checkUnsafe, "data/shadow"},
		{"hard link to the canary", []tarEntry{linkEntry("bag/data/secret", filepath.Join(canary, "secret"), tar.TypeLink)}, checkUnsafe, "data/secret"},
		{"fifo", []tarEntry{linkEntry("bag/data/fifo", "", tar.TypeFifo)}, checkUnsafe, "data/fifo"},
		{"device", []tarEntry{linkEntry("bag/data/sda", "", tar.TypeBlock)}, checkUnsafe, "data/sda"},
		{"duplicate payload", []tarEntry{fileEntry("bag/data/a b.txt", []byte("forged"))}, checkUnsafe, "data/a b.txt"},
		{"duplicate manifest", []tarEntry{fileEntry("bag/manifest-sha256.txt", []byte("forged"))}, checkUnsafe, "manifest-sha256.txt"},
		{"outside the bag directory", []tarEntry{fileEntry("other/x", []byte("x"))}, checkUnlisted, "other/x"},
	}
	base := smallBagEntries(t)
	before := [][]string{listTree(t, canary), listTree(t, filepath.Dir(canary))}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries := append(append([]tarEntry(nil), base...), tt.add...)
			plain := writeTarEntries(t, entries)
			for _, data := range [][]byte{plain, gzipBytes(t, plain)} {
				start := time.Now()
				res := verifyBytes(t, data, Options{Keep: func(string) bool { return true }})
				if res.Valid() || !hasProblem(res, tt.check, tt.path) {
					t.Errorf("want a %q problem at %q; got:%s", tt.check, tt.path, problemList(res))
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("took %v", d)
				}
			}
		})
	}
	after := [][]string{listTree(t, canary), listTree(t, filepath.Dir(canary))}
	if !reflect.DeepEqual(before, after) {
		t.Errorf("files appeared:\nbefore %q\nafter  %q", before, after)
	}
	for _, p := range []string{"/etc/x", "../x", "x"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s exists", p)
		}
	}
}

// bombSize is the uncompressed size of the zero file in the gzip bomb.
const bombSize = 4 << 30

// writeBomb writes a small valid bag with an extra 4 GiB file of zeros as a
// tar.gz, generated as it is read.
func writeBomb(w io.Writer, base []tarEntry, compressed *int64) error {
	cw := &countWriter{w: w}
	zw, err := gzip.NewWriterLevel(cw, gzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	for _, e := range base {
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	zero := make([]byte, 1<<20)
	bomb := fileEntry("bag/data/zero", nil).hdr
	bomb.Size = bombSize
	if err := tw.WriteHeader(&bomb); err != nil {
		return err
	}
	for range bombSize / len(zero) {
		if _, err := tw.Write(zero); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	err = zw.Close()
	*compressed = cw.n
	return err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// TestGzipBomb verifies a bag hiding a 4 GiB unlisted entry of zeros in a
// small tar.gz: the entry is reported from its header, so the verification
// returns at once instead of decompressing and hashing 4 GiB.
func TestGzipBomb(t *testing.T) {
	base := smallBagEntries(t)
	var compressed int64
	open := func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeBomb(pw, base, &compressed)) }()
		return pr, nil
	}
	peak := sampleHeap(t)
	start := time.Now()
	res, err := verifyTar(context.Background(), open, Options{})
	elapsed := time.Since(start)
	heap := peak()
	if err != nil {
		t.Fatal(err)
	}
	if !hasProblem(res, checkUnlisted, "data/zero") || !hasProblem(res, checkOxum, bagInfoTxt) {
		t.Errorf("problems:%s", problemList(res))
	}
	t.Logf("gzip bomb: %d bytes uncompressed, verified in %v, peak heap in use %d MiB", bombSize, elapsed, heap>>20)
	if elapsed > time.Second || heap > 64<<20 {
		t.Errorf("took %v and %d MiB of heap", elapsed, heap>>20)
	}
}

// TestUnlistedBudget hides many unlisted entries, each small, behind a valid
// bag: past maxUnlisted bytes of them the verification stops and says so.
func TestUnlistedBudget(t *testing.T) {
	entries := smallBagEntries(t)
	chunk := bytes.Repeat([]byte{'x'}, 1<<20)
	for i := range maxUnlisted>>20 + 2 {
		entries = append(entries, fileEntry(fmt.Sprintf("bag/data/planted-%03d", i), chunk))
	}
	res := verifyBytes(t, writeTarEntries(t, entries), Options{})
	if !hasProblem(res, checkUnlisted, "data/planted-000") || !strings.Contains(problemList(res), "stopped at data/planted-") {
		t.Errorf("problems:%s", problemList(res))
	}
}

// TestTrailingData appends data after a valid bag's end-of-archive marker:
// zero padding is fine, anything else (a smuggled entry, a second gzip
// member, garbage) is reported.
func TestTrailingData(t *testing.T) {
	bag := makeBag(t, 100)
	plain, err := os.ReadFile(packBag(t, bag, false))
	if err != nil {
		t.Fatal(err)
	}
	compressed, err := os.ReadFile(packBag(t, bag, true))
	if err != nil {
		t.Fatal(err)
	}
	smuggled := writeTarEntries(t, []tarEntry{fileEntry("bag/data/shell.php", []byte("<?php eval($_GET['c']); ?>"))})
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name string
		data []byte
		ok   bool
	}{
		{"tar", plain, true},
		{"tar padded with zeros", cat(plain, make([]byte, 10240)), true},
		{"tar.gz", compressed, true},
		{"entry appended to a tar", cat(plain, smuggled), false},
		{"garbage after a tar", cat(plain, []byte("hidden")), false},
		{"second gzip member", cat(compressed, gzipBytes(t, smuggled)), false},
		{"entry appended inside the gzip stream", gzipBytes(t, cat(plain, smuggled)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := verifyBytes(t, tt.data, Options{})
			trailing := strings.Contains(problemList(res), "after the end of the archive")
			if res.Valid() != tt.ok || trailing == tt.ok {
				t.Errorf("valid %v, want %v; problems:%s", res.Valid(), tt.ok, problemList(res))
			}
		})
	}
}

// sampleHeap samples HeapInuse every few milliseconds until the returned
// function is called, which returns the peak.
func sampleHeap(t testing.TB) func() uint64 {
	t.Helper()
	runtime.GC()
	stop, done := make(chan struct{}), make(chan uint64)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				done <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		return <-done
	}
}
