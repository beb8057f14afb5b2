package history

import (
	"fmt"
	"time"
)

// clockSkew is how much later than the image a history entry may be dated.
const clockSkew = time.Minute

func checkLayers(in *input) []Finding {
	out := diffIDMismatch(in)
	hs := in.cfg.History
	if len(hs) == 0 {
		return out
	}
	steps := layerSteps(Steps(in.cfg, in.layers))
	n, what := len(in.layers), "layers"
	if in.layers == nil {
		n, what = len(in.cfg.RootFS.DiffIDs), "entries in rootfs.diff_ids"
	}
	if steps != n {
		reason := fmt.Sprintf("history records %d layer-creating steps but the image has %d %s", steps, n, what)
		out = append(out, in.finding(RuleLayerMismatch, ConfigIndex, reason, fmt.Sprintf("history empty_layer=false: %d, %s: %d", steps, what, n)))
	}
	return out
}

// diffIDMismatch compares the given layers with the config's
// rootfs.diff_ids.
func diffIDMismatch(in *input) []Finding {
	ids := in.cfg.RootFS.DiffIDs
	if in.layers == nil || len(ids) == 0 {
		return nil
	}
	if len(ids) != len(in.layers) {
		reason := fmt.Sprintf("config rootfs.diff_ids lists %d layers but the image has %d", len(ids), len(in.layers))
		return []Finding{in.finding(RuleLayerMismatch, ConfigIndex, reason, fmt.Sprintf("diff_ids: %d, layers: %d", len(ids), len(in.layers)))}
	}
	for i, l := range in.layers {
		if l.DiffID != ids[i] {
			reason := fmt.Sprintf("layer %d has DiffID %s but config rootfs.diff_ids[%d] is %s", i, l.DiffID, i, ids[i])
			return []Finding{in.finding(RuleLayerMismatch, ConfigIndex, reason, string(l.DiffID)+" != "+string(ids[i]))}
		}
	}
	return nil
}

func checkNoHistory(in *input) []Finding {
	if len(in.cfg.History) > 0 {
		return nil
	}
	n := len(in.layers)
	if in.layers == nil {
		n = len(in.cfg.RootFS.DiffIDs)
	}
	reason := fmt.Sprintf("config has no history: how its %d layers were built cannot be reviewed", n)
	return []Finding{in.finding(RuleNoHistory, ConfigIndex, reason, "history: []")}
}

func checkTimestamps(in *input) []Finding {
	var out []Finding
	img := in.cfg.Created
	imgOK := img != nil && img.Year() >= 1980
	if img != nil && !imgOK {
		reason := "image created time " + stamp(*img) + " is before 1980"
		out = append(out, in.finding(RuleTimestamps, ConfigIndex, reason, "created="+stamp(*img)))
	}
	for i, h := range in.cfg.History {
		if h.Created == nil {
			continue
		}
		t, reason := *h.Created, ""
		switch {
		case t.Year() < 1980:
			reason = "history entry created " + stamp(t) + ", before 1980"
		case imgOK && t.After(img.Add(clockSkew)):
			reason = "history entry created " + stamp(t) + ", after the image itself (" + stamp(*img) + ")"
		}
		if reason != "" {
			out = append(out, in.finding(RuleTimestamps, i, reason, "created="+stamp(t)))
		}
	}
	return out
}

func stamp(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}
