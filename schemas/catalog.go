package schemas

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/hamba/avro/v2"
)

// Config is the dataset block of the processes that read and write records
// through the schemas they are given rather than through generated Go
// types, and so follow a dataset they were not built with: the extractor,
// the cleaner, the loader and `datamill produce`.
type Config struct {
	// Dir, when set, is a directory of the user's own datasets, one
	// folder each, named as the dataset and laid out as the built-in
	// ones are (raw.avsc, clean.avsc, dataset.yaml). A folder named as a
	// built-in dataset replaces the built-in files it holds; the files it
	// lacks stay built-in.
	Dir string `env:"DATASETS_DIR" envDefault:""`
	// SchemasDir is the deprecated name of Dir: it is read as Dir when
	// Dir is not set.
	SchemasDir string `env:"SCHEMAS_DIR" envDefault:""`
}

// Directory returns the directory of the user's datasets and the variable
// that named it, "DATASETS_DIR" or the deprecated "SCHEMAS_DIR"; an empty
// dir is none. Both set to different directories is an error.
func (c Config) Directory() (dir, variable string, err error) {
	switch {
	case c.SchemasDir == "" || c.SchemasDir == c.Dir:
		return c.Dir, "DATASETS_DIR", nil
	case c.Dir == "":
		return c.SchemasDir, "SCHEMAS_DIR", nil
	}
	return "", "", fmt.Errorf("DATASETS_DIR=%s and SCHEMAS_DIR=%s: SCHEMAS_DIR is the deprecated name of DATASETS_DIR; set DATASETS_DIR alone", c.Dir, c.SchemasDir)
}

// Open is Open of the directory c names.
func (c Config) Open() (*Catalog, error) {
	dir, variable, err := c.Directory()
	if err != nil {
		return nil, err
	}
	return open(dir, variable)
}

// The files of a dataset folder.
const (
	rawFile   = "raw.avsc"
	cleanFile = "clean.avsc"
)

// derivedFiles are files a dataset folder may still hold from before the
// persisted and scored schemas were derived; they are ignored.
var derivedFiles = []string{"persisted.avsc", "scored.avsc"}

// datasetName is what a dataset may be called: it names topics and tables.
var datasetName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Catalog finds datasets: the user's, from a directory, and the built-in
// ones under avro/. It is read whole when opened, and never changes.
type Catalog struct {
	dir       string
	datasets  map[string]*Dataset
	overrides []string // files read from dir, as <dataset>/<file>
	ignored   []string // derived files found in dir, as <dataset>/<file>
}

// BuiltIn is the catalog of the built-in datasets alone.
func BuiltIn() *Catalog {
	c, err := open("", "")
	if err != nil {
		panic(err) // the built-in datasets are checked by the tests
	}
	return c
}

// Open reads the datasets of dir, the directory DATASETS_DIR names, and
// the built-in ones, so that a file that does not parse or a declaration
// that does not fit its schema stops the process at start rather than at
// its first record. An empty dir is the built-in datasets alone.
func Open(dir string) (*Catalog, error) { return open(dir, "DATASETS_DIR") }

// source is where a dataset's files are read: the user's folder first.
type source struct {
	name    string
	own     string // the folder in the user's directory, or ""
	builtIn bool
}

// has tells whether the user's folder holds file.
func (s source) has(file string) bool {
	if s.own == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(s.own, file))
	return err == nil
}

func (s source) read(file string) (text []byte, name string, err error) {
	if s.own != "" {
		name = filepath.Join(s.own, file)
		text, err = os.ReadFile(name) // #nosec G304 -- a schema file in the operator's SCHEMAS_DIR
		if err == nil || !errors.Is(err, fs.ErrNotExist) || !s.builtIn {
			return text, name, err
		}
	}
	name = path.Join("avro", s.name, file)
	text, err = fs.ReadFile(Files, name)
	return text, "built-in " + name, err
}

func open(dir, variable string) (*Catalog, error) {
	c := &Catalog{dir: dir, datasets: map[string]*Dataset{}}
	sources := map[string]*source{}
	entries, err := fs.ReadDir(Files, "avro")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.IsDir() && e.Name() != "released" {
			sources[e.Name()] = &source{name: e.Name(), builtIn: true}
		}
	}
	if dir != "" {
		info, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", variable, err)
		}
		if !info.IsDir() {
			return nil, fmt.Errorf("%s: %s is not a directory", variable, dir)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", variable, err)
		}
		var errs []error
		own := 0
		for _, e := range entries {
			if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			if !datasetName.MatchString(e.Name()) {
				errs = append(errs, fmt.Errorf("folder %s: a dataset's name is lower-case letters, digits and _, starting with a letter", e.Name()))
				continue
			}
			s := sources[e.Name()]
			if s == nil {
				s = &source{name: e.Name()}
				sources[e.Name()] = s
			}
			s.own = filepath.Join(dir, e.Name())
			files, err := os.ReadDir(s.own)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, f := range files {
				switch name := f.Name(); {
				case name == rawFile || name == cleanFile || name == DeclarationFile:
					c.overrides = append(c.overrides, e.Name()+"/"+name)
				case slices.Contains(derivedFiles, name):
					c.ignored = append(c.ignored, e.Name()+"/"+name)
				}
			}
			own++
		}
		if own == 0 && len(errs) == 0 {
			errs = append(errs, fmt.Errorf("holds no dataset: want one folder per dataset, with %s, %s and %s", rawFile, cleanFile, DeclarationFile))
		}
		if len(errs) > 0 {
			return nil, fmt.Errorf("%s %s: %w", variable, dir, errors.Join(errs...))
		}
	}
	var errs []error
	for name, s := range sources {
		d, err := load(name, s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.datasets[name] = d
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		if dir == "" {
			return nil, errors.Join(errs...)
		}
		return nil, fmt.Errorf("%s %s: %w", variable, dir, errors.Join(errs...))
	}
	slices.Sort(c.overrides)
	slices.Sort(c.ignored)
	return c, nil
}

