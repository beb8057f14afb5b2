package bagit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseAlgorithms(t *testing.T) {
	tests := []struct {
		in      string
		want    []Algorithm
		wantErr string
	}{
		{"sha256,sha512", []Algorithm{SHA256, SHA512}, ""},
		{" SHA1 , md5,sha1", []Algorithm{SHA1, MD5}, ""},
		{"sha256,blake3", nil, `"blake3"`},
		{"", nil, `""`},
	}
	for _, tt := range tests {
		got, err := ParseAlgorithms(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseAlgorithms(%q) error = %v, want one naming %s", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseAlgorithms(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
		}
	}
}

// checkSumTool runs "<alg>sum -c" in the bag on its manifest, leaving out the
// lines of names RFC 8493 percent-encodes, which the tool cannot find.
func checkSumTool(t *testing.T, dir string, alg Algorithm) {
	t.Helper()
	for _, tag := range []bool{false, true} {
		name := manifestName(tag, mustIndex(t, alg))
		text, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var kept []string
		encoded := false
		for _, line := range strings.SplitAfter(string(text), "\n") {
			if strings.Contains(line, "%") {
				encoded = encoded || strings.HasSuffix(line, "  data/100%25.txt\n")
				continue
			}
			kept = append(kept, line)
		}
		if !tag && !encoded {
			t.Errorf("%s does not percent-encode data/100%%.txt:\n%s", name, text)
		}
		list := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(list, []byte(strings.Join(kept, "")), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(string(alg)+"sum", "--strict", "-c", list)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%ssum -c %s: %v\n%s", alg, name, err, out)
		}
	}
}

func mustIndex(t *testing.T, a Algorithm) algIndex {
	t.Helper()
	i, ok := lookupAlg(a)
	if !ok {
		t.Fatalf("unknown algorithm %s", a)
	}
	return i
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		algs []Algorithm
		want []Algorithm
	}{
		{"default", nil, []Algorithm{SHA256, SHA512}},
		{"md5 and sha1", []Algorithm{SHA1, MD5}, []Algorithm{MD5, SHA1}},
		{"all", []Algorithm{SHA512, SHA256, SHA1, MD5}, []Algorithm{MD5, SHA1, SHA256, SHA512}},
	}
	const large = 3<<20 + 17
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := makeBag(t, large, tt.algs...)
			var files, size int64
			for _, p := range testPayloads(large) {
				files, size = files+1, size+int64(len(p.data))
			}
			for _, a := range tt.want {
				checkSumTool(t, dir, a)
			}
			paths := []string{dir, packBag(t, dir, false), packBag(t, dir, true)}
			for _, p := range paths {
				checkValid(t, p, tt.want, files, size)
			}
		})
	}
}

