package schemas

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
)

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCatalogPrefersItsDirectoryAndFallsBackToTheBuiltIn(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "users", "raw.avsc"), `{"type":"record","name":"Raw","namespace":"datamill.users","fields":[{"name":"id","type":["null","string"],"default":null}]}`)
	writeFile(t, filepath.Join(dir, "users", "README"), "not a schema")
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Overrides(), ","); got != "users/raw" {
		t.Errorf("Overrides() = %s, want users/raw", got)
	}
	raw, err := c.Schema("users/raw")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(raw.(*avro.RecordSchema).Fields()); n != 1 {
		t.Errorf("users/raw from the directory has %d fields, want 1", n)
	}
	clean, err := c.Schema("users/clean")
	if err != nil {
		t.Fatal(err)
	}
	if clean != MustSchema("users/clean") {
		t.Error("users/clean, absent from the directory, is not the built-in schema")
	}
	if _, err := c.Schema("jobs/raw"); err == nil {
		t.Error("a path neither the directory nor the built-in schemas have was found")
	}
}

func TestCatalogWithoutADirectoryIsTheBuiltInSchemas(t *testing.T) {
	c, err := Open("")
	if err != nil {
		t.Fatal(err)
	}
	if s, err := c.Schema("users/raw"); err != nil || s != MustSchema("users/raw") {
		t.Errorf("Schema(users/raw) = %v, %v; want the built-in schema", s, err)
	}
	if len(c.Overrides()) != 0 {
		t.Errorf("Overrides() = %v, want none", c.Overrides())
	}
}

func TestOpenRefusesWhatItCannotRead(t *testing.T) {
	bad := t.TempDir()
	writeFile(t, filepath.Join(bad, "users", "clean.avsc"), `{"type":"record","name":"Clean","fields":[{"name":"id","type":"lnog"}]}`)
	file := filepath.Join(t.TempDir(), "file.avsc")
	writeFile(t, file, `"string"`)
	for name, tc := range map[string]struct{ dir, want string }{
		"missing":        {filepath.Join(bad, "nope"), "no such file or directory"},
		"a file":         {file, "is not a directory"},
		"no schema":      {t.TempDir(), "holds no .avsc file"},
		"does not parse": {bad, "users/clean.avsc"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Open(tc.dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "SCHEMAS_DIR") {
				t.Errorf("Open(%s) = %v, want an error naming SCHEMAS_DIR and %q", tc.dir, err, tc.want)
			}
		})
	}
}