// load reads one dataset's files and derives the rest.
func load(name string, s *source) (*Dataset, error) {
	read := func(file string) (avro.Schema, string, error) {
		if s.builtIn && !s.has(file) {
			// The parsed built-in schema, shared with Schema.
			schema, err := Schema(name + "/" + strings.TrimSuffix(file, ".avsc"))
			return schema, "built-in avro/" + name + "/" + file, err
		}
		text, where, err := s.read(file)
		if err != nil {
			return nil, where, fmt.Errorf("dataset %s: %w", name, err)
		}
		schema, err := Parse(string(text))
		if err != nil {
			return nil, where, fmt.Errorf("dataset %s: %s: %w", name, where, err)
		}
		return schema, where, nil
	}
	d := &Dataset{Name: name}
	var err error
	if d.Raw, _, err = read(rawFile); err != nil {
		return nil, err
	}
	var cleanAt string
	if d.Clean, cleanAt, err = read(cleanFile); err != nil {
		return nil, err
	}
	if d.Key, err = KeyField(d.Clean); err != nil {
		return nil, fmt.Errorf("dataset %s: %s: %w", name, cleanAt, err)
	}
	text, where, err := s.read(DeclarationFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("dataset %s: %w", name, err)
	default:
		if d.Decl, err = ParseDeclaration(where, name, text, d.Clean); err != nil {
			return nil, fmt.Errorf("dataset %s: %w", name, err)
		}
	}
	// The built-in derived schemas are shared with Schema while the
	// files they derive from (the clean schema, and the model for the
	// scored one) are the built-in ones.
	persisted, scored := PersistedOf, ScoredOf
	if s.builtIn && !s.has(cleanFile) {
		persisted = func(avro.Schema) (avro.Schema, error) { return Schema(name + "/persisted") }
		if !s.has(DeclarationFile) {
			scored = func(avro.Schema, *Model) (avro.Schema, error) { return Schema(name + "/scored") }
		}
	}
	if d.Persisted, err = persisted(d.Clean); err != nil {
		return nil, fmt.Errorf("dataset %s: %s: %w", name, cleanAt, err)
	}
	if d.Scored, err = scored(d.Clean, d.Decl.Model); err != nil {
		at := cleanAt
		if d.Decl.File != "" {
			at += " and " + d.Decl.File
		}
		return nil, fmt.Errorf("dataset %s: %s: %w", name, at, err)
	}
	return d, nil
}

// Dataset returns the dataset called name: the user's, else the built-in
// one.
func (c *Catalog) Dataset(name string) (*Dataset, error) {
	if d, ok := c.datasets[name]; ok {
		return d, nil
	}
	where := "the built-in datasets"
	if c.dir != "" {
		where += " nor " + c.dir
	}
	return nil, fmt.Errorf("unknown dataset %q: neither %s hold it (known: %s)", name, where, strings.Join(c.Datasets(), ", "))
}

// Datasets lists, sorted, the names of the built-in datasets and the
// user's.
func (c *Catalog) Datasets() []string {
	names := make([]string, 0, len(c.datasets))
	for n := range c.datasets {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Schema returns the schema at path: "<dataset>/raw", "/clean",
// "/persisted" or "/scored" of the catalog's datasets, else the built-in
// schema of that path ("deadletter").
func (c *Catalog) Schema(p string) (avro.Schema, error) {
	name, kind, ok := strings.Cut(p, "/")
	if !ok {
		return Schema(p)
	}
	d, err := c.Dataset(name)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", p, err)
	}
	switch kind {
	case "raw":
		return d.Raw, nil
	case "clean":
		return d.Clean, nil
	case "persisted":
		return d.Persisted, nil
	case "scored":
		return d.Scored, nil
	}
	return nil, fmt.Errorf("schema %s: a dataset's schemas are raw, clean, persisted and scored", p)
}

// Overrides lists, sorted, the files read from the user's directory, as
// <dataset>/<file>.
func (c *Catalog) Overrides() []string { return slices.Clone(c.overrides) }

// Ignored lists, sorted, the persisted.avsc and scored.avsc files found in
// the user's directory, as <dataset>/<file>: those schemas are derived
// from clean.avsc, and the files are not read.
func (c *Catalog) Ignored() []string { return slices.Clone(c.ignored) }
