package bagit

import (
	"bytes"
	"strings"
	"testing"
)

// streamBag writes the bag makeBag writes as a stream, with a custody file
// added after Finish, and returns the archive.
func streamBag(t testing.TB, large int, algs ...Algorithm) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewStream(&buf, "bag", algs...)
	if err != nil {
		t.Fatal(err)
	}
	fillBag(t, w, large)
	if err := w.WriteUnlisted("custody.jsonl", []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestStreamMatchesDirectory checks that a bag written as a stream holds
// the same files, byte for byte, as the same bag written in a directory and
// packed, and that it verifies although its tag files come last.
func TestStreamMatchesDirectory(t *testing.T) {
	for _, algs := range [][]Algorithm{nil, {SHA256}, {MD5, SHA1}} {
		stream := streamBag(t, 3<<20, algs...)
		dir := makeBag(t, 3<<20, algs...)
		var packed bytes.Buffer
		if err := Pack(dir, &packed, false); err != nil {
			t.Fatal(err)
		}
		got, want := map[string]string{}, map[string]string{}
		var order []string
		for _, e := range readTarEntries(t, stream) {
			got[e.hdr.Name] = string(e.data)
			order = append(order, e.hdr.Name)
		}
		for _, e := range readTarEntries(t, packed.Bytes()) {
			want[e.hdr.Name] = string(e.data)
		}
		want["bag/custody.jsonl"] = "{}\n"
		if len(got) != len(want) {
			t.Errorf("%v: %d entries, the packed directory has %d: %q", algs, len(got), len(want), order)
		}
		for name, data := range want {
			if g, ok := got[name]; !ok || g != data {
				t.Errorf("%v: %s differs from the packed directory's (present %v)", algs, name, ok)
			}
		}
		if order[0] != "bag/" || order[len(order)-1] != "bag/custody.jsonl" || !strings.HasPrefix(order[2], "bag/data/") {
			t.Errorf("%v: entries in order %q: want the payload first, the custody file last", algs, order)
		}
		res := verifyBytes(t, stream, Options{Extra: func(p string) bool { return p == "custody.jsonl" }})
		if !res.Valid() {
			t.Errorf("%v: problems:%s", algs, problemList(res))
		}
	}
}

// TestStreamTampered checks that a changed byte of a streamed bag's payload
// is found although the manifests come after it.
func TestStreamTampered(t *testing.T) {
	stream := streamBag(t, 100)
	i := bytes.Index(stream, []byte("space in the name"))
	if i < 0 {
		t.Fatal("payload not found in the stream")
	}
	stream[i] ^= 0x20
	res := verifyBytes(t, stream, Options{Extra: func(p string) bool { return p == "custody.jsonl" }})
	if !hasProblem(res, checkDigest, "data/a b.txt") {
		t.Errorf("a changed payload byte is not reported:%s", problemList(res))
	}
}

// TestStreamRefuses checks what a stream cannot do: a file of unknown
// size, two files at once, a file shorter or longer than announced, an
// unlisted file before Finish.
func TestStreamRefuses(t *testing.T) {
	cases := []struct {
		name string
		do   func(w *Writer) error
		want string
	}{
		{"unknown size", func(w *Writer) error { _, err := w.CreatePayload("a"); return err }, "needs the size"},
		{"two at once", func(w *Writer) error {
			if _, err := w.CreatePayloadSized("a", 1); err != nil {
				return err
			}
			_, err := w.CreatePayloadSized("b", 1)
			return err
		}, "one file at a time"},
		{"short", func(w *Writer) error {
			f, err := w.CreatePayloadSized("a", 2)
			if err != nil {
				return err
			}
			f.Write([]byte("x"))
			return f.Close()
		}, "1 bytes written, 2 announced"},
		{"long", func(w *Writer) error {
			f, err := w.CreatePayloadSized("a", 1)
			if err != nil {
				return err
			}
			if _, err := f.Write([]byte("xy")); err != nil {
				return err
			}
			return f.Close() // the content may be buffered until then
		}, "more than the 1 bytes announced"},
		{"unlisted before finish", func(w *Writer) error { return w.WriteUnlisted("custody.jsonl", nil) }, "not finished"},
		{"unlisted payload", func(w *Writer) error {
			if err := w.Finish(nil); err != nil {
				return err
			}
			return w.WriteUnlisted("data/x", nil)
		}, "reserves"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, err := NewStream(&bytes.Buffer{}, "bag")
			if err != nil {
				t.Fatal(err)
			}
			if err := c.do(w); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one saying %q", err, c.want)
			}
		})
	}
	for _, name := range []string{"", "a/b", "..", "data"} {
		if _, err := NewStream(&bytes.Buffer{}, name); err == nil {
			t.Errorf("NewStream accepted the bag name %q", name)
		}
	}
}
