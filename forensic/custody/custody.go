// Package custody keeps an evidence bundle's chain of custody: an append-only
// file of events (collected, transferred, received, analysed...), one JSON
// object per line, each naming the bundle by the digest of its tag manifest and
// the previous event by the digest of its line, optionally signed with ed25519.
// Removing, editing or reordering an event breaks the chain; the newest event
// is protected by its signature, or by comparing the chain's head digest with a
// record kept elsewhere.
package custody

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ctrforensics/ctrforensics/forensic/attest"
)

// FileName is the chain's file at the root of a bag.
const FileName = "custody.jsonl"

// ActionCollected is the first event of every chain.
const ActionCollected = "collected"

// ActionStored is the event of a bag stored in object storage; its Stored
// field says where and as what bytes.
const ActionStored = "stored"

// Stored names the object a bag was stored as, as the store reported it on
// completion, and the digest of the whole object as it was sent. A verifier
// reading the object back checks each field against it.
type Stored struct {
	// URL is the object's address, s3://BUCKET/KEY.
	URL    string `json:"url"`
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	// VersionID is the object's version in a versioned (or object-locked)
	// bucket; empty where the store keeps no versions.
	VersionID string `json:"version_id,omitempty"`
	ETag      string `json:"etag"`
	// Size is the object's length in bytes.
	Size int64 `json:"size"`
	// SHA256 is "sha256:<hex>" of the whole object.
	SHA256 string `json:"sha256"`
	// ChecksumSHA256 is the store's own SHA-256 checksum of the object (for
	// a multipart upload, base64 of the digest of the parts' digests
	// followed by "-PARTS"), which the store checked part by part.
	ChecksumSHA256 string `json:"checksum_sha256,omitempty"`
}

// Event is one link of the chain.
type Event struct {
	Seq    int    `json:"seq"`
	Time   string `json:"time"`
	Action string `json:"action"`
	Actor  string `json:"actor"`
	Note   string `json:"note,omitempty"`
	// Bag is the sha256 of the bag's tagmanifest-sha256.txt.
	Bag string `json:"bag"`
	// Prev is the sha256 of the previous event's line; empty for the first.
	Prev string `json:"prev"`
	// Stored is set on a stored event.
	Stored *Stored `json:"stored,omitempty"`
	KeyID  string  `json:"keyid,omitempty"`
	Sig    string  `json:"sig,omitempty"`
}

// Entry is an event as read, with the exact bytes of its line.
type Entry struct {
	Event
	Line []byte
}

// LineDigest is the digest of a line, as the next event's Prev names it.
func LineDigest(line []byte) string {
	sum := sha256.Sum256(bytes.TrimSuffix(line, []byte("\n")))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Head returns the digest of the last line of a chain: what a custodian records
// elsewhere to protect the newest event.
func Head(chain []Entry) string {
	if len(chain) == 0 {
		return ""
	}
	return LineDigest(chain[len(chain)-1].Line)
}

// Next returns the line (with its newline) of a new event following chain,
// signed with key when key is not nil.
func Next(chain []Entry, at time.Time, action, actor, note, bag string, key ed25519.PrivateKey) ([]byte, error) {
	if action == "" || actor == "" {
		return nil, errors.New("a custody event needs an action and an actor")
	}
	ev := Event{Seq: len(chain) + 1, Time: at.UTC().Format("2006-01-02T15:04:05.000000000Z07:00"),
		Action: action, Actor: actor, Note: note, Bag: bag, Prev: Head(chain)}
	return ev.line(key)
}

// NextStored returns the line (with its newline) of a stored event following
// chain: the bag was stored as the object st names.
func NextStored(chain []Entry, at time.Time, actor, note, bag string, st Stored, key ed25519.PrivateKey) ([]byte, error) {
	if actor == "" {
		return nil, errors.New("a custody event needs an actor")
	}
	ev := Event{Seq: len(chain) + 1, Time: at.UTC().Format("2006-01-02T15:04:05.000000000Z07:00"),
		Action: ActionStored, Actor: actor, Note: note, Bag: bag, Prev: Head(chain), Stored: &st}
	return ev.line(key)
}

// line signs ev with key, when key is not nil, and encodes it as a line.
func (ev Event) line(key ed25519.PrivateKey) ([]byte, error) {
	if key != nil {
		ev.KeyID = attest.KeyID(key.Public().(ed25519.PublicKey))
		ev.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(key, ev.signedBytes()))
	}
	line, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	return append(line, '\n'), nil
}

// signedBytes is what an event's signature covers: the event without its
// signature, as JSON.
func (e Event) signedBytes() []byte {
	e.Sig = ""
	b, err := json.Marshal(e)
	if err != nil {
		panic(err) // a struct of strings and ints always marshals
	}
	return b
}

// Read parses a chain. A line that is not an event is an error naming it.
func Read(r io.Reader) ([]Entry, error) {
	var chain []Entry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := append([]byte(nil), sc.Bytes()...)
		var ev Event
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev); err != nil {
			return chain, fmt.Errorf("line %d is not a custody event: %w", n, err)
		}
		if dec.More() || dec.InputOffset() != int64(len(bytes.TrimRight(line, " \t\r"))) {
			return chain, fmt.Errorf("line %d holds more than one custody event", n)
		}
		chain = append(chain, Entry{Event: ev, Line: append(line, '\n')})
	}
	if err := sc.Err(); err != nil {
		return chain, fmt.Errorf("read custody chain: %w", err)
	}
	return chain, nil
}

