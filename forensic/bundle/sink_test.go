package bundle

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ctrforensics/ctrforensics/forensic/custody"
)

// memSink keeps a stored bundle in memory and records a stored event, as a
// sink into object storage does.
type memSink struct {
	name   string
	object []byte
	record []byte
}

func (m *memSink) Name() string { return m.name }

func (m *memSink) Store(_ context.Context, pack func(io.Writer) error, chain []custody.Entry, bag string) (string, error) {
	var buf bytes.Buffer
	if err := pack(&buf); err != nil {
		return "", err
	}
	m.object = buf.Bytes()
	line, err := custody.NextStored(chain, time.Now(), "alice", "", bag, custody.Stored{URL: m.name, Size: int64(buf.Len())}, nil)
	if err != nil {
		return "", err
	}
	for _, e := range chain {
		m.record = append(m.record, e.Line...)
	}
	m.record = append(m.record, line...)
	return custody.LineDigest(line), nil
}

func (m *memSink) open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(m.object)), nil }

// TestStoreToSink stages a bundle for a sink, stores it as a stream and
// verifies the stream, with the chain the sink kept next to it; nothing
// staged is left. A kept chain that does not begin with the bag's own fails.
func TestStoreToSink(t *testing.T) {
	for _, name := range []string{"s3://b/cases/web.tar.gz", "s3://b/web.tar"} {
		t.Run(name, func(t *testing.T) {
			stage := t.TempDir()
			sink := &memSink{name: name}
			w, err := CreateStaged(stage, sink, CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for p, content := range testPayload {
				if err := w.PutStream(p, func(f io.Writer) error { _, err := io.WriteString(f, content); return err }); err != nil {
					t.Fatal(err)
				}
			}
			acq := NewAcquisition(time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC))
			acq.Examiner = "alice"
			if _, err := w.Seal(acq, nil); err != nil {
				t.Fatal(err)
			}
			got, head, err := w.Store(context.Background())
			if err != nil || got != name {
				t.Fatalf("Store = %q, %v", got, err)
			}
			if left, _ := os.ReadDir(stage); len(left) != 0 {
				t.Errorf("left staged: %v", left)
			}
			if strings.HasSuffix(name, ".gz") != (len(sink.object) > 2 && sink.object[0] == 0x1f && sink.object[1] == 0x8b) {
				t.Errorf("%s stored compressed=%v", name, !strings.HasSuffix(name, ".gz"))
			}
			chain, bag, err := ReadCustodyStream(name, bytes.NewReader(sink.object))
			if err != nil || len(chain) != 1 || bag == "" {
				t.Fatalf("ReadCustodyStream: %d events, bag %q, %v", len(chain), bag, err)
			}
			rep, err := VerifyStream(context.Background(), name, sink.open, VerifyOptions{Custody: sink.record, CustodyHead: head})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Valid() || len(rep.Custody) != 2 || rep.Custody[1].Action != custody.ActionStored || rep.Bag != bag {
				t.Errorf("verify: valid=%v problems=%v events=%d bag=%s", rep.Valid(), rep.Problems, len(rep.Custody), rep.Bag)
			}
			forged := append([]byte(strings.Replace(string(sink.record), `"actor":"alice"`, `"actor":"mallory"`, 1)), nil...)
			rep, err = VerifyStream(context.Background(), name, sink.open, VerifyOptions{Custody: forged})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Valid() || !strings.Contains(rep.Problems[0].Detail, "does not begin with the bag's own chain") {
				t.Errorf("a kept chain with an edited first event: %v", rep.Problems)
			}
		})
	}
}

// TestCreateStagedRefusesNonTar: a stored bundle is a tar.
func TestCreateStagedRefusesNonTar(t *testing.T) {
	if _, err := CreateStaged(t.TempDir(), &memSink{name: "s3://b/bag"}, CreateOptions{}); err == nil {
		t.Error("a sink named without .tar was accepted")
	}
}
