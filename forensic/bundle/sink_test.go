package bundle

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ctrforensics/ctrforensics/forensic/custody"
)

// memSink keeps a stored bundle in memory and records a stored event, as a
// sink into object storage does.
type memSink struct {
	name    string
	object  []byte
	record  []byte
	aborted bool
}

func (m *memSink) Name() string { return m.name }

func (m *memSink) Begin(context.Context) (Upload, error) { return &memUpload{sink: m}, nil }

// memUpload is an upload to a memSink.
type memUpload struct {
	sink *memSink
	buf  bytes.Buffer
}

func (u *memUpload) Write(b []byte) (int, error) { return u.buf.Write(b) }

func (u *memUpload) Complete(_ context.Context, chain []custody.Entry, bag string) (string, error) {
	m := u.sink
	m.object = u.buf.Bytes()
	line, err := custody.NextStored(chain, time.Now(), "alice", "", bag, custody.Stored{URL: m.name, Size: int64(len(m.object))}, nil)
	if err != nil {
		return "", err
	}
	for _, e := range chain {
		m.record = append(m.record, e.Line...)
	}
	m.record = append(m.record, line...)
	return custody.LineDigest(line), nil
}

func (u *memUpload) Abort() { u.sink.aborted, u.sink.object = true, nil }

func (m *memSink) open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(m.object)), nil }

// TestStoreToSink writes a bundle as a stream into a sink and verifies the
// stream, with the chain the sink kept next to it. A kept chain that does not
// begin with the bag's own fails.
func TestStoreToSink(t *testing.T) {
	for _, name := range []string{"s3://b/cases/web.tar.gz", "s3://b/web.tar"} {
		t.Run(name, func(t *testing.T) {
			sink := &memSink{name: name}
			w, err := CreateStream(context.Background(), sink, CreateOptions{})
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

// TestCreateStreamRefusesNonTar: a stored bundle is a tar.
func TestCreateStreamRefusesNonTar(t *testing.T) {
	if _, err := CreateStream(context.Background(), &memSink{name: "s3://b/bag"}, CreateOptions{}); err == nil {
		t.Error("a sink named without .tar was accepted")
	}
}

// TestStreamAbandoned: a stream whose fill is not the same twice, or that is
// abandoned, stores nothing.
func TestStreamAbandoned(t *testing.T) {
	sink := &memSink{name: "s3://b/web.tar.gz"}
	w, err := CreateStream(context.Background(), sink, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	err = w.PutStream(ContainerJSON, func(f io.Writer) error {
		calls++
		_, err := io.WriteString(f, strings.Repeat("x", calls))
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "more than the 1 bytes announced") {
		t.Errorf("a fill writing other bytes the second time: %v", err)
	}
	w.Abandon()
	if !sink.aborted || sink.object != nil {
		t.Errorf("abandoned: aborted %v, object of %d bytes", sink.aborted, len(sink.object))
	}
}
