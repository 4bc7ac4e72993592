package service

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/schemas"
)

// SCHEMAS_DIR still names the user's datasets, with a warning that it is
// deprecated; the derived schemas' files found there are named in a
// warning and ignored.
func TestSchemasOpensTheCatalogAndWarnsOfWhatIsDeprecated(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "users"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"raw.avsc", "persisted.avsc"} {
		b, err := schemas.Files.ReadFile("avro/users/raw.avsc")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "users", f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, tc := range map[string]struct {
		cfg  schemas.Config
		want []string
		not  string
	}{
		"SCHEMAS_DIR": {
			cfg:  schemas.Config{SchemasDir: dir},
			want: []string{"SCHEMAS_DIR is deprecated", `"files":["users/raw.avsc"]`, `ignored files of derived schemas`, `"users/persisted.avsc"`},
		},
		"DATASETS_DIR": {
			cfg:  schemas.Config{Dir: dir},
			want: []string{"dataset files from DATASETS_DIR", `"files":["users/raw.avsc"]`},
			not:  "deprecated",
		},
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			p, err := Start("tester", config.Service{LogLevel: "info", LogFormat: "json", AdminAddr: "127.0.0.1:0"}, struct{}{}, &out)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			cat, err := p.Schemas(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cat.Dataset("users"); err != nil {
				t.Error(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("the log does not say %s:\n%s", w, out.String())
				}
			}
			if tc.not != "" && strings.Contains(out.String(), tc.not) {
				t.Errorf("the log says %s:\n%s", tc.not, out.String())
			}
		})
	}
	p, err := Start("tester", config.Service{LogLevel: "info", LogFormat: "json", AdminAddr: "127.0.0.1:0"}, struct{}{}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Schemas(schemas.Config{Dir: dir, SchemasDir: t.TempDir()}); err == nil {
		t.Error("DATASETS_DIR and SCHEMAS_DIR naming different directories were accepted")
	}
}

// A dataset of DATASETS that the catalog does not have stops the process
// at start, the setting and every such dataset named.
func TestDatasetsNamesWhatTheCatalogLacks(t *testing.T) {
	p, err := Start("tester", config.Service{LogLevel: "info", LogFormat: "json", AdminAddr: "127.0.0.1:0"}, struct{}{}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Datasets(schemas.Config{}, []string{"users"}); err != nil {
		t.Errorf("users: %v", err)
	}
	_, err = p.Datasets(schemas.Config{}, []string{"users", "jobz", "ordres"})
	if err == nil {
		t.Fatal("unknown datasets were accepted")
	}
	for _, want := range []string{"DATASETS:", `"jobz"`, `"ordres"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}
