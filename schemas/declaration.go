package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
	"go.yaml.in/yaml/v3"
)

// DeclarationFile is the name, in a dataset's folder, of the file that
// declares what is not a schema: the dataset's sources, model and views.
const DeclarationFile = "dataset.yaml"

// Declaration is a dataset's dataset.yaml: every section is optional.
type Declaration struct {
	// File is where the declaration was read, for messages; empty when
	// the dataset has none.
	File        string   `yaml:"-"`
	Description string   `yaml:"description"`
	Sources     []Source `yaml:"sources"`
	Model       *Model   `yaml:"model"`
	Views       []View   `yaml:"views"`
}

// Source is one of the extractor's sources of a dataset. Kinds plug in by
// name; each kind reads its own options with Options.
type Source struct {
	// Kind names the kind of source: "http", "files"…
	Kind    string
	file    string
	index   int
	line    int            // of the source in file
	lines   map[string]int // of each option's key in file
	options map[string]yaml.Node
}

// UnmarshalYAML keeps the source's options for the kind to read.
func (s *Source) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a source is a mapping with a kind", n.Line)
	}
	s.options, s.lines, s.line = map[string]yaml.Node{}, map[string]int{}, n.Line
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "kind" {
			if err := v.Decode(&s.Kind); err != nil {
				return err
			}
			continue
		}
		s.options[k.Value], s.lines[k.Value] = *v, k.Line
	}
	return nil
}

// Dir is the folder of the dataset.yaml that declares the source, the one
// a relative path in its options is read from; "" when the declaration is
// built in (embedded in the program, not on disk).
func (s Source) Dir() string {
	if s.file == "" || strings.HasPrefix(s.file, builtInPrefix) {
		return ""
	}
	return filepath.Dir(s.file)
}

// builtInPrefix starts the name the catalog gives a file it read from the
// embedded datasets (catalog.go).
const builtInPrefix = "built-in "

// Where names the source in messages: its file, its index in the list and
// its kind.
func (s Source) Where() string { return fmt.Sprintf("%s: sources[%d] (%s)", s.file, s.index, s.Kind) }

// Options decodes the source's options (every key but kind) into v, a
// pointer to the kind's struct with yaml tags, strictly: a key v does not
// have is an error naming the file and the key.
func (s Source) Options(v any) error {
	m := yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	keys := make([]string, 0, len(s.options))
	for k := range s.options {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		val := s.options[k]
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, &val)
	}
	b, err := yaml.Marshal(&m)
	if err != nil {
		return fmt.Errorf("%s: %w", s.Where(), err)
	}
	if len(keys) == 0 {
		b = []byte("{}")
	}
	if err := decodeStrict(b, v); err != nil {
		return fmt.Errorf("%s: %s", s.Where(), s.fileLines(err.Error()))
	}
	return nil
}

// decodedLine is a line number of an error of decodeStrict, and the key
// it names when the key is unknown.
var decodedLine = regexp.MustCompile(`line \d+: (unknown key (\S+))?`)

// fileLines gives the line numbers of msg, an error of decoding the
// options as a document of their own, as lines of the source's file: an
// unknown key's own line, else the source's.
func (s Source) fileLines(msg string) string {
	return decodedLine.ReplaceAllStringFunc(msg, func(m string) string {
		sub := decodedLine.FindStringSubmatch(m)
		if line, ok := s.lines[sub[2]]; ok && sub[2] != "" {
			return fmt.Sprintf("line %d: %s", line, sub[1])
		}
		return fmt.Sprintf("line %d: %s", s.line, sub[1])
	})
}

// Model kinds.
const (
	// Logistic is a logistic regression of a binary label.
	Logistic = "logistic"
	// Ridge is a ridge regression of a numeric target.
	Ridge = "ridge"
)

// Feature kinds.
const (
	// Numeric is a number, with a missing indicator and the training
	// median for missing values.
	Numeric = "numeric"
	// Categorical is a one-hot encoding of the frequent values plus other
	// and missing.
	Categorical = "categorical"
	// Boolean is true, false or missing.
	Boolean = "boolean"
	// Tokens hashes the tokens of a text into buckets.
	Tokens = "tokens"
)

