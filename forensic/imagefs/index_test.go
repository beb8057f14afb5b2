package imagefs

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
)

// memIndex is an IndexStore in memory.
type memIndex struct {
	mu sync.Mutex
	m  map[digest.Digest][]byte
}

func (x *memIndex) Get(d digest.Digest) []byte {
	x.mu.Lock()
	defer x.mu.Unlock()
	return bytes.Clone(x.m[d])
}

func (x *memIndex) Put(d digest.Digest, write func(io.Writer) error) {
	var b bytes.Buffer
	if err := write(&b); err != nil {
		panic(err)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.m == nil {
		x.m = map[digest.Digest][]byte{}
	}
	x.m[d] = b.Bytes()
}

// counted wraps the layers' Open to count the blobs opened.
func counted(layers []Layer, n *atomic.Int32) []Layer {
	out := make([]Layer, len(layers))
	for k, l := range layers {
		open := l.Open
		l.Open = func(ctx context.Context) (io.ReadCloser, error) {
			n.Add(1)
			return open(ctx)
		}
		out[k] = l
	}
	return out
}

// indexedImage is testImage with a hostile layer on top, whose warnings an
// index must give again.
func indexedImage(t *testing.T) []Layer {
	return append(testImage(t), layerOf(t, "gzip", tfile("../escape", "x"), tfile("etc/.wh..wh.meta", ""),
		tent{name: "etc/hosts", typ: tar.TypeReg, body: "h", mode: 0o644, xattrs: map[string]string{"user.b": "2", "user.a": "1"}}))
}

// TestIndexGivesTheSameResults runs every reading of an image without an
// index, then with one twice (the first run stores it, the second reads no
// layer but what Cat must copy): results and warnings are the same.
func TestIndexGivesTheSameResults(t *testing.T) {
	reads := []struct {
		name string
		// maxOpens is how many blobs the run with every index may open
		// beyond the one check of each blob whose index it reads.
		maxOpens int32
		run      func(layers []Layer, opts Options) (string, error)
	}{
		{"files", 0, func(layers []Layer, opts Options) (string, error) {
			es, err := Files(context.Background(), layers, opts)
			return fmt.Sprintf("%+v", es), err
		}},
		{"files with digests", 0, func(layers []Layer, opts Options) (string, error) {
			opts.Digest = true
			es, err := Files(context.Background(), layers, opts)
			return fmt.Sprintf("%+v", es), err
		}},
		{"layers", 0, func(layers []Layer, opts Options) (string, error) {
			reps, err := Layers(context.Background(), layers, opts)
			return fmt.Sprintf("%+v", reps), err
		}},
		{"cat of a file below", 1, func(layers []Layer, opts Options) (string, error) {
			var b bytes.Buffer
			err := Cat(context.Background(), layers, "/etc/passwd", &b, CatOptions{Options: opts, Layer: -1})
			return b.String(), err
		}},
		{"cat of a hard link", 1, func(layers []Layer, opts Options) (string, error) {
			var b bytes.Buffer
			err := Cat(context.Background(), layers, "/usr/bin/su2", &b, CatOptions{Options: opts, Layer: -1})
			return b.String(), err
		}},
		{"cat of a deleted file", 0, func(layers []Layer, opts Options) (string, error) {
			var b bytes.Buffer
			err := Cat(context.Background(), layers, "/tmp/secret", &b, CatOptions{Options: opts, Layer: -1})
			return b.String(), err
		}},
	}
	for _, r := range reads {
		t.Run(r.name, func(t *testing.T) {
			layers := indexedImage(t)
			var plain warnings
			want, wantErr := r.run(layers, Options{Warn: plain.add})
			if len(plain.msgs) == 0 {
				t.Fatal("the hostile layer gave no warning")
			}
			store := &memIndex{}
			for run := range 2 {
				var opens atomic.Int32
				var w warnings
				var indexed []int
				got, err := r.run(counted(layers, &opens), Options{Warn: w.add, Index: store, Indexed: func(k int) { indexed = append(indexed, k) }})
				if got != want || fmt.Sprint(err) != fmt.Sprint(wantErr) {
					t.Errorf("run %d: got %s (%v), want %s (%v)", run, got, err, want, wantErr)
				}
				diffLines(t, fmt.Sprintf("run %d warnings", run), sortedCopy(w.msgs), sortedCopy(plain.msgs))
				if run == 1 && (opens.Load() > int32(len(indexed))+r.maxOpens || len(indexed) == 0) {
					t.Errorf("run with the index opened %d blobs (at most %d besides checking the %d indexed), read %v from the index",
						opens.Load(), r.maxOpens, len(indexed), indexed)
				}
			}
		})
	}
}

// TestIndexIgnoredWhenItDoesNotFit reads layers again when their index is
// corrupt, names another DiffID, or lacks the digests the read needs.
func TestIndexIgnoredWhenItDoesNotFit(t *testing.T) {
	tests := []struct {
		name   string
		spoil  func(layers []Layer, store *memIndex) []Layer
		digest bool
	}{
		{"a flipped byte", func(layers []Layer, store *memIndex) []Layer {
			for d, b := range store.m {
				b[len(b)/2] ^= 1
				store.m[d] = b
			}
			return layers
		}, false},
		{"a truncated index", func(layers []Layer, store *memIndex) []Layer {
			for d, b := range store.m {
				store.m[d] = b[:len(b)-1]
			}
			return layers
		}, false},
		{"another DiffID", func(layers []Layer, _ *memIndex) []Layer {
			out := append([]Layer(nil), layers...)
			for k := range out {
				out[k].DiffID = digest.FromString(fmt.Sprint(k))
			}
			return out
		}, false},
		{"no digests stored", func(layers []Layer, _ *memIndex) []Layer { return layers }, true},
		{"a blob changed since", func(layers []Layer, _ *memIndex) []Layer {
			out := append([]Layer(nil), layers...)
			top := &out[len(out)-1]
			open := top.Open
			top.Open = func(ctx context.Context) (io.ReadCloser, error) {
				rc, err := open(ctx)
				if err != nil {
					return nil, err
				}
				b, err := io.ReadAll(rc)
				rc.Close()
				b[len(b)-1] ^= 1 // the digest no longer matches
				return io.NopCloser(bytes.NewReader(b)), err
			}
			return out
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			layers := indexedImage(t)
			store := &memIndex{}
			if _, err := Files(context.Background(), layers, Options{Index: store}); err != nil {
				t.Fatal(err)
			}
			if len(store.m) != len(layers) {
				t.Fatalf("%d indexes stored for %d layers", len(store.m), len(layers))
			}
			layers = tt.spoil(layers, store)
			var opens atomic.Int32
			indexed := 0
			_, err := Files(context.Background(), counted(layers, &opens), Options{Digest: tt.digest, Index: store, Indexed: func(int) { indexed++ }})
			if tt.name == "another DiffID" || tt.name == "a blob changed since" {
				if err == nil {
					t.Fatalf("%s was accepted", tt.name)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if indexed != 0 || opens.Load() != int32(len(layers)) {
				t.Errorf("%d layers read from the index, %d blobs opened of %d", indexed, opens.Load(), len(layers))
			}
		})
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	slices.Sort(out)
	return out
}

// TestCatChecksIndexedBlobs changes the blob of an indexed layer above the
// one holding a file: Cat, whose blob checks run while it looks the path up,
// fails naming the layer and writes nothing, as it does for a file of that
// layer itself.
func TestCatChecksIndexedBlobs(t *testing.T) {
	for _, tt := range []struct{ path, layer string }{{"/etc/passwd", "layer 3"}, {"/etc/hosts", "layer 3"}} {
		layers := indexedImage(t)
		store := &memIndex{}
		if _, err := Files(context.Background(), layers, Options{Index: store}); err != nil {
			t.Fatal(err)
		}
		top := &layers[len(layers)-1]
		open := top.Open
		top.Open = func(ctx context.Context) (io.ReadCloser, error) {
			rc, err := open(ctx)
			if err != nil {
				return nil, err
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			b[len(b)-1] ^= 1
			return io.NopCloser(bytes.NewReader(b)), err
		}
		var out bytes.Buffer
		err := Cat(context.Background(), layers, tt.path, &out, CatOptions{Options: Options{Index: store}, Layer: -1})
		if err == nil || !strings.Contains(err.Error(), tt.layer+" changed since its index was made") || out.Len() > 0 {
			t.Errorf("cat %s: %v, wrote %q; want an error naming %s and nothing written", tt.path, err, out.String(), tt.layer)
		}
	}
}
