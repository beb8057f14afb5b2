// Package schemacheck validates the documents ctrforensics writes for other
// tools (SARIF 2.1.0 logs, CycloneDX 1.6 BOMs) against their official JSON
// schemas, in tests.
//
// The schemas are never committed: scripts/schemas.sh fetches them once,
// caches them outside the checkout and prints their directory, which
// `make test` passes in the environment variable DirEnv. Without it the
// validating tests are skipped, so `go test ./...` works for any
// contributor, unless testutil.RequireRootEnv is 1 (CI): then they fail, so
// a CI run can never skip the validation silently.
package schemacheck

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ctrforensics/ctrforensics/internal/testutil"
)

// DirEnv names the environment variable holding the directory printed by
// scripts/schemas.sh.
const DirEnv = "CTRFORENSICS_SCHEMA_DIR"

// sarifFiles and cycloneDXFiles name the schema files of the DirEnv
// directory: the document's schema first, then the schemas it refers to.
func sarifFiles() []string { return []string{"sarif-2.1.0.json"} }

func cycloneDXFiles() []string {
	return []string{"bom-1.6.schema.json", "spdx.schema.json", "jsf-0.82.schemax.json"}
}

// ValidateSARIF fails t unless doc is a valid SARIF 2.1.0 log.
func ValidateSARIF(t testing.TB, doc []byte) {
	t.Helper()
	validate(t, "SARIF 2.1.0", sarifFiles(), doc)
}

// ValidateCycloneDX fails t unless doc is a valid CycloneDX 1.6 JSON BOM.
func ValidateCycloneDX(t testing.TB, doc []byte) {
	t.Helper()
	validate(t, "CycloneDX 1.6", cycloneDXFiles(), doc)
}

// validate compiles the schema in files (read from the DirEnv directory)
// and validates doc against it, skipping or failing t when the directory is
// not given.
func validate(t testing.TB, name string, files []string, doc []byte) {
	t.Helper()
	dir := os.Getenv(DirEnv)
	if dir == "" {
		msg := fmt.Sprintf("%s schema validation needs %s=$(bash scripts/schemas.sh)", name, DirEnv)
		if os.Getenv(testutil.RequireRootEnv) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if err := check(dir, files, doc); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, doc)
	}
}

// check validates doc against the schema in files, read from dir.
func check(dir string, files []string, doc []byte) error {
	sch, err := compile(dir, files)
	if err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("does not validate against the official schema: %w", err)
	}
	return nil
}

// compile adds every file to a compiler under its own $id (or draft-04 id),
// so that relative $refs between them resolve without any network access,
// and compiles the first.
func compile(dir string, files []string) (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	var root string
	for i, f := range files {
		id, doc, err := load(filepath.Join(dir, f))
		if err != nil {
			return nil, err
		}
		if err := c.AddResource(id, doc); err != nil {
			return nil, fmt.Errorf("add %s: %w", f, err)
		}
		if i == 0 {
			root = id
		}
	}
	return c.Compile(root)
}

// load reads a schema file and returns its $id (or id) and its content.
func load(path string) (string, any, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", path, err)
	}
	obj, _ := doc.(map[string]any)
	for _, k := range []string{"$id", "id"} {
		if id, ok := obj[k].(string); ok && id != "" {
			return id, doc, nil
		}
	}
	return "", nil, fmt.Errorf("%s: no $id", path)
}