// Expect is what a chain must agree with.
type Expect struct {
	// Bag is the digest of the bag's tagmanifest-sha256.txt.
	Bag string
	// Collector and CollectedAt are the examiner and time the bag's sealed
	// acquisition record names: the first event must match them.
	Collector   string
	CollectedAt string
	// FirstEvent, when set, is the digest of the first event's line as the
	// bag's signed attestation names it.
	FirstEvent string
	// Keys, when any is given, are the trusted public keys: every event must
	// carry a signature that verifies with one of them.
	Keys []ed25519.PublicKey
	// AllowUnsigned accepts events without a signature under Keys; they are
	// reported as unprotected.
	AllowUnsigned bool
	// Head, when set, must be the chain's head digest.
	Head string
}

// Findings is what Verify found in a chain.
type Findings struct {
	// Problems lists everything wrong; none means the chain holds.
	Problems []string
	// Unprotected are the sequence numbers of the events no trusted
	// signature protects (Expect.AllowUnsigned): anyone could have written
	// or edited them.
	Unprotected []int
}

// Verify checks a chain against what it must agree with.
func Verify(chain []Entry, want Expect) Findings {
	var f Findings
	add := func(seq int, format string, args ...any) {
		f.Problems = append(f.Problems, fmt.Sprintf("event %d: ", seq)+fmt.Sprintf(format, args...))
	}
	if len(chain) == 0 {
		f.Problems = []string{"the chain is empty: a bag's chain starts with its collected event"}
		return f
	}
	first := chain[0]
	if first.Action != ActionCollected || first.Actor != want.Collector || first.Time != want.CollectedAt {
		add(1, "is %s by %q at %s; the sealed acquisition record says collected by %q at %s",
			first.Action, first.Actor, first.Time, want.Collector, want.CollectedAt)
	}
	if want.FirstEvent != "" && LineDigest(first.Line) != want.FirstEvent {
		add(1, "is not the collected event the attestation signed (%s): it was edited, or its signature stripped", want.FirstEvent)
	}
	var last time.Time
	for i, e := range chain {
		seq := i + 1
		for _, msg := range checkLink(chain, i, want.Bag, &last) {
			add(seq, "%s", msg)
		}
		switch msg, signed := checkSignature(e.Event, want.Keys); {
		case msg != "":
			add(seq, "%s", msg)
		case signed && !canonical(e):
			add(seq, "is signed, but its line is not what was signed (a field added, repeated or re-encoded): "+
				"other readers may see another event")
		case !signed && len(want.Keys) > 0 && want.AllowUnsigned:
			f.Unprotected = append(f.Unprotected, seq)
		case !signed && len(want.Keys) > 0:
			add(seq, "is not signed, but every event must be signed by a trusted key (an unsigned event can be forged or rewritten)")
		}
	}
	if want.Head != "" && Head(chain) != want.Head {
		f.Problems = append(f.Problems, fmt.Sprintf("the chain's head is %s, the recorded head is %s: the newest events were removed or edited", Head(chain), want.Head))
	}
	return f
}

// canonical reports whether an entry's line is exactly the encoding of its
// event that Next writes. The signature covers the event as decoded, and a
// decoder keeps the last of repeated (or case-insensitively equal) fields:
// any other bytes could show other readers something the signer never signed.
func canonical(e Entry) bool {
	b, err := json.Marshal(e.Event)
	return err == nil && bytes.Equal(append(b, '\n'), e.Line)
}

// checkLink checks event i's place in the chain, its bag and its time; last
// is the time of the latest event so far.
func checkLink(chain []Entry, i int, bag string, last *time.Time) []string {
	var problems []string
	e, seq, prev := chain[i], i+1, ""
	if i > 0 {
		prev = LineDigest(chain[i-1].Line)
	}
	switch {
	case e.Seq != seq:
		problems = append(problems, fmt.Sprintf("has sequence number %d (removed or reordered events?)", e.Seq))
	case e.Prev != prev:
		problems = append(problems, fmt.Sprintf("does not follow the event before it (prev %s, want %s): an event was removed, edited or moved", orNone(e.Prev), orNone(prev)))
	}
	if e.Bag != bag {
		problems = append(problems, fmt.Sprintf("names bag %s, but this bag's tag manifest is %s", e.Bag, bag))
	}
	t, err := time.Parse(time.RFC3339Nano, e.Time)
	switch {
	case err != nil:
		problems = append(problems, fmt.Sprintf("has a bad time %q", e.Time))
	case t.Before(*last):
		problems = append(problems, "is dated before the event before it")
	default:
		*last = t
	}
	return problems
}

// checkSignature checks an event's signature against the trusted keys: it
// returns why the signature fails ("" when it holds or is not checked) and
// whether a trusted key signed the event. Without keys, nothing is checked.
func checkSignature(e Event, keys []ed25519.PublicKey) (string, bool) {
	if e.Sig == "" || len(keys) == 0 {
		return "", false
	}
	sig, err := base64.StdEncoding.DecodeString(e.Sig)
	if err != nil {
		return "has a signature that is not base64", false
	}
	trusted := false
	for _, k := range keys {
		if ed25519.Verify(k, e.signedBytes(), sig) {
			return "", true
		}
		trusted = trusted || attest.KeyID(k) == e.KeyID
	}
	if !trusted {
		return fmt.Sprintf("is signed by key %s, which is not among the trusted keys", shortID(e.KeyID)), false
	}
	return "signature does not verify with its key (the event was edited after it was signed)", false
}

// shortID shortens a key ID for messages.
func shortID(id string) string {
	if id == "" {
		return "(no key ID)"
	}
	return id[:min(16, len(id))]
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
