package snapshot

import "github.com/ctrforensics/ctrforensics/forensic/bundle"

// PartialMarker is in the name of every bundle still being written.
const PartialMarker = bundle.PartialMarker
