package packages

import (
	"github.com/package-url/packageurl-go"
)

// qualifiers builds purl qualifiers from key, value pairs, leaving out empty
// values.
func qualifiers(kv ...string) packageurl.Qualifiers {
	var q packageurl.Qualifiers
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q = append(q, packageurl.Qualifier{Key: kv[i], Value: kv[i+1]})
		}
	}
	return q
}

// purlOf returns the package URL of a package.
func purlOf(t Type, namespace, name, version string, q packageurl.Qualifiers) string {
	return packageurl.NewPackageURL(string(t), namespace, name, version, q, "").ToString()
}