// Transforms of numeric features.
const (
	// Log1p is log(1+x); a value below 0 is missing.
	Log1p = "log1p"
	// DaysSince is the number of days from a date or timestamp to the
	// data's reference date: the newest date, in the training data, of
	// any column a days_since feature of the model reads (one date per
	// model, kept in its artefact), never the wall clock.
	DaysSince = "days_since"
)

// Model is the model a dataset declares: the scorer trains it and scores
// every persisted record with it.
type Model struct {
	// Kind is Logistic or Ridge.
	Kind string `yaml:"kind"`
	// Name is the artefact's name; default: the dataset's name.
	Name     string    `yaml:"name"`
	Label    Label     `yaml:"label"`
	Features []Feature `yaml:"features"`
	Train    Train     `yaml:"train"`
}

// Label is what the model predicts: a clean column.
type Label struct {
	Column string `yaml:"column"`
	// Positive lists the values of Column that are the positive class
	// (logistic), as text: "churned", "true", "1". Ridge has none.
	Positive []string `yaml:"positive"`
}

// Feature is one input of the model, computed from a clean column by the
// same code when training and when scoring.
type Feature struct {
	Column string `yaml:"column"`
	// Kind is Numeric, Categorical, Boolean or Tokens.
	Kind string `yaml:"kind"`
	// Transform, for a numeric feature: "", Log1p or DaysSince.
	Transform string `yaml:"transform"`
	// Name names the feature; default: Column.
	Name string `yaml:"name"`
	// Top, for a categorical feature, keeps at most this many of the most
	// frequent values (0: no limit); the others are "other".
	Top int `yaml:"top"`
	// MinShare, for a categorical feature, is the share of the training
	// rows a value needs to get its own column (default 0.005).
	MinShare float64 `yaml:"min_share"`
	// Buckets, for a tokens feature, is how many hash buckets its tokens
	// fall into (default 256).
	Buckets int `yaml:"buckets"`
}

// Train says when and how the scorer trains.
type Train struct {
	// MinRows is how many labelled rows the dataset's table needs before
	// the scorer trains by itself (default 200).
	MinRows int `yaml:"min_rows"`
	// Retrain is how often the scorer trains again; it promotes the new
	// model only if its held-out metrics are no worse (default 24h; 0
	// never).
	Retrain Duration `yaml:"retrain"`
	// TestShare is the share of labelled rows held out (default 0.2).
	TestShare float64 `yaml:"test_share"`
	// Threshold is the probability from which a logistic model predicts
	// the positive class (default 0.5).
	Threshold float64 `yaml:"threshold"`
	// L2 is the penalty on the weights, scikit-learn's 1/C (default 1).
	L2 float64 `yaml:"l2"`
	// ClassWeight is "none" or "balanced" (default none).
	ClassWeight string `yaml:"class_weight"`
	// Seed seeds the split (default 1).
	Seed uint64 `yaml:"seed"`
}

// Duration is a time.Duration written as "24h", "90m".
type Duration time.Duration

// UnmarshalYAML reads a duration such as 24h.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// View is a warehouse view the loader creates over the dataset's table.
type View struct {
	Name string `yaml:"name"`
	SQL  string `yaml:"sql"`
}

// Defaults of the model's settings.
const (
	DefaultMinShare  = 0.005
	DefaultBuckets   = 256
	DefaultMinRows   = 200
	DefaultRetrain   = Duration(24 * time.Hour)
	DefaultTestShare = 0.2
	DefaultThreshold = 0.5
	DefaultL2        = 1.0
)

// ParseDeclaration reads a dataset.yaml strictly: an unknown key is an
// error naming file and the key. It fills in the defaults and checks the
// declaration against the dataset's clean schema.
func ParseDeclaration(file, dataset string, text []byte, clean avro.Schema) (Declaration, error) {
	d := Declaration{File: file}
	if len(bytes.TrimSpace(text)) > 0 {
		if err := decodeStrict(text, &d); err != nil {
			return Declaration{}, fmt.Errorf("%s: %w", file, err)
		}
	}
	d.File = file
	for i := range d.Sources {
		d.Sources[i].file, d.Sources[i].index = file, i
	}
	d.defaults(dataset)
	if err := d.check(dataset, clean); err != nil {
		return Declaration{}, fmt.Errorf("%s: %w", file, err)
	}
	return d, nil
}

