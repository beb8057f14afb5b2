// Package attest signs evidence bundles: ed25519 keys in PEM files (PKCS #8
// private keys, PKIX public keys, readable by openssl), and DSSE envelopes over
// in-toto statements whose subjects are the bundle's tag manifests.
package attest

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// Key pair files written by GenerateKey: PREFIX.key and PREFIX.pub.
const (
	PrivateKeySuffix = ".key"
	PublicKeySuffix  = ".pub"
)

// KeyID names a public key: the hex sha256 of its PKIX encoding.
func KeyID(pub ed25519.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err) // ed25519 keys always marshal
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// GenerateKey writes a new ed25519 key pair to prefix.key (mode 0600) and
// prefix.pub (mode 0644), refusing to overwrite either.
func GenerateKey(prefix string) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	if err := writeNew(prefix+PrivateKeySuffix, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		return nil, err
	}
	if err := writeNew(prefix+PublicKeySuffix, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		os.Remove(prefix + PrivateKeySuffix)
		return nil, err
	}
	return pub, nil
}

func writeNew(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write key %s: %w", path, err)
	}
	if err := f.Chmod(mode); err != nil { // the umask must not widen or narrow it
		f.Close()
		return fmt.Errorf("write key %s: %w", path, err)
	}
	return f.Close()
}

// LoadPrivateKey reads an ed25519 private key from a PEM file.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an ed25519 private key (make one with `ctrforensics key generate`)", path)
	}
	return priv, nil
}

// LoadPublicKey reads an ed25519 public key from a PEM file.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	der, err := readPEM(path, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an ed25519 public key", path)
	}
	return pub, nil
}

func readPEM(path, blockType string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != blockType {
		return nil, fmt.Errorf("%s: no PEM %q block", path, blockType)
	}
	return block.Bytes, nil
}

// Statement is an in-toto v1 statement.
type Statement struct {
	Type          string          `json:"_type"`
	Subject       []Subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// Subject is one artifact a statement is about, by digest.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// In-toto and DSSE identifiers.
const (
	StatementType = "https://in-toto.io/Statement/v1"
	PayloadType   = "application/vnd.in-toto+json"
	// PredicateType is the predicate of an evidence bundle statement.
	PredicateType = "https://github.com/ctrforensics/ctrforensics/evidence-bundle/v1"
)

// Envelope is a DSSE envelope.
type Envelope struct {
	PayloadType string      `json:"payloadType"`
	Payload     string      `json:"payload"`
	Signatures  []Signature `json:"signatures"`
}

// Signature is one DSSE signature.
type Signature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

// PAE is DSSE's pre-authentication encoding of a payload: what is signed.
func PAE(payloadType string, payload []byte) []byte {
	return []byte("DSSEv1 " + strconv.Itoa(len(payloadType)) + " " + payloadType + " " +
		strconv.Itoa(len(payload)) + " " + string(payload))
}

// SignStatement marshals st and wraps it in a DSSE envelope signed with key.
func SignStatement(st *Statement, key ed25519.PrivateKey) (*Envelope, error) {
	payload, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encode statement: %w", err)
	}
	sig := ed25519.Sign(key, PAE(PayloadType, payload))
	return &Envelope{
		PayloadType: PayloadType,
		Payload:     base64.StdEncoding.EncodeToString(payload),
		Signatures:  []Signature{{KeyID: KeyID(key.Public().(ed25519.PublicKey)), Sig: base64.StdEncoding.EncodeToString(sig)}},
	}, nil
}

// ErrBadSignature says no signature of an envelope verifies with the keys.
var ErrBadSignature = errors.New("signature does not verify with the given public key")

// ErrUnsigned says an envelope carries no signature: its statement is not
// protected by anything (DSSE requires at least one signature).
var ErrUnsigned = errors.New("the envelope carries no signature")

// Open decodes an envelope's statement. An envelope without signatures is
// ErrUnsigned. With keys, one of its signatures must verify with one of them;
// without, the signatures are not checked.
func (e *Envelope) Open(keys ...ed25519.PublicKey) (*Statement, error) {
	if e.PayloadType != PayloadType {
		return nil, fmt.Errorf("payload type %q, want %q", e.PayloadType, PayloadType)
	}
	if len(e.Signatures) == 0 {
		return nil, ErrUnsigned
	}
	payload, err := base64.StdEncoding.DecodeString(e.Payload)
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	if len(keys) > 0 && e.signer(payload, keys) == nil {
		return nil, ErrBadSignature
	}
	var st Statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	if st.Type != StatementType {
		return nil, fmt.Errorf("statement type %q, want %q", st.Type, StatementType)
	}
	return &st, nil
}

// Signer returns the first of keys that one of the envelope's signatures
// verifies with, or nil.
func (e *Envelope) Signer(keys ...ed25519.PublicKey) ed25519.PublicKey {
	payload, err := base64.StdEncoding.DecodeString(e.Payload)
	if err != nil {
		return nil
	}
	return e.signer(payload, keys)
}

func (e *Envelope) signer(payload []byte, keys []ed25519.PublicKey) ed25519.PublicKey {
	msg := PAE(e.PayloadType, payload)
	for _, s := range e.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			continue
		}
		for _, k := range keys {
			if ed25519.Verify(k, msg, sig) {
				return k
			}
		}
	}
	return nil
}
