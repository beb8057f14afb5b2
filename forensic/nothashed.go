package forensic

import (
	"encoding/json"
	"fmt"
)

// Reason classifies why a regular file's content was not hashed.
type Reason int

// The reasons a file is not hashed.
const (
	// TooLarge: the file's size exceeds the size limit; it was not read.
	TooLarge Reason = iota + 1
	// GrewTooLarge: the file grew beyond the size limit while it was read.
	GrewTooLarge
	// OpenFailed: the file could not be opened (it vanished, or was replaced
	// by something that is not that regular file).
	OpenFailed
	// ReadFailed: reading the file failed part way.
	ReadFailed
)

// NotHashed says why a regular file's content was not hashed.
type NotHashed struct {
	Why Reason
	// Detail is the human-readable account, e.g. "size 629145600 exceeds the
	// size limit 536870912".
	Detail string
	// Image says it is the image's version of the file that was not hashed.
	Image bool
}

// NewTooLarge is the reason for a file of size bytes over the limit.
func NewTooLarge(size, limit int64) *NotHashed {
	return &NotHashed{Why: TooLarge, Detail: fmt.Sprintf("size %d exceeds the size limit %d", size, limit)}
}

// NewGrewTooLarge is the reason for a file that grew beyond the limit while
// it was read.
func NewGrewTooLarge(limit int64) *NotHashed {
	return &NotHashed{Why: GrewTooLarge, Detail: fmt.Sprintf("grew beyond the size limit %d while it was read", limit)}
}

// NewOpenFailed is the reason for a file that could not be opened.
func NewOpenFailed(err error) *NotHashed {
	return &NotHashed{Why: OpenFailed, Detail: fmt.Sprintf("open failed: %v", err)}
}

// NewReadFailed is the reason for a file whose read failed after n bytes.
func NewReadFailed(n int64, err error) *NotHashed {
	return &NotHashed{Why: ReadFailed, Detail: fmt.Sprintf("read failed after %d bytes: %v", n, err)}
}

// TooLarge reports the reasons that are about the size limit (TooLarge and
// GrewTooLarge), as opposed to a failure.
func (n *NotHashed) TooLarge() bool {
	return n != nil && (n.Why == TooLarge || n.Why == GrewTooLarge)
}

// OfImage returns a copy of n about the image's version of the file.
func (n *NotHashed) OfImage() *NotHashed {
	c := *n
	c.Image = true
	return &c
}

// String is the reason as one line of text.
func (n *NotHashed) String() string {
	if n.Image {
		return "image version: " + n.Detail
	}
	return n.Detail
}

// MarshalJSON encodes the reason as its text, the not_hashed string of a
// change in JSON.
func (n *NotHashed) MarshalJSON() ([]byte, error) {
	return json.Marshal(n.String())
}