var unknownField = regexp.MustCompile(`field (\S+) not found in type \S+`)

// decodeStrict decodes one YAML document into v, refusing unknown keys.
func decodeStrict(text []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(text))
	dec.KnownFields(true)
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) {
		return nil
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, e := range te.Errors {
			msgs[i] = unknownField.ReplaceAllString(e, "unknown key $1")
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return err
}

func (d *Declaration) defaults(dataset string) {
	if d.Model != nil {
		d.Model.Defaults(dataset)
	}
}

// Defaults fills in what a model of dataset leaves out: its name, each
// feature's name, a categorical's min_share, a tokens feature's buckets
// and the training settings.
func (m *Model) Defaults(dataset string) {
	if m.Name == "" {
		m.Name = dataset
	}
	for i := range m.Features {
		f := &m.Features[i]
		if f.Name == "" {
			f.Name = f.Column
		}
		if f.Kind == Categorical && f.MinShare == 0 {
			f.MinShare = DefaultMinShare
		}
		if f.Kind == Tokens && f.Buckets == 0 {
			f.Buckets = DefaultBuckets
		}
	}
	t := &m.Train
	if t.MinRows == 0 {
		t.MinRows = DefaultMinRows
	}
	if t.Retrain == 0 {
		t.Retrain = DefaultRetrain
	}
	if t.TestShare == 0 {
		t.TestShare = DefaultTestShare
	}
	if t.Threshold == 0 && m.Kind == Logistic {
		t.Threshold = DefaultThreshold
	}
	if t.L2 == 0 {
		t.L2 = DefaultL2
	}
	if t.ClassWeight == "" {
		t.ClassWeight = "none"
	}
	if t.Seed == 0 {
		t.Seed = 1
	}
}

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// maxIdent is the longest name PostgreSQL keeps (NAMEDATALEN - 1 bytes);
// it would cut a longer one short.
const maxIdent = 63

// check refuses what a service could not follow, naming the field.
func (d *Declaration) check(dataset string, clean avro.Schema) error {
	var errs []error
	for i, s := range d.Sources {
		if s.Kind == "" {
			errs = append(errs, fmt.Errorf("sources[%d]: no kind", i))
		}
	}
	views := map[string]bool{}
	for i, v := range d.Views {
		switch {
		case !identifier.MatchString(v.Name):
			errs = append(errs, fmt.Errorf("views[%d].name %q: want a lower-case SQL name (a-z, 0-9, _)", i, v.Name))
		case len(v.Name) > maxIdent:
			errs = append(errs, fmt.Errorf("views[%d].name %s: longer than PostgreSQL's %d bytes", i, v.Name, maxIdent))
		case v.Name == dataset:
			errs = append(errs, fmt.Errorf("views[%d].name %s: the name of the dataset's table", i, v.Name))
		case views[v.Name]:
			errs = append(errs, fmt.Errorf("views[%d].name: %s is declared twice", i, v.Name))
		}
		views[v.Name] = true
		if strings.TrimSpace(v.SQL) == "" {
			errs = append(errs, fmt.Errorf("views[%d].sql: empty", i))
		}
	}
	if d.Model != nil {
		errs = append(errs, d.Model.check(clean)...)
	}
	return errors.Join(errs...)
}

func (m *Model) check(clean avro.Schema) []error {
	var errs []error
	fields := map[string]*avro.Field{}
	if rec, ok := clean.(*avro.RecordSchema); ok {
		for _, f := range rec.Fields() {
			fields[f.Name()] = f
		}
	}
	column := func(where, name string) (valueType, bool) {
		if name == "" {
			errs = append(errs, fmt.Errorf("%s: no column", where))
			return "", false
		}
		f := fields[name]
		if f == nil {
			errs = append(errs, fmt.Errorf("%s: column %s is not a field of the clean schema", where, name))
			return "", false
		}
		return typeOf(f.Type()), true
	}
	switch m.Kind {
	case Logistic, Ridge:
	case "":
		errs = append(errs, errors.New("model.kind: missing, want logistic or ridge"))
	default:
		errs = append(errs, fmt.Errorf("model.kind %q: want logistic or ridge", m.Kind))
	}
	if t, ok := column("model.label.column", m.Label.Column); ok {
		switch {
		case m.Kind == Logistic && len(m.Label.Positive) == 0:
			errs = append(errs, errors.New("model.label.positive: a logistic model needs the values of the positive class"))
		case m.Kind == Logistic && !t.in(textual, integral, boolean):
			errs = append(errs, fmt.Errorf("model.label.column: %s is %s; a logistic label is text, an integer or a boolean", m.Label.Column, t))
		case m.Kind == Logistic && t == boolean:
			for _, v := range m.Label.Positive {
				if v != "true" && v != "false" {
					errs = append(errs, fmt.Errorf("model.label.positive: %q is not a value of %s, a boolean: want true or false", v, m.Label.Column))
				}
			}
		case m.Kind == Logistic:
			if values := enumValues(fields[m.Label.Column]); values != nil {
				for _, v := range m.Label.Positive {
					if !slices.Contains(values, v) {
						errs = append(errs, fmt.Errorf("model.label.positive: %q is not a value of %s (%s)", v, m.Label.Column, strings.Join(values, ", ")))
					}
				}
			}
		case m.Kind == Ridge && len(m.Label.Positive) > 0:
			errs = append(errs, errors.New("model.label.positive: a ridge model predicts a number and has no positive class"))
		case m.Kind == Ridge && !t.in(integral, fractional):
			errs = append(errs, fmt.Errorf("model.label.column: %s is %s; a ridge target is a number", m.Label.Column, t))
		}
	}
	if len(m.Features) == 0 {
		errs = append(errs, errors.New("model.features: none"))
	}
	names := map[string]bool{}
	for i, f := range m.Features {
		where := fmt.Sprintf("model.features[%d]", i)
		if f.Column != "" {
			where += " (" + f.Column + ")"
		}
		if f.Column != "" && f.Column == m.Label.Column {
			errs = append(errs, fmt.Errorf("%s: the label cannot be a feature", where))
		}
		if names[f.Name] {
			errs = append(errs, fmt.Errorf("%s.name: %s names two features", where, f.Name))
		}
		names[f.Name] = true
		t, ok := column(where+".column", f.Column)
		if f.Transform != "" && f.Kind != Numeric {
			errs = append(errs, fmt.Errorf("%s.transform: only a numeric feature has one", where))
		}
		if (f.Top != 0 || f.MinShare != 0) && f.Kind != Categorical {
			errs = append(errs, fmt.Errorf("%s: top and min_share are for a categorical feature", where))
		}
		if f.Buckets != 0 && f.Kind != Tokens {
			errs = append(errs, fmt.Errorf("%s.buckets: only a tokens feature has buckets", where))
		}
		var fits bool
		var want string
		switch f.Kind {
		case Numeric:
			switch f.Transform {
			case "", Log1p:
				fits, want = t.in(integral, fractional), "a number"
			case DaysSince:
				fits, want = t.in(date, timestamp), "a date or a timestamp"
			default:
				errs = append(errs, fmt.Errorf("%s.transform %q: want log1p or days_since", where, f.Transform))
				fits = true
			}
		case Categorical:
			fits, want = t.in(textual), "text"
			if f.Top < 0 {
				errs = append(errs, fmt.Errorf("%s.top %d: want 0 (no limit) or more", where, f.Top))
			}
			if f.MinShare < 0 || f.MinShare >= 1 {
				errs = append(errs, fmt.Errorf("%s.min_share %g: want it in [0, 1)", where, f.MinShare))
			}
		case Boolean:
			fits, want = t.in(boolean), "a boolean"
		case Tokens:
			fits, want = t.in(textual, textList), "text or a list of texts"
			if f.Buckets < 1 {
				errs = append(errs, fmt.Errorf("%s.buckets %d: want 1 or more", where, f.Buckets))
			}
		case "":
			errs = append(errs, fmt.Errorf("%s.kind: missing, want numeric, categorical, boolean or tokens", where))
			fits = true
		default:
			errs = append(errs, fmt.Errorf("%s.kind %q: want numeric, categorical, boolean or tokens", where, f.Kind))
			fits = true
		}
		if ok && !fits {
			how := f.Kind
			if f.Transform != "" {
				how += " " + f.Transform
			}
			errs = append(errs, fmt.Errorf("%s.column: %s is %s; a %s feature needs %s", where, f.Column, t, how, want))
		}
	}
	tr := m.Train
	if tr.MinRows < 0 {
		errs = append(errs, fmt.Errorf("model.train.min_rows %d: want 0 or more", tr.MinRows))
	}
	if tr.Retrain < 0 {
		errs = append(errs, fmt.Errorf("model.train.retrain %s: want 0 (never) or more", time.Duration(tr.Retrain)))
	}
	if tr.TestShare <= 0 || tr.TestShare >= 1 {
		errs = append(errs, fmt.Errorf("model.train.test_share %g: want it in (0, 1)", tr.TestShare))
	}
	if m.Kind == Logistic && (tr.Threshold <= 0 || tr.Threshold >= 1) {
		errs = append(errs, fmt.Errorf("model.train.threshold %g: want it in (0, 1)", tr.Threshold))
	}
	if m.Kind == Ridge && tr.Threshold != 0 {
		errs = append(errs, errors.New("model.train.threshold: a ridge model has no threshold"))
	}
	if tr.L2 < 0 {
		errs = append(errs, fmt.Errorf("model.train.l2 %g: want 0 or more", tr.L2))
	}
	if tr.ClassWeight != "none" && tr.ClassWeight != "balanced" {
		errs = append(errs, fmt.Errorf("model.train.class_weight %q: want none or balanced", tr.ClassWeight))
	}
	return errs
}

// enumValues lists, sorted, the values an enum cleaning rule gives a field;
// nil when its rule is not an enum.
func enumValues(f *avro.Field) []string {
	rule, _ := f.Prop("datamill.clean").(map[string]any)
	if rule == nil || rule["type"] != "enum" {
		return nil
	}
	values, _ := rule["values"].(map[string]any)
	names := make([]string, 0, len(values))
	for v := range values {
		names = append(names, v)
	}
	slices.Sort(names)
	return names
}

// valueType is what a clean field holds, as far as a model cares.
type valueType string

const (
	textual    valueType = "text"
	integral   valueType = "an integer"
	fractional valueType = "a fractional number"
	boolean    valueType = "a boolean"
	date       valueType = "a date"
	timestamp  valueType = "a timestamp"
	// textList is an array of strings, whose items a tokens feature
	// reads as one text.
	textList valueType = "a list of texts"
)

func (t valueType) in(types ...valueType) bool { return slices.Contains(types, t) }

// typeOf names the type of a field's values, null aside.
func typeOf(s avro.Schema) valueType {
	types := NonNull(s)
	if len(types) != 1 {
		return valueType(typeName(s))
	}
	s = types[0]
	if ls, ok := s.(avro.LogicalTypeSchema); ok && ls.Logical() != nil {
		switch ls.Logical().Type() {
		case avro.Date:
			return date
		case avro.TimestampMillis, avro.TimestampMicros, avro.LocalTimestampMillis, avro.LocalTimestampMicros:
			return timestamp
		case avro.Decimal:
			return fractional
		}
		return valueType(typeName(s))
	}
	switch s.Type() {
	case avro.String, avro.Enum:
		return textual
	case avro.Int, avro.Long:
		return integral
	case avro.Float, avro.Double:
		return fractional
	case avro.Boolean:
		return boolean
	case avro.Array:
		if typeOf(s.(*avro.ArraySchema).Items()) == textual {
			return textList
		}
	}
	return valueType(typeName(s))
}
