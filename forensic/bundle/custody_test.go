package bundle

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrforensics/ctrforensics/forensic/attest"
	"github.com/ctrforensics/ctrforensics/forensic/custody"
)

// TestCustodyAttacks runs the attacks of issue 13 item 2 on a bundle signed
// at collection and extended by a second examiner with her own key.
func TestCustodyAttacks(t *testing.T) {
	alicePub, alice := testKey(t)
	bobPub, bob := testKey(t)
	_, mallory := testKey(t)
	both := []ed25519.PublicKey{alicePub, bobPub}
	tests := []struct {
		name        string
		attack      func(t *testing.T, bag string)
		opts        VerifyOptions
		want        string // a problem's detail; "" for a valid bundle
		signature   string // prefix of Report.Signature
		unprotected []int
	}{
		{"honest chain", nil, VerifyOptions{Keys: both}, "", "valid", nil},
		{"honest chain, one key", nil, VerifyOptions{Keys: both[:1]}, "event 2: is signed by key", "valid", nil},
		{"signatures stripped and events rewritten", stripCustody, VerifyOptions{Keys: both}, "event 1: is not signed", "valid", nil},
		{"stripped, unsigned allowed", stripCustody, VerifyOptions{Keys: both, AllowUnsignedCustody: true},
			"event 1: is not the collected event the attestation signed", "valid", []int{1, 2}},
		{"appended unsigned event", addEvent(nil), VerifyOptions{Keys: both}, "event 3: is not signed", "valid", nil},
		{"appended unsigned event, allowed", addEvent(nil), VerifyOptions{Keys: both, AllowUnsignedCustody: true}, "", "valid", []int{3}},
		{"appended event by an untrusted key", addEvent(mallory), VerifyOptions{Keys: both}, "event 3: is signed by key", "valid", nil},
		{"attestation with no signature", emptySignatures, VerifyOptions{Keys: both}, "carries no signature", "unsigned", nil},
		{"attestation with no signature, no key", emptySignatures, VerifyOptions{}, "carries no signature", "unsigned", nil},
		{"attestation by an untrusted key", resign(mallory), VerifyOptions{Keys: both}, "does not verify", "invalid", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bag := writeBundle(t, "bag", testPayload, alice)
			if _, err := AddCustody(bag, "transferred", "bob", "to the lab", bob); err != nil {
				t.Fatal(err)
			}
			if tt.attack != nil {
				tt.attack(t, bag)
			}
			rep, err := Verify(context.Background(), bag, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var all []string
			for _, p := range rep.Problems {
				all = append(all, p.Path+": "+p.Check+": "+p.Detail)
			}
			switch {
			case tt.want == "" && !rep.Valid():
				t.Errorf("an honest bundle: problems %q", all)
			case tt.want != "" && !strings.Contains(strings.Join(all, "\n"), tt.want):
				t.Errorf("problems %q, want one with %q", all, tt.want)
			}
			if !strings.HasPrefix(rep.Signature, tt.signature) {
				t.Errorf("signature %q, want %q...", rep.Signature, tt.signature)
			}
			if fmt.Sprint(rep.Unprotected) != fmt.Sprint(tt.unprotected) {
				t.Errorf("unprotected events %v, want %v", rep.Unprotected, tt.unprotected)
			}
		})
	}
}

// stripCustody removes every signature of the chain, renames the actors and
// recomputes the links.
func stripCustody(t *testing.T, bag string) {
	t.Helper()
	p := filepath.Join(bag, CustodyFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := custody.Read(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	prev := ""
	for _, e := range entries {
		ev := e.Event
		ev.Sig, ev.KeyID, ev.Prev, ev.Note = "", "", prev, "rewritten"
		line, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		prev = custody.LineDigest(line)
		out = append(append(out, line...), '\n')
	}
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// addEvent appends a "transferred to mallory" event signed with key (nil:
// unsigned).
func addEvent(key ed25519.PrivateKey) func(*testing.T, string) {
	return func(t *testing.T, bag string) {
		t.Helper()
		if _, err := AddCustody(bag, "transferred", "mallory", "", key); err != nil {
			t.Fatal(err)
		}
	}
}

// emptySignatures removes the attestation's signatures, keeping its statement.
func emptySignatures(t *testing.T, bag string) {
	t.Helper()
	rewriteEnvelope(t, bag, func(e *attest.Envelope) { e.Signatures = []attest.Signature{} })
}

// resign signs the attestation's statement again with key.
func resign(key ed25519.PrivateKey) func(*testing.T, string) {
	return func(t *testing.T, bag string) {
		t.Helper()
		rewriteEnvelope(t, bag, func(e *attest.Envelope) {
			st, err := e.Open()
			if err != nil {
				t.Fatal(err)
			}
			forged, err := attest.SignStatement(st, key)
			if err != nil {
				t.Fatal(err)
			}
			*e = *forged
		})
	}
}

func rewriteEnvelope(t *testing.T, bag string, fn func(*attest.Envelope)) {
	t.Helper()
	p := filepath.Join(bag, AttestationFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var e attest.Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	fn(&e)
	if b, err = json.Marshal(e); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
