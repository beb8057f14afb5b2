package custody

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"
)

const bag = "sha256:0000000000000000000000000000000000000000000000000000000000000001"

var t0 = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

// chain builds a chain of n events, the second signed with key.
func chain(t *testing.T, key ed25519.PrivateKey) []byte {
	t.Helper()
	var buf bytes.Buffer
	var entries []Entry
	for i, action := range []string{ActionCollected, "transferred", "received"} {
		var k ed25519.PrivateKey
		if i == 1 {
			k = key
		}
		line, err := Next(entries, t0.Add(time.Duration(i)*time.Hour), action, []string{"alice", "bob", "carol"}[i], "", bag, k)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(line)
		if entries, err = Read(bytes.NewReader(buf.Bytes())); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestVerify(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	good := chain(t, key)
	want := Expect{Bag: bag, Collector: "alice", CollectedAt: "2026-11-23T08:00:00.000000000Z", Key: pub}
	lines := func(fn func([]string) []string) []byte {
		ls := strings.SplitAfter(string(good), "\n")
		return []byte(strings.Join(fn(ls[:len(ls)-1]), ""))
	}
	tests := []struct {
		name   string
		chain  []byte
		expect func(e Expect) Expect
		want   string
	}{
		{"intact", good, nil, ""},
		{"middle edited", lines(func(l []string) []string { l[1] = strings.Replace(l[1], "bob", "eve", 1); return l }), nil, "event 3: does not follow"},
		{"middle removed", lines(func(l []string) []string { return []string{l[0], l[2]} }), nil, "has sequence number 3"},
		{"reordered", lines(func(l []string) []string { return []string{l[0], l[2], l[1]} }), nil, "sequence number"},
		{"first removed", lines(func(l []string) []string { return l[1:] }), nil, "sealed acquisition record says collected"},
		{"wrong bag", good, func(e Expect) Expect { e.Bag = "sha256:ff"; return e }, "names bag"},
		{"other key", good, func(e Expect) Expect { e.Key = other; return e }, "event 2: signature does not verify"},
		{"head mismatch", good, func(e Expect) Expect { e.Head = "sha256:aa"; return e }, "the recorded head is sha256:aa"},
		{"empty", nil, nil, "the chain is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, err := Read(bytes.NewReader(tt.chain))
			if err != nil {
				t.Fatal(err)
			}
			w := want
			if tt.expect != nil {
				w = tt.expect(w)
			}
			problems := strings.Join(Verify(entries, w), "\n")
			if tt.want == "" && problems != "" || tt.want != "" && !strings.Contains(problems, tt.want) {
				t.Errorf("problems %q, want %q", problems, tt.want)
			}
		})
	}
}

func TestReadRejectsGarbage(t *testing.T) {
	if _, err := Read(strings.NewReader("{\"seq\":1}\nnot json\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("error %v, want one naming line 2", err)
	}
	if _, err := Read(strings.NewReader(`{"seq":1,"extra":true}` + "\n")); err == nil {
		t.Error("an unknown field was accepted")
	}
}
