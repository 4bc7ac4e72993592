package testkit

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"

	"github.com/datamill/datamill/schemas"
)

// AddField returns the text of the built-in schema at path ("users/clean",
// or a derived one: "users/persisted") with field, a field's JSON, appended
// to every record named name in it: the record itself, and the copies of it
// other schemas embed.
func AddField(t testing.TB, path, name, field string) string {
	t.Helper()
	b, err := fs.ReadFile(schemas.Files, "avro/"+path+".avsc")
	if errors.Is(err, fs.ErrNotExist) {
		var s avro.Schema
		if s, err = schemas.Schema(path); err == nil {
			b, err = json.Marshal(s)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	var doc, f any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(field), &f); err != nil {
		t.Fatalf("field %s: %v", field, err)
	}
	found := false
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
			if n, _ := v["name"].(string); v["type"] == "record" && (n == name || strings.HasSuffix(n, "."+name)) {
				v["fields"] = append(v["fields"].([]any), f)
				found = true
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	if !found {
		t.Fatalf("schema %s has no record %s", path, name)
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// SchemaDir writes schema texts, by path, as .avsc files to a new
// directory laid out as schemas/avro/ is, and returns it: a DATASETS_DIR
// (once named SCHEMAS_DIR).
func SchemaDir(t testing.TB, texts map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for path, text := range texts {
		file := filepath.Join(dir, filepath.FromSlash(path)+".avsc")
		if err := os.MkdirAll(filepath.Dir(file), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
