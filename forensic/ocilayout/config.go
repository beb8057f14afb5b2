package ocilayout

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Extend returns the image config raw with its layers replaced by diffIDs
// (the image's own, some possibly rebuilt, then the new layers'), entry
// appended to its history and its created time set. Every other field of raw,
// those image-spec does not know included, is kept as it is.
func Extend(raw []byte, diffIDs []digest.Digest, entry ocispec.History, created time.Time) ([]byte, error) {
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("decode image config: %w", err)
	}
	if cfg == nil {
		return nil, fmt.Errorf("image config is not a JSON object")
	}
	var history []json.RawMessage
	if h, ok := cfg["history"]; ok && string(h) != "null" {
		if err := json.Unmarshal(h, &history); err != nil {
			return nil, fmt.Errorf("decode image config history: %w", err)
		}
	}
	e, err := json.Marshal(entry)
	if err != nil {
		return nil, err
	}
	set := map[string]any{
		"rootfs":  ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
		"history": append(history, e),
		"created": created.UTC(),
	}
	for k, v := range set {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		cfg[k] = b
	}
	return json.Marshal(cfg) // encoding/json sorts the keys: the same input gives the same bytes
}
