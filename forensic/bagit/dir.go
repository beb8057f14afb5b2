package bagit

import "sort"

// tagEntry is a regular file outside data/.
type tagEntry struct {
	rel  string
	size int64
}

// orderTags sorts tag files in reading order: tag manifests, manifests,
// bagit.txt, bag-info.txt, then the others by path.
func orderTags(tags []tagEntry) []tagEntry {
	rank := func(rel string) int {
		if _, tag, ok := parseManifestName(rel); ok {
			if tag {
				return 0
			}
			return 1
		}
		switch rel {
		case bagitTxt:
			return 2
		case bagInfoTxt:
			return 3
		}
		return 4
	}
	out := append([]tagEntry(nil), tags...)
	sort.SliceStable(out, func(i, j int) bool {
		ri, rj := rank(out[i].rel), rank(out[j].rel)
		if ri != rj {
			return ri < rj
		}
		return out[i].rel < out[j].rel
	})
	return out
}

// joinRel joins a bag-relative directory ("" for the root) and a name.
func joinRel(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// displayRel names a bag-relative directory in messages.
func displayRel(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}
