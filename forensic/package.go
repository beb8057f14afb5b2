package forensic

// PackageInfo says which installed package owns a changed path and whether
// the path still matches the package manager's record (from the image).
type PackageInfo struct {
	// Name and Version are empty for a path no package owns.
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
	// Manager is the package's type: deb, apk, pypi...
	Manager string `json:"manager,omitempty"`
	// Integrity is ok, modified, config-modified, missing, not-owned or
	// db-changed.
	Integrity string `json:"integrity"`
	// Algorithm, Expected and Actual are the recorded and found digests.
	Algorithm string `json:"algorithm,omitempty"`
	Expected  string `json:"expected,omitempty"`
	Actual    string `json:"actual,omitempty"`
}
