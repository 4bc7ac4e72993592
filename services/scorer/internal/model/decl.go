package model

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/datamill/datamill/schemas"
)

// Decl is a dataset's model as its dataset.yaml declares it (the model:
// section): what to predict, from which features, and how to train.
//
// It is schemas.Model (schemas.Dataset.Decl.Model), which the catalog
// reads from dataset.yaml, as the model package holds it (DeclOf); the
// YAML keys, defaults and meanings are the same.
type Decl struct {
	// Kind is logistic (a binary label) or ridge (a numeric target).
	Kind string `yaml:"kind"`
	// Name names the artefacts; empty: the dataset's name.
	Name     string        `yaml:"name"`
	Label    LabelDecl     `yaml:"label"`
	Features []FeatureDecl `yaml:"features"`
	Train    TrainDecl     `yaml:"train"`
}

// LabelDecl is what the model predicts: a clean column and, for a logistic
// model, the values of it that are the positive class.
type LabelDecl struct {
	Column   string   `yaml:"column"`
	Positive []string `yaml:"positive"`
}

// FeatureDecl is one declared feature.
type FeatureDecl struct {
	Column string `yaml:"column"`
	// Kind is numeric, categorical, boolean or tokens.
	Kind string `yaml:"kind"`
	// Transform (numeric only) is log1p or days_since.
	Transform string `yaml:"transform"`
	// Name names the feature; empty: the column.
	Name string `yaml:"name"`
	// Top (categorical) keeps at most this many of the most frequent
	// values (0: no limit); the others are "other".
	Top int `yaml:"top"`
	// MinShare (categorical) is the share of the training rows a value
	// needs to get its own column (default 0.005).
	MinShare float64 `yaml:"min_share"`
	// Buckets (tokens) is how many columns a text's hashed tokens fall
	// into.
	Buckets int `yaml:"buckets"`
}

// TrainDecl says how and when to train.
type TrainDecl struct {
	// MinRows is how many labelled rows the table needs before the scorer
	// trains by itself (default 200); Retrain how often it trains again
	// (default 24h).
	MinRows int           `yaml:"min_rows"`
	Retrain time.Duration `yaml:"retrain"`
	// TestShare is the share of labelled rows held out (default 0.2).
	TestShare float64 `yaml:"test_share"`
	// Threshold (logistic only) is the probability from which the
	// positive class is predicted (default 0.5).
	Threshold float64 `yaml:"threshold"`
	// L2 is the penalty on the weights: scikit-learn's 1/C for a logistic
	// model, Ridge's alpha (default 1).
	L2 float64 `yaml:"l2"`
	// ClassWeight (logistic) is none or balanced (each class weighs
	// n/(2·nₖ)); default none.
	ClassWeight string `yaml:"class_weight"`
	// Seed seeds the split (default 1).
	Seed uint64 `yaml:"seed"`
}

// The kinds of model and of feature, and the numeric transforms.
const (
	Logistic = "logistic"
	Ridge    = "ridge"

	KindNumeric     = "numeric"
	KindCategorical = "categorical"
	KindBoolean     = "boolean"
	KindTokens      = "tokens"

	Log1p     = "log1p"
	DaysSince = "days_since"
)

// Defaults of a declaration's optional values.
const (
	DefaultMinShare  = 0.005
	DefaultBuckets   = 256
	DefaultMinRows   = 200
	DefaultRetrain   = 24 * time.Hour
	DefaultTestShare = 0.2
	DefaultThreshold = 0.5
	DefaultL2        = 1.0
)

// DeclOf is the model the catalog read from a dataset's dataset.yaml, its
// defaults filled in: the one conversion from schemas.Model.
func DeclOf(m *schemas.Model) *Decl {
	d := &Decl{
		Kind: m.Kind, Name: m.Name,
		Label: LabelDecl{Column: m.Label.Column, Positive: slices.Clone(m.Label.Positive)},
		Train: TrainDecl{
			MinRows: m.Train.MinRows, Retrain: time.Duration(m.Train.Retrain), TestShare: m.Train.TestShare,
			Threshold: m.Train.Threshold, L2: m.Train.L2, ClassWeight: m.Train.ClassWeight, Seed: m.Train.Seed,
		},
	}
	for _, f := range m.Features {
		d.Features = append(d.Features, FeatureDecl{
			Column: f.Column, Kind: f.Kind, Transform: f.Transform, Name: f.Name,
			Top: f.Top, MinShare: f.MinShare, Buckets: f.Buckets,
		})
	}
	d.fill()
	return d
}

// datasetFile is what this package reads of a dataset.yaml: the model
// section, strictly; the other sections belong to other services and are
// only checked to be the known ones.
type datasetFile struct {
	Description string    `yaml:"description"`
	Sources     yaml.Node `yaml:"sources"`
	Model       *Decl     `yaml:"model"`
	Views       yaml.Node `yaml:"views"`
}

