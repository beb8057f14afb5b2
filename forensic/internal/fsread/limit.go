package fsread

// DefaultMaxBytes is the size above which a file is not hashed unless the
// caller raises the limit: large enough for any ordinary file, small enough
// that a hostile sparse file of a terabyte cannot stall an analysis.
const DefaultMaxBytes int64 = 16 << 30
