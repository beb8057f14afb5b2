package imagefs

import (
	"hash"
	"io"
)

// Chunks of a hashPipe: at most pipeChunks of pipeChunkSize bytes per layer
// read, allocated as needed.
const (
	pipeChunkSize = 256 << 10
	pipeChunks    = 4
)

// hashPipe hashes what is read through it on a goroutine of its own, a
// chunk at a time, so that a layer's decompression and the hashing of its
// tar (its DiffID) run on two CPUs: the hashing otherwise adds a fifth to
// the time of a gzip layer read alone. The bytes are copied once into the
// chunks; stop ends the goroutine and must be called once reading is over.
type hashPipe struct {
	r    io.Reader
	h    hash.Hash
	cur  []byte        // the chunk being filled
	made int           // chunks allocated
	full chan []byte   // chunks to hash, in order
	free chan []byte   // chunks hashed
	done chan struct{} // closed once the hashing goroutine has returned
	// stopped says full is closed: nothing more is hashed.
	stopped bool
}

func newHashPipe(r io.Reader, h hash.Hash) *hashPipe {
	p := &hashPipe{r: r, h: h, full: make(chan []byte, pipeChunks), free: make(chan []byte, pipeChunks),
		done: make(chan struct{})}
	go p.hash()
	return p
}

// hash hashes the chunks in order and hands them back; free never blocks:
// it holds every chunk at most.
func (p *hashPipe) hash() {
	defer close(p.done)
	for b := range p.full {
		p.h.Write(b)
		p.free <- b[:0]
	}
}

func (p *hashPipe) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if p.stopped {
		return n, err
	}
	for rest := b[:n]; len(rest) > 0; {
		if p.cur == nil {
			p.cur = p.chunk()
		}
		k := copy(p.cur[len(p.cur):cap(p.cur)], rest)
		p.cur, rest = p.cur[:len(p.cur)+k], rest[k:]
		if len(p.cur) == cap(p.cur) {
			// full never blocks either: cur is not in it.
			p.full <- p.cur
			p.cur = nil
		}
	}
	return n, err
}

// chunk returns an empty chunk: a new one while fewer than pipeChunks exist,
// else the next one hashed.
func (p *hashPipe) chunk() []byte {
	select {
	case b := <-p.free:
		return b
	default:
	}
	if p.made < pipeChunks {
		p.made++
		return make([]byte, 0, pipeChunkSize)
	}
	return <-p.free
}

// stop hashes what was read and not hashed yet, and waits for the hashing
// goroutine to return: h then holds the digest of everything read.
func (p *hashPipe) stop() {
	if p.stopped {
		return
	}
	p.stopped = true
	if len(p.cur) > 0 {
		p.full <- p.cur
		p.cur = nil
	}
	close(p.full)
	<-p.done
}
