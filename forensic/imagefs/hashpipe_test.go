package imagefs

import (
	"bytes"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestHashPipe reads data of sizes around the chunk size through a piped
// hashReader, in reads of various sizes: the digest is the data's, and
// stopping early (a layer read only up to a file) ends the goroutine.
func TestHashPipe(t *testing.T) {
	data := make([]byte, pipeChunks*pipeChunkSize+pipeChunkSize/2+7)
	for i := range data {
		data[i] = byte(i * 7 / 5)
	}
	tests := []struct {
		size, readSize int
	}{
		{0, 512}, {1, 512}, {pipeChunkSize - 1, 512}, {pipeChunkSize, 8 << 10}, {pipeChunkSize + 1, 1},
		{pipeChunks * pipeChunkSize, 64 << 10}, {len(data), 32<<10 + 3}, {len(data), 1 << 20},
	}
	for _, tt := range tests {
		want := digest.FromBytes(data[:tt.size])
		hr, err := newHashReader(bytes.NewReader(data[:tt.size]), want, false)
		if err != nil {
			t.Fatal(err)
		}
		r := hr.piped()
		buf := make([]byte, tt.readSize)
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf)
		if err != nil || n != int64(tt.size) {
			t.Fatalf("size %d: read %d, %v", tt.size, n, err)
		}
		if err := hr.verify(); err != nil {
			t.Errorf("size %d, reads of %d: %v", tt.size, tt.readSize, err)
		}
		hr.stop() // twice is fine
		if hr.sum() != want {
			t.Errorf("size %d: sum %s, want %s", tt.size, hr.sum(), want)
		}
	}
	// Stopped halfway: the goroutine ends, reads go on unhashed.
	hr, _ := newHashReader(bytes.NewReader(data), digest.FromBytes(data), false)
	hr.piped()
	if _, err := io.CopyN(io.Discard, hr, int64(3*pipeChunkSize)); err != nil {
		t.Fatal(err)
	}
	hr.stop()
	if _, err := io.Copy(io.Discard, hr); err != nil {
		t.Fatal(err)
	}
	if err := hr.verify(); err == nil {
		t.Error("a digest of part of the data matched the whole's")
	}
}
