package schemas

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hamba/avro/v2"
)

// Config is the schema block of the processes that read and write records
// through the schemas they are given rather than through generated Go
// types, and so follow a schema they were not built with: the extractor,
// the cleaner, the loader and `datamill produce`.
type Config struct {
	// Dir, when set, is a directory of .avsc files laid out as avro/ is
	// (users/raw.avsc, users/clean.avsc…). A file there replaces the
	// built-in schema of its path; the paths it lacks stay built-in.
	Dir string `env:"SCHEMAS_DIR" envDefault:""`
}

// Catalog finds schemas by path: in its directory first, then among the
// built-in ones.
type Catalog struct {
	own map[string]avro.Schema // path → schema read from the directory
}

// BuiltIn is the catalog of the built-in schemas alone.
func BuiltIn() *Catalog { return &Catalog{} }

// Open reads every .avsc file under dir, so that a file that does not
// parse stops the process at start rather than at its first record. An
// empty dir is the built-in schemas alone.
func Open(dir string) (*Catalog, error) {
	if dir == "" {
		return BuiltIn(), nil
	}
	c := &Catalog{own: map[string]avro.Schema{}}
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("SCHEMAS_DIR: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("SCHEMAS_DIR: %s is not a directory", dir)
	}
	var errs []error
	err = fs.WalkDir(os.DirFS(dir), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".avsc") {
			return err
		}
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			return err
		}
		s, err := Parse(string(b))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			return nil
		}
		c.own[strings.TrimSuffix(p, ".avsc")] = s
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("SCHEMAS_DIR %s: %w", dir, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("SCHEMAS_DIR %s: %w", dir, errors.Join(errs...))
	}
	if len(c.own) == 0 {
		return nil, fmt.Errorf("SCHEMAS_DIR %s holds no .avsc file", dir)
	}
	return c, nil
}

// Schema returns the schema at path ("users/clean"): the directory's when
// it has one, else the built-in one.
func (c *Catalog) Schema(path string) (avro.Schema, error) {
	if s, ok := c.own[path]; ok {
		return s, nil
	}
	return Schema(path)
}

// Overrides lists, sorted, the paths whose schema comes from the
// directory.
func (c *Catalog) Overrides() []string {
	paths := make([]string, 0, len(c.own))
	for p := range c.own {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	return paths
}
