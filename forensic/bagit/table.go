package bagit

// entryState says what is stored for one algorithm of one file.
type entryState uint8

const (
	stNone entryState = iota
	stWant            // a manifest's digest is stored; the file was not hashed yet
	stGot             // the computed digest is stored; no manifest line seen yet
	stDone            // both were seen and compared
)

// Entry flags.
const (
	fSeen       uint8 = 1 << iota // a regular file with this path exists
	fOther                        // a non-regular entry (link, device, ...) has this path
	fUnreadable                   // reading the file failed
)

// entry is the compact state of one path: per algorithm, what is stored and
// where in the table's arena of raw digests.
type entry struct {
	slot   [numAlgs]uint32
	state  [numAlgs]entryState
	listed algSet // manifests of the path's region (payload or tag) listing it
	flags  uint8
}

// table holds an entry per path seen in a manifest or in the bag, and the
// raw digests of the entries, one arena per algorithm. Entries and digests
// live in chunks of a bounded size, so that a table of millions of entries
// grows without copying it all.
type table struct {
	index map[string]uint32
	ents  [][]entry
	n     uint32 // number of entries
	arena [numAlgs][][]byte
	used  [numAlgs]uint32 // digests stored per algorithm
}

const (
	entryChunk  = 4096 // entries per chunk
	digestChunk = 4096 // digests per arena chunk
)

func newTable() table {
	return table{index: make(map[string]uint32)}
}

// at returns the entry with index i.
func (t *table) at(i uint32) *entry {
	return &t.ents[i/entryChunk][i%entryChunk]
}

// lookup returns the index of path's entry, creating it.
func (t *table) lookup(path string) uint32 {
	if i, ok := t.index[path]; ok {
		return i
	}
	i := t.n
	if i%entryChunk == 0 {
		t.ents = append(t.ents, newChunk[entry](len(t.ents), entryChunk))
	}
	last := &t.ents[len(t.ents)-1]
	*last = append(*last, entry{})
	t.n++
	t.index[path] = i
	return i
}

// find returns the index of path's entry if there is one.
func (t *table) find(path string) (uint32, bool) {
	i, ok := t.index[path]
	return i, ok
}

// store copies a digest of algorithm a into the arena and returns its slot.
func (t *table) store(a algIndex, sum []byte) uint32 {
	size := algSpecs[a].size
	slot := t.used[a]
	if slot%digestChunk == 0 {
		t.arena[a] = append(t.arena[a], newChunk[byte](len(t.arena[a]), digestChunk*size))
	}
	last := &t.arena[a][len(t.arena[a])-1]
	*last = append(*last, sum[:size]...)
	t.used[a]++
	return slot
}

// newChunk returns chunk number k of a table: the first grows as needed, so
// that small bags stay small; the others are allocated whole.
func newChunk[T any](k, size int) []T {
	if k == 0 {
		return nil
	}
	return make([]T, 0, size)
}

// digest returns the stored digest of algorithm a in slot.
func (t *table) digest(a algIndex, slot uint32) []byte {
	size := algSpecs[a].size
	off := int(slot%digestChunk) * size
	return t.arena[a][slot/digestChunk][off : off+size]
}
