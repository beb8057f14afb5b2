package attest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestKeysAndEnvelope(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "k")
	pub, err := GenerateKey(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(prefix + PrivateKeySuffix); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v (%v), want 0600", fi.Mode(), err)
	}
	if _, err := GenerateKey(prefix); err == nil {
		t.Fatal("an existing key was overwritten")
	}
	priv, err := LoadPrivateKey(prefix + PrivateKeySuffix)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadPublicKey(prefix + PublicKeySuffix)
	if err != nil || !loaded.Equal(pub) {
		t.Fatalf("public key round trip: %v", err)
	}
	st := &Statement{Type: StatementType, PredicateType: PredicateType, Predicate: json.RawMessage(`{"case":"x"}`),
		Subject: []Subject{{Name: "tagmanifest-sha256.txt", Digest: map[string]string{"sha256": "ab"}}}}
	env, err := SignStatement(st, priv)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := env.Open(pub); err != nil || got.Subject[0].Name != "tagmanifest-sha256.txt" {
		t.Fatalf("open with the right key: %v", err)
	}
	otherPub, err := GenerateKey(filepath.Join(dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Open(otherPub); !errors.Is(err, ErrBadSignature) {
		t.Errorf("open with another key: %v", err)
	}
	if _, err := env.Open(otherPub, pub); err != nil || !env.Signer(otherPub, pub).Equal(pub) {
		t.Errorf("open with one trusted key of two: %v", err)
	}
	stripped := *env
	stripped.Signatures = nil
	if _, err := stripped.Open(); !errors.Is(err, ErrUnsigned) {
		t.Errorf("an envelope without signatures opened without a key: %v", err)
	}
	if _, err := stripped.Open(pub); !errors.Is(err, ErrUnsigned) {
		t.Errorf("an envelope without signatures opened with a key: %v", err)
	}
	env.Payload = env.Payload[:len(env.Payload)-4] + "AAAA"
	if _, err := env.Open(pub); err == nil {
		t.Error("a changed payload verified")
	}
	if _, err := LoadPrivateKey(prefix + PublicKeySuffix); err == nil {
		t.Error("a public key loaded as a private key")
	}
}

func TestPAE(t *testing.T) {
	if got := string(PAE("a/b", []byte("hello"))); got != "DSSEv1 3 a/b 5 hello" {
		t.Errorf("PAE = %q", got)
	}
}