// checkValid verifies a bag built by makeBag and checks what Verify returns.
func checkValid(t *testing.T, path string, algs []Algorithm, files, size int64) {
	t.Helper()
	opts := Options{Keep: func(p string) bool { return p == testTag || p == "data/image/index.json" }}
	res, err := Verify(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Valid() {
		t.Fatalf("%s: problems:%s", path, problemList(res))
	}
	if fi, err := os.Lstat(path); err == nil && fi.IsDir() {
		sameAsRoot(t, path, res)
	}
	if !reflect.DeepEqual(res.Algorithms, algs) || res.PayloadFiles != files || res.PayloadBytes != size {
		t.Errorf("%s: algorithms %v, %d files, %d bytes; want %v, %d, %d", path, res.Algorithms, res.PayloadFiles, res.PayloadBytes, algs, files, size)
	}
	oxum := fmt.Sprintf("%d.%d", size, files)
	wantInfo := []Field{{"Source-Organization", "Example"}, {"External-Identifier", "case 42"}, {"Payload-Oxum", oxum}, {"Bagging-Date", time.Now().UTC().Format(time.DateOnly)}}
	if !reflect.DeepEqual(res.Info, wantInfo) {
		t.Errorf("%s: info %v, want %v", path, res.Info, wantInfo)
	}
	if string(res.Files[testTag]) != `{"tool":"ctrforensics"}` || string(res.Files["data/image/index.json"]) != `{"manifests":[]}` || len(res.Files) != 2 {
		t.Errorf("%s: kept files %q", path, res.Files)
	}
	if len(res.SHA256) != 1 {
		t.Errorf("%s: sha256 of blobs: %v", path, res.SHA256)
	}
	for p, sum := range res.SHA256 {
		if !strings.HasSuffix(p, "/"+sum) {
			t.Errorf("%s: blob %s has sha256 %s", path, p, sum)
		}
	}
}

func TestWriterErrors(t *testing.T) {
	tests := []struct {
		name string
		do   func(w *Writer) error
	}{
		{"absolute payload", func(w *Writer) error { return w.WritePayload("/etc/passwd", nil) }},
		{"dotdot payload", func(w *Writer) error { return w.WritePayload("a/../../x", nil) }},
		{"unclean payload", func(w *Writer) error { return w.WritePayload("a//b", nil) }},
		{"empty payload", func(w *Writer) error { return w.WritePayload("", nil) }},
		{"duplicate payload", func(w *Writer) error {
			if err := w.WritePayload("x", nil); err != nil {
				return nil
			}
			return w.WritePayload("x", nil)
		}},
		{"tag under data", func(w *Writer) error { return w.WriteTag("data/x", nil) }},
		{"reserved tag", func(w *Writer) error { return w.WriteTag("manifest-sha256.txt", nil) }},
		{"bagit.txt tag", func(w *Writer) error { return w.WriteTag("bagit.txt", nil) }},
		{"oxum field", func(w *Writer) error { return w.Finish([]Field{{"Payload-Oxum", "1.1"}}) }},
		{"label with colon", func(w *Writer) error { return w.Finish([]Field{{"A:B", "x"}}) }},
		{"value with newline", func(w *Writer) error { return w.Finish([]Field{{"A", "x\ny"}}) }},
		{"open payload at finish", func(w *Writer) error {
			if _, err := w.CreatePayload("open"); err != nil {
				return nil
			}
			return w.Finish(nil)
		}},
		{"write after finish", func(w *Writer) error {
			if err := w.Finish(nil); err != nil {
				return nil
			}
			return w.WritePayload("late", nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := Create(filepath.Join(t.TempDir(), "bag"))
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.do(w); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestCreateRefuses(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dir  string
		algs []Algorithm
	}{
		{"non-empty directory", dir, nil},
		{"a file", filepath.Join(dir, "x"), nil},
		{"unknown algorithm", filepath.Join(dir, "new"), []Algorithm{"crc32"}},
	}
	for _, tt := range tests {
		if _, err := Create(tt.dir, tt.algs...); err == nil {
			t.Errorf("%s: Create succeeded", tt.name)
		}
	}
}

func TestModesAndProgress(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bag")
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := w.CreatePayload("deep/er/file")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // Progress is read concurrently; run with -race.
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				w.Progress()
			}
		}
	}()
	chunk := bytes.Repeat([]byte{7}, 100_000)
	for range 30 {
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if files, n := w.Progress(); files != 1 || n != 3_000_000 {
		t.Errorf("Progress() = %d, %d", files, n)
	}
	if err := w.Finish([]Field{{"Bagging-Date", "2001-02-03"}}); err != nil {
		t.Fatal(err)
	}
	checkMode(t, filepath.Join(dir, "data/deep/er"), os.ModeDir|0o755)
	checkMode(t, filepath.Join(dir, "data/deep/er/file"), 0o644)
	info, err := os.ReadFile(filepath.Join(dir, "bag-info.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "Bagging-Date: 2001-02-03\nPayload-Oxum: 3000000.1\n"; string(info) != want {
		t.Errorf("bag-info.txt = %q, want %q", info, want)
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode() != want {
		t.Errorf("%s has mode %v, want %v", path, st.Mode(), want)
	}
}

func TestPackOrder(t *testing.T) {
	dir := makeBag(t, 10)
	if err := os.WriteFile(filepath.Join(dir, "custody.jsonl"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Pack(dir, &buf, false); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range readTarEntries(t, buf.Bytes()) {
		names = append(names, e.hdr.Name)
	}
	want := []string{
		"bag/", "bag/bagit.txt", "bag/bag-info.txt", "bag/manifest-sha256.txt", "bag/manifest-sha512.txt",
		"bag/tagmanifest-sha256.txt", "bag/tagmanifest-sha512.txt", "bag/custody.jsonl", "bag/metadata/",
		"bag/metadata/acquisition.json", "bag/data/", "bag/data/100%.txt", "bag/data/a b.txt", "bag/data/empty",
		"bag/data/image/", "bag/data/image/blobs/", "bag/data/image/blobs/sha256/",
	}
	if len(names) < len(want) || !reflect.DeepEqual(names[:len(want)], want) {
		t.Errorf("entries %q\nwant prefix %q", names, want)
	}
	res := verifyBytes(t, buf.Bytes(), Options{Extra: func(p string) bool { return p == "custody.jsonl" }})
	if !res.Valid() {
		t.Errorf("problems:%s", problemList(res))
	}
}

func TestPackRefusesSymlink(t *testing.T) {
	dir := makeBag(t, 10)
	if err := os.Symlink("/etc/shadow", filepath.Join(dir, "data/link")); err != nil {
		t.Fatal(err)
	}
	if err := Pack(dir, &bytes.Buffer{}, false); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("Pack = %v, want an error about the symlink", err)
	}
}
