package bagit

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
)

const (
	// blockSize is the size of each of the two buffers a digester fills and
	// hashes alternately.
	blockSize = 1 << 20
	// inlineLimit is the largest stream hashed in the calling goroutine: for
	// small files handing blocks to workers costs more than it saves.
	inlineLimit = 64 << 10
	// maxDigestSize is the largest digest size of a known algorithm.
	maxDigestSize = 64
)

// digester hashes one stream at a time with a set of algorithms. Blocks of a
// large stream are hashed by one goroutine per algorithm while the caller
// fills the other buffer, so several algorithms cost about as much as the
// slowest one, and hashing overlaps reading or writing. A digester is not safe
// for concurrent use; close it to stop its goroutines.
type digester struct {
	hashes   [numAlgs]hash.Hash
	work     [numAlgs]chan []byte
	done     chan struct{}
	sums     [numAlgs][]byte
	bufs     [2][]byte
	active   algSet
	cur      int // index of the buffer being filled
	n        int // bytes in bufs[cur]
	inflight int // workers still hashing the other buffer
	handed   bool
	sink     io.Writer
}

func newDigester() *digester {
	return &digester{done: make(chan struct{}, 2*numAlgs)}
}

// reset starts a new stream hashed with algs. Each block is also written to
// sink, when not nil, after it has been handed to the hashers.
func (d *digester) reset(algs algSet, sink io.Writer) {
	d.wait()
	d.active, d.sink, d.n, d.handed = algs, sink, 0, false
	for i := algIndex(0); i < numAlgs; i++ {
		if !algs.has(i) {
			continue
		}
		if d.hashes[i] == nil {
			d.hashes[i] = algSpecs[i].new()
			d.sums[i] = make([]byte, 0, maxDigestSize)
		}
		d.hashes[i].Reset()
	}
	if d.bufs[0] == nil {
		d.bufs[0] = make([]byte, inlineLimit)
	}
}

// room returns the free part of the current buffer, switching from the small
// first buffer to the two full-size ones when it is full.
func (d *digester) room() []byte {
	if d.n == len(d.bufs[d.cur]) && d.n < blockSize {
		big := [2][]byte{make([]byte, blockSize), make([]byte, blockSize)}
		copy(big[0], d.bufs[d.cur][:d.n])
		d.bufs, d.cur = big, 0
	}
	return d.bufs[d.cur][d.n:]
}

// Write buffers p and hashes every full block.
func (d *digester) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		c := copy(d.room(), p)
		d.n += c
		p = p[c:]
		if d.n == blockSize {
			if err := d.flush(); err != nil {
				return total - len(p), err
			}
		}
	}
	return total, nil
}

// readFrom reads r to its end, hashing everything, and returns the number of
// bytes read. An error of r other than io.EOF is returned as it is.
func (d *digester) readFrom(ctx context.Context, r io.Reader) (int64, error) {
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		m, err := fill(r, d.room())
		d.n += m
		total += int64(m)
		if d.n == blockSize {
			if ferr := d.flush(); ferr != nil {
				return total, ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// fill reads into b until it is full or r fails; unlike io.ReadFull it passes
// the reader's own errors through unchanged.
func fill(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// flush hands the current buffer to the hashers, writes it to the sink and
// switches to the other buffer once its hashing is done.
func (d *digester) flush() error {
	b := d.bufs[d.cur][:d.n]
	d.wait()
	d.hand(b)
	d.cur ^= 1
	d.n = 0
	if d.sink != nil {
		if _, err := d.sink.Write(b); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	return nil
}

// hand gives b to the worker of every active algorithm, starting workers on
// first use.
func (d *digester) hand(b []byte) {
	d.handed = true
	for i := algIndex(0); i < numAlgs; i++ {
		if !d.active.has(i) {
			continue
		}
		if d.work[i] == nil {
			d.work[i] = make(chan []byte, 1)
			go hashWorker(d.hashes[i], d.work[i], d.done)
		}
		d.work[i] <- b
		d.inflight++
	}
}

func hashWorker(h hash.Hash, in <-chan []byte, done chan<- struct{}) {
	for b := range in {
		h.Write(b)
		done <- struct{}{}
	}
}

// wait blocks until the workers have hashed the buffer handed to them.
func (d *digester) wait() {
	for ; d.inflight > 0; d.inflight-- {
		<-d.done
	}
}

// finish hashes and writes what is buffered and returns the digests of the
// stream, indexed by algIndex; they stay valid until the next reset.
func (d *digester) finish() (*[numAlgs][]byte, error) {
	if !d.handed && d.n <= inlineLimit {
		b := d.bufs[d.cur][:d.n]
		for i := algIndex(0); i < numAlgs; i++ {
			if d.active.has(i) {
				d.hashes[i].Write(b)
			}
		}
		d.n = 0
		if d.sink != nil {
			if _, err := d.sink.Write(b); err != nil {
				return nil, fmt.Errorf("write: %w", err)
			}
		}
	} else if d.n > 0 {
		if err := d.flush(); err != nil {
			d.wait()
			return nil, err
		}
	}
	d.wait()
	for i := algIndex(0); i < numAlgs; i++ {
		if d.active.has(i) {
			d.sums[i] = d.hashes[i].Sum(d.sums[i][:0])
		}
	}
	return &d.sums, nil
}

// close stops the workers.
func (d *digester) close() {
	d.wait()
	for i, c := range d.work {
		if c != nil {
			close(c)
			d.work[i] = nil
		}
	}
}
