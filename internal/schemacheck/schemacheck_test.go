package schemacheck

import (
	"os"
	"testing"
)

// TestCheck proves the validation can fail: each broken document differs
// from a valid one by one field the official schema constrains.
func TestCheck(t *testing.T) {
	dir := os.Getenv(DirEnv)
	if dir == "" {
		// validate skips or fails exactly as the real tests do.
		validate(t, "schemacheck", sarifFiles(), nil)
	}
	const (
		sarifOK = `{"$schema":"https://json.schemastore.org/sarif-2.1.0.json","version":"2.1.0",` +
			`"runs":[{"tool":{"driver":{"name":"ctrforensics"}},"results":[{"ruleId":"X","level":"error","message":{"text":"m"}}]}]}`
		cdxOK = `{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,` +
			`"components":[{"type":"library","name":"bash","licenses":[{"license":{"id":"GPL-3.0-or-later"}}]}]}`
	)
	for _, tc := range []struct {
		name  string
		files []string
		doc   string
		valid bool
	}{
		{"sarif", sarifFiles(), sarifOK, true},
		{"sarif bad version", sarifFiles(), `{"version":"2.2","runs":[]}`, false},
		{"sarif bad level", sarifFiles(),
			`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"x"}},"results":[{"level":"fatal","message":{"text":"m"}}]}]}`, false},
		{"sarif no driver name", sarifFiles(), `{"version":"2.1.0","runs":[{"tool":{"driver":{}}}]}`, false},
		{"cyclonedx", cycloneDXFiles(), cdxOK, true},
		{"cyclonedx bad spec", cycloneDXFiles(), `{"bomFormat":"CycloneDX","specVersion":1.6}`, false},
		{"cyclonedx component type", cycloneDXFiles(),
			`{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"type":"package","name":"bash"}]}`, false},
		{"cyclonedx spdx id", cycloneDXFiles(),
			`{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"type":"library","name":"bash","licenses":[{"license":{"id":"Not-A-License"}}]}]}`, false},
		{"not json", sarifFiles(), `{`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := check(dir, tc.files, []byte(tc.doc))
			if (err == nil) != tc.valid {
				t.Errorf("valid %v, err %v", tc.valid, err)
			}
		})
	}
}
