package scan

import (
	"github.com/ctrforensics/ctrforensics/forensic"
)

// capabilityXattr is the extended attribute that holds file capabilities.
const capabilityXattr = "security.capability"

// ChangesInput scans the added and changed entries of a container (changes
// from forensic/diff) in its read-only root filesystem root: cost grows with
// the number of changes, not with the size of the image.
func ChangesInput(root string, changes []forensic.Change) Input {
	return &dirInput{root: root, changes: changes, onlyChanges: true}
}

// TreeInput scans every entry below root. Entries named in changes carry
// their change, so that the rules about what was added after the image still
// apply; changes may be nil.
func TreeInput(root string, changes []forensic.Change) Input {
	return &dirInput{root: root, changes: changes}
}

// dirInput reads a directory tree by descriptor (see input_linux.go).
type dirInput struct {
	root        string
	changes     []forensic.Change
	onlyChanges bool
}

// fileOfChange fills the change-related fields of f.
func fileOfChange(f *File, c *forensic.Change) {
	f.Change = c.Kind
	if c.Base != nil {
		f.BaseMode = c.Base.Mode
		f.BaseCapability = c.Base.Xattrs[capabilityXattr]
	}
}
