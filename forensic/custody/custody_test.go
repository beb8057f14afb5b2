package custody

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

const bag = "sha256:0000000000000000000000000000000000000000000000000000000000000001"

var t0 = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

// chain builds a chain of three events; keys[i], when not nil, signs event i.
func chain(t *testing.T, keys ...ed25519.PrivateKey) []byte {
	t.Helper()
	var buf bytes.Buffer
	var entries []Entry
	for i, action := range []string{ActionCollected, "transferred", "received"} {
		var k ed25519.PrivateKey
		if i < len(keys) {
			k = keys[i]
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

// stripAndRewrite removes every signature, renames bob to mallory and
// recomputes every prev: the attack of issue 13 item 2.
func stripAndRewrite(t *testing.T, signed []byte) []byte {
	t.Helper()
	entries, err := Read(bytes.NewReader(signed))
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	prev := ""
	for _, e := range entries {
		ev := e.Event
		ev.Sig, ev.KeyID, ev.Prev = "", "", prev
		ev.Actor = strings.ReplaceAll(ev.Actor, "bob", "mallory")
		line, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		prev = LineDigest(line)
		out = append(append(out, line...), '\n')
	}
	return out
}

// appendEvent appends an event signed with key (nil: unsigned).
func appendEvent(t *testing.T, c []byte, key ed25519.PrivateKey) []byte {
	t.Helper()
	entries, err := Read(bytes.NewReader(c))
	if err != nil {
		t.Fatal(err)
	}
	line, err := Next(entries, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), "transferred", "mallory", "", bag, key)
	if err != nil {
		t.Fatal(err)
	}
	return append(append([]byte(nil), c...), line...)
}

func TestVerify(t *testing.T) {
	alicePub, alice, _ := ed25519.GenerateKey(rand.Reader)
	bobPub, bob, _ := ed25519.GenerateKey(rand.Reader)
	_, mallory, _ := ed25519.GenerateKey(rand.Reader)
	trusted := []ed25519.PublicKey{alicePub, bobPub}
	signed := chain(t, alice, bob, alice)
	mixed := chain(t, nil, bob)
	want := Expect{Bag: bag, Collector: "alice", CollectedAt: "2026-11-23T08:00:00.000000000Z", Keys: trusted}
	lines := func(fn func([]string) []string) []byte {
		ls := strings.SplitAfter(string(signed), "\n")
		return []byte(strings.Join(fn(ls[:len(ls)-1]), ""))
	}
	tests := []struct {
		name        string
		chain       []byte
		expect      func(e Expect) Expect
		want        string // a problem, "" for none
		unprotected []int
	}{
		{"intact, every event signed", signed, nil, "", nil},
		{"intact, no key given", mixed, func(e Expect) Expect { e.Keys = nil; return e }, "", nil},
		{"middle edited", lines(func(l []string) []string { l[1] = strings.Replace(l[1], "bob", "eve", 1); return l }), nil, "event 3: does not follow", nil},
		{"middle removed", lines(func(l []string) []string { return []string{l[0], l[2]} }), nil, "has sequence number 3", nil},
		{"reordered", lines(func(l []string) []string { return []string{l[0], l[2], l[1]} }), nil, "sequence number", nil},
		{"first removed", lines(func(l []string) []string { return l[1:] }), nil, "sealed acquisition record says collected", nil},
		{"wrong bag", signed, func(e Expect) Expect { e.Bag = "sha256:ff"; return e }, "names bag", nil},
		{"head mismatch", signed, func(e Expect) Expect { e.Head = "sha256:aa"; return e }, "the recorded head is sha256:aa", nil},
		{"empty", nil, nil, "the chain is empty", nil},
		{"signatures stripped, events rewritten", stripAndRewrite(t, signed), nil, "event 2: is not signed", nil},
		{"appended unsigned event", appendEvent(t, signed, nil), nil, "event 4: is not signed", nil},
		{"appended event signed by an untrusted key", appendEvent(t, signed, mallory), nil, "event 4: is signed by key", nil},
		{"only the other examiner's key", signed, func(e Expect) Expect { e.Keys = trusted[1:]; return e }, "event 1: is signed by key", nil},
		{"signed event edited", lines(func(l []string) []string { l[2] = strings.Replace(l[2], "carol", "carla", 1); return l }), nil, "event 3: signature does not verify", nil},
		// Stock tools (jq, Python) read "actor" as mallory; encoding/json takes
		// the last of the case-insensitive duplicates, carol, whose signature holds.
		{"signed event shown as another actor", lines(func(l []string) []string {
			l[2] = strings.Replace(l[2], `"actor":"carol"`, `"actor":"mallory","Actor":"carol"`, 1)
			return l
		}), nil, "event 3: is signed, but its line is not what was signed", nil},
		{"signed event with a repeated field", lines(func(l []string) []string {
			l[2] = strings.Replace(l[2], `"action":"received"`, `"action":"destroyed","action":"received"`, 1)
			return l
		}), nil, "event 3: is signed, but its line is not what was signed", nil},
		{"unsigned allowed, marked unprotected", mixed, func(e Expect) Expect { e.AllowUnsigned = true; return e }, "", []int{1, 3}},
		{"unsigned allowed, stripped first event", stripAndRewrite(t, signed), func(e Expect) Expect {
			e.AllowUnsigned, e.FirstEvent = true, LineDigest(bytes.SplitAfter(signed, []byte("\n"))[0])
			return e
		}, "event 1: is not the collected event the attestation signed", []int{1, 2, 3}},
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
			found := Verify(entries, w)
			problems := strings.Join(found.Problems, "\n")
			if tt.want == "" && problems != "" || tt.want != "" && !strings.Contains(problems, tt.want) {
				t.Errorf("problems %q, want %q", problems, tt.want)
			}
			if fmt.Sprint(found.Unprotected) != fmt.Sprint(tt.unprotected) {
				t.Errorf("unprotected events %v, want %v", found.Unprotected, tt.unprotected)
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

// TestStoredEvent: a signed stored event carries where the bag was stored;
// editing any of it (the object's digest, say) breaks its signature.
func TestStoredEvent(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	first := chain(t, priv)[:bytes.IndexByte(chain(t, priv), '\n')+1]
	entries, err := Read(bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	st := Stored{URL: "s3://evidence/web.tar.gz", Bucket: "evidence", Key: "web.tar.gz", VersionID: "v1", ETag: `"e-2"`,
		Size: 42, SHA256: bag, ChecksumSHA256: "abc=-2"}
	line, err := NextStored(entries, t0.Add(time.Hour), "alice", "", bag, st, priv)
	if err != nil {
		t.Fatal(err)
	}
	full := append(append([]byte(nil), first...), line...)
	want := Expect{Bag: bag, Collector: "alice", CollectedAt: entries[0].Time, Keys: []ed25519.PublicKey{pub}}
	got, err := Read(bytes.NewReader(full))
	if err != nil {
		t.Fatal(err)
	}
	if f := Verify(got, want); len(f.Problems) != 0 || got[1].Action != ActionStored || *got[1].Stored != st {
		t.Fatalf("stored event: %v %+v", f.Problems, got[1].Stored)
	}
	edited := bytes.Replace(full, []byte(`"size":42`), []byte(`"size":43`), 1)
	got, err = Read(bytes.NewReader(edited))
	if err != nil {
		t.Fatal(err)
	}
	if f := Verify(got, want); len(f.Problems) == 0 || !strings.Contains(fmt.Sprint(f.Problems), "signature does not verify") {
		t.Errorf("an edited stored event verified: %v", f.Problems)
	}
}
