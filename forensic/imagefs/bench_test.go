package imagefs

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// genSpec describes a generated layer: files new files spread over dirs
// directories (all shipped again), and, above layer 0, replace and delete
// files of layer 0 replaced and whited out.
type genSpec struct {
	k, dirs, files, replace, delete int
	body                            []byte
}

// genLayer writes the tar of a generated layer to w.
func genLayer(w io.Writer, g genSpec) error {
	tw := tar.NewWriter(w)
	mtime := time.Unix(1700000000, 0)
	put := func(name string, typ byte, body []byte) error {
		h := &tar.Header{Name: name, Typeflag: typ, Mode: 0o644, Size: int64(len(body)), ModTime: mtime}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	perDir := g.files / g.dirs
	for d := range g.dirs {
		dir := fmt.Sprintf("usr/share/d%04d/", d)
		if err := put(dir, tar.TypeDir, nil); err != nil {
			return err
		}
		for i := range perDir {
			if err := put(dir+"file-"+strconv.Itoa(g.k)+"-"+strconv.Itoa(i)+".txt", tar.TypeReg, g.body); err != nil {
				return err
			}
		}
		for i := range min(g.replace/g.dirs, perDir) {
			if err := put(dir+"file-0-"+strconv.Itoa(i)+".txt", tar.TypeReg, g.body); err != nil {
				return err
			}
		}
		for i := range min(g.delete/g.dirs, perDir) {
			if err := put(dir+".wh.file-0-"+strconv.Itoa(perDir-1-i)+".txt", tar.TypeReg, nil); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// genImage returns n generated layers: in memory (compressed with comp) when
// stream is false, else generated anew at every Open, never stored.
func genImage(tb testing.TB, n int, g genSpec, comp string, stream bool) []Layer {
	layers := make([]Layer, n)
	for k := range layers {
		g := g
		g.k = k
		if k == 0 {
			g.replace, g.delete = 0, 0
		}
		if stream {
			layers[k] = Layer{MediaType: ocispec.MediaTypeImageLayer, Open: func(context.Context) (io.ReadCloser, error) {
				pr, pw := io.Pipe()
				go func() {
					bw := bufio.NewWriterSize(pw, 256<<10)
					err := genLayer(bw, g)
					if err == nil {
						err = bw.Flush()
					}
					pw.CloseWithError(err)
				}()
				return pr, nil
			}}
			continue
		}
		var buf bytes.Buffer
		if err := genLayer(&buf, g); err != nil {
			tb.Fatal(err)
		}
		blob, mt := compress(tb, comp, buf.Bytes())
		layers[k] = blobLayer(blob, mt, digest.FromBytes(buf.Bytes()))
	}
	return layers
}

// BenchmarkFiles lists a 5-layer image of 100k files (20k per layer over
// 200 directories; layers above the first replace 1000 and delete 200 files of
// the first).
func BenchmarkFiles(b *testing.B) {
	spec := genSpec{dirs: 200, files: 20000, replace: 1000, delete: 200, body: []byte("content of a small file\n")}
	for _, comp := range []string{"none", "gzip"} {
		layers := genImage(b, 5, spec, comp, false)
		for _, hash := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/digest=%v", comp, hash), func(b *testing.B) {
				b.ReportAllocs()
				var n int
				for b.Loop() {
					files, err := Files(context.Background(), layers, Options{Digest: hash})
					if err != nil {
						b.Fatal(err)
					}
					n = len(files)
				}
				b.ReportMetric(float64(n), "entries")
			})
		}
	}
}

// BenchmarkListing1M lists a generated image of a million entries: 5 layers
// of 200k empty files over 1000 directories, generated while read (never
// stored), and reports the peak heap and the peak RSS of the process. Run it
// alone: go test -run '^$' -bench Listing1M -benchtime 1x
func BenchmarkListing1M(b *testing.B) {
	layers := genImage(b, 5, genSpec{dirs: 1000, files: 200000}, "none", true)
	runs := []struct {
		name string
		list func() (int, error)
	}{
		{"walk", func() (int, error) {
			n := 0
			err := Walk(context.Background(), layers, Options{}, func(e *Entry) error {
				n++
				_, err := io.WriteString(io.Discard, e.Path)
				return err
			})
			return n, err
		}},
		{"files", func() (int, error) {
			files, err := Files(context.Background(), layers, Options{})
			return len(files), err
		}},
		{"layers", func() (int, error) {
			n := 0
			_, err := WalkLayers(context.Background(), layers, Options{}, func(r *LayerReport) error {
				for ch := range r.AllChanges() {
					n++
					_, _ = io.WriteString(io.Discard, ch.Path)
				}
				return nil
			})
			return n, err
		}},
	}
	for _, r := range runs {
		b.Run(r.name, func(b *testing.B) {
			var n int
			var err error
			peakHeap, peakRSS := measurePeak(b, func() { n, err = r.list() })
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(n), "entries")
			b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(peakRSS)/(1<<20), "peak-RSS-MiB")
		})
	}
}

// measurePeak runs f b.N times and returns the peak heap (sampled) and the
// peak RSS of the process (VmHWM, reset first).
func measurePeak(b *testing.B, f func()) (heap, rss uint64) {
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("cannot reset the peak RSS: %v", err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			heap = max(heap, sample[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	b.ResetTimer()
	for range b.N {
		f()
	}
	b.StopTimer()
	close(done)
	wg.Wait()
	return heap, vmHWM(b)
}

// vmHWM returns the peak RSS of the process.
func vmHWM(b *testing.B) uint64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
