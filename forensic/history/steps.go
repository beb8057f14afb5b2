package history

import (
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Step is one history entry of an image config, paired with the layer it
// created.
type Step struct {
	// Index is the entry's position in the config's history.
	Index int
	// History is the entry as the config records it.
	History ocispec.History
	// Empty is the entry's empty_layer: the step created no layer.
	Empty bool
	// Layer is the index of the layer the step created, from the base up; -1
	// for an empty step, or when the image has fewer layers than steps.
	Layer int
	// DiffID and Size are the layer's; zero without a layer.
	DiffID digest.Digest
	Size   int64
}

// Steps pairs each history entry with its layer: the n-th entry whose
// empty_layer is false created the n-th layer. layers may be nil, in which
// case the config's rootfs.diff_ids stand for them (and sizes are 0).
// Entries beyond the last layer have none; layers beyond the last entry are
// not listed (the layer-mismatch rule reports both).
func Steps(cfg ocispec.Image, layers []Layer) []Step {
	if layers == nil {
		for _, id := range cfg.RootFS.DiffIDs {
			layers = append(layers, Layer{DiffID: id})
		}
	}
	out := make([]Step, len(cfg.History))
	next := 0
	for i, h := range cfg.History {
		s := Step{Index: i, History: h, Empty: h.EmptyLayer, Layer: -1}
		if !h.EmptyLayer && next < len(layers) {
			s.Layer, s.DiffID, s.Size = next, layers[next].DiffID, layers[next].Size
		}
		if !h.EmptyLayer {
			next++
		}
		out[i] = s
	}
	return out
}

// layerSteps counts the steps that created a layer.
func layerSteps(steps []Step) int {
	n := 0
	for _, s := range steps {
		if !s.Empty {
			n++
		}
	}
	return n
}
