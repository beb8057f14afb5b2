package imagefs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
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
			changeBlob(&out[len(out)-1], 1)
			return out
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			layers, store := indexedStore(t)
			if len(store.m) != len(layers) {
				t.Fatalf("%d indexes stored for %d layers", len(store.m), len(layers))
			}
			layers = tt.spoil(layers, store)
			var opens atomic.Int32
			indexed := 0
			_, err := Files(context.Background(), counted(layers, &opens), Options{Digest: tt.digest, Index: store, Indexed: func(int) { indexed++ }})
			if tt.name == "another DiffID" || tt.name == "a blob changed since" {
				if err == nil || tt.name == "a blob changed since" && !strings.Contains(err.Error(), "layer 3 (sha256:") {
					t.Fatalf("%s was accepted, or the error does not name the layer: %v", tt.name, err)
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

// TestCatChecksIndexedBlobs indexes an image, then changes the blob of one
// layer, for every open or only from the second (the blob check and the read
// of the bytes): Cat, whose blob checks run while it looks the path
// up, fails naming the layer and writes nothing (nor, when the check
// fails, a warning or a link followed); a layer the read never reaches
// changes nothing.
func TestCatChecksIndexedBlobs(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		layer   int // the layer changed
		from    int32
		opts    CatOptions
		wantErr string // "" when Cat must succeed
	}{
		{"a file below the changed layer", "/etc/passwd", 3, 1, CatOptions{Layer: -1}, "layer 3 (sha256:"},
		{"a file of the changed layer", "/etc/hosts", 3, 1, CatOptions{Layer: -1}, "layer 3 (sha256:"},
		// The check and the read of the bytes run at once: either may see
		// the change.
		{"a file of a layer that changes between its two reads", "/etc/hosts", 3, 2, CatOptions{Layer: -1}, "layer 3 (sha256:"},
		{"a symbolic link not followed", "/app/shadow", 3, 1, CatOptions{Layer: -1, NoFollow: true}, "layer 3 (sha256:"},
		{"a hard link to a file of the changed layer", "/usr/bin/su2", 2, 1, CatOptions{Layer: -1}, "layer 2 (sha256:"},
		{"one layer's entry", "/etc/hosts", 3, 1, CatOptions{Layer: 3}, "layer 3 (sha256:"},
		{"one layer's missing entry", "/nothing", 3, 1, CatOptions{Layer: 3}, "layer 3 (sha256:"},
		{"a layer the read never reaches", "/etc/hosts", 0, 1, CatOptions{Layer: 3}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			layers, store := indexedStore(t)
			var want bytes.Buffer
			wantErr := Cat(context.Background(), layers, tt.path, &want, tt.opts)
			changeBlob(&layers[tt.layer], tt.from)
			var out bytes.Buffer
			var told []string
			opts := tt.opts
			opts.Options = Options{Index: store, Warn: func(msg string) { told = append(told, msg) }}
			opts.Followed = func(link, target string) { told = append(told, link+" -> "+target) }
			err := Cat(context.Background(), layers, tt.path, &out, opts)
			if tt.wantErr == "" {
				if fmt.Sprint(err) != fmt.Sprint(wantErr) || out.String() != want.String() {
					t.Errorf("got %q, %v; want %q, %v", out.String(), err, want.String(), wantErr)
				}
				return
			}
			// Warnings and links decided from checked blobs are told even
			// when the bytes read after fail.
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || out.Len() > 0 || len(told) > 0 && tt.from == 1 {
				t.Errorf("got %v, wrote %q, told %q; want an error with %q, nothing written or told", err, out.String(), told, tt.wantErr)
			}
		})
	}
}

// indexedStore returns indexedImage with the index of every layer stored.
func indexedStore(t *testing.T) ([]Layer, *memIndex) {
	t.Helper()
	layers, store := indexedImage(t), &memIndex{}
	if _, err := Files(context.Background(), layers, Options{Index: store}); err != nil {
		t.Fatal(err)
	}
	return layers, store
}

// changeBlob makes l's blob, from its from-th open on, end with a flipped
// byte: its digest no longer matches.
func changeBlob(l *Layer, from int32) {
	open := l.Open
	var opens atomic.Int32
	l.Open = func(ctx context.Context) (io.ReadCloser, error) {
		rc, err := open(ctx)
		if err != nil || opens.Add(1) < from {
			return rc, err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		b[len(b)-1] ^= 1
		return io.NopCloser(bytes.NewReader(b)), err
	}
}

// TestCopyEntryChecksTheBlob reads a file of a layer read from its index
// from a blob that changed since it was checked, and of a layer read in full
// in full again: both fail with errChanged.
func TestCopyEntryChecksTheBlob(t *testing.T) {
	layers := indexedImage(t)
	c := newConfig(Options{}, false)
	lo, err := readLayer(context.Background(), layers, 3, c, false)
	if err != nil {
		t.Fatal(err)
	}
	o := lo.lookup("/etc/hosts")
	if o == nil {
		t.Fatal("no /etc/hosts in layer 3")
	}
	for _, recheck := range []bool{false, true} {
		layers := append([]Layer(nil), layers...)
		changeBlob(&layers[3], 1)
		var out bytes.Buffer
		err := copyEntry(context.Background(), layers, 3, o.rec.ord, &out, c, recheck)
		// Read in full, the flipped last byte fails the gzip trailer first.
		if !errors.Is(err, errChanged) || !recheck && !strings.Contains(err.Error(), "blob digest") {
			t.Errorf("recheck %v: got %v; want errChanged (naming the blob digest without recheck)", recheck, err)
		}
	}
}