// ReadDecl reads the model section of the dataset.yaml at path. A file
// without one is an error, as is an unknown key or a declaration that does
// not hold together.
func ReadDecl(path string) (*Decl, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d, err := ParseDecl(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// ParseDecl parses the model section of a dataset.yaml's content, with
// the defaults filled in.
func ParseDecl(b []byte) (*Decl, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var f datasetFile
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if f.Model == nil {
		return nil, errors.New("no model section")
	}
	d := f.Model
	d.fill()
	if err := d.Check(); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	return d, nil
}

// fill sets the defaults of what the declaration leaves out.
func (d *Decl) fill() {
	for i := range d.Features {
		f := &d.Features[i]
		if f.Name == "" {
			f.Name = f.Column
		}
		if f.Kind == KindCategorical && f.MinShare == 0 {
			f.MinShare = DefaultMinShare
		}
		if f.Kind == KindTokens && f.Buckets == 0 {
			f.Buckets = DefaultBuckets
		}
	}
	t := &d.Train
	if t.MinRows == 0 {
		t.MinRows = DefaultMinRows
	}
	if t.Retrain == 0 {
		t.Retrain = DefaultRetrain
	}
	if t.TestShare == 0 {
		t.TestShare = DefaultTestShare
	}
	if t.Threshold == 0 && d.Kind == Logistic {
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

// Check reports, all together, what makes a declaration unusable.
func (d *Decl) Check() error {
	var errs []error
	switch d.Kind {
	case Logistic:
		if len(d.Label.Positive) == 0 {
			errs = append(errs, errors.New("label: a logistic model needs the positive values of its label"))
		}
	case Ridge:
		if len(d.Label.Positive) > 0 {
			errs = append(errs, errors.New("label: a ridge model predicts a number and has no positive values"))
		}
	default:
		errs = append(errs, fmt.Errorf("kind %q: want %s or %s", d.Kind, Logistic, Ridge))
	}
	if d.Label.Column == "" {
		errs = append(errs, errors.New("label: no column"))
	}
	if len(d.Features) == 0 {
		errs = append(errs, errors.New("no features"))
	}
	var names []string
	for i, f := range d.Features {
		where := fmt.Sprintf("features[%d] (%s)", i, f.Column)
		if f.Column == "" {
			errs = append(errs, fmt.Errorf("features[%d]: no column", i))
		}
		if f.Column == d.Label.Column && f.Column != "" {
			errs = append(errs, fmt.Errorf("%s: the label is no feature", where))
		}
		if slices.Contains(names, f.Name) {
			errs = append(errs, fmt.Errorf("%s: a second feature named %q", where, f.Name))
		}
		names = append(names, f.Name)
		switch f.Kind {
		case KindNumeric:
			if f.Transform != "" && f.Transform != Log1p && f.Transform != DaysSince {
				errs = append(errs, fmt.Errorf("%s: transform %q: want %s or %s", where, f.Transform, Log1p, DaysSince))
			}
		case KindCategorical, KindBoolean, KindTokens:
			if f.Transform != "" {
				errs = append(errs, fmt.Errorf("%s: a %s feature takes no transform", where, f.Kind))
			}
		default:
			errs = append(errs, fmt.Errorf("%s: kind %q: want %s, %s, %s or %s", where, f.Kind, KindNumeric, KindCategorical, KindBoolean, KindTokens))
		}
		if f.Top < 0 || f.MinShare < 0 || f.MinShare >= 1 || ((f.Top != 0 || f.MinShare != 0) && f.Kind != KindCategorical) {
			errs = append(errs, fmt.Errorf("%s: top %d, min_share %g: only a categorical feature has them, top 0 (no limit) or more, min_share in [0, 1)", where, f.Top, f.MinShare))
		}
		if f.Buckets < 0 || (f.Buckets > 0 && f.Kind != KindTokens) {
			errs = append(errs, fmt.Errorf("%s: buckets %d: only a tokens feature has a positive number of buckets", where, f.Buckets))
		}
	}
	if d.Train.TestShare <= 0 || d.Train.TestShare >= 1 {
		errs = append(errs, fmt.Errorf("train: test_share %g: want it in (0, 1)", d.Train.TestShare))
	}
	if d.Kind == Logistic && (d.Train.Threshold <= 0 || d.Train.Threshold >= 1) {
		errs = append(errs, fmt.Errorf("train: threshold %g: want it in (0, 1)", d.Train.Threshold))
	}
	if d.Kind == Ridge && d.Train.Threshold != 0 {
		errs = append(errs, errors.New("train: threshold: a ridge model has no threshold"))
	}
	if d.Train.MinRows < 0 || d.Train.Retrain < 0 {
		errs = append(errs, fmt.Errorf("train: min_rows %d, retrain %s: want neither negative", d.Train.MinRows, d.Train.Retrain))
	}
	if d.Train.L2 < 0 {
		errs = append(errs, fmt.Errorf("train: l2 %g: want 0 or more", d.Train.L2))
	}
	if d.Train.ClassWeight != "none" && d.Train.ClassWeight != "balanced" {
		errs = append(errs, fmt.Errorf("train: class_weight %q: want none or balanced", d.Train.ClassWeight))
	}
	return errors.Join(errs...)
}

// Columns are the clean columns the model reads: the label's, then the
// features', each once.
func (d *Decl) Columns() []string {
	cols := []string{d.Label.Column}
	for _, f := range d.Features {
		if !slices.Contains(cols, f.Column) {
			cols = append(cols, f.Column)
		}
	}
	return cols
}
