package model

import (
	"bytes"
	"errors"
	"fmt"
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

// Defaults of a declaration's optional values: the catalog's.
const (
	DefaultMinShare  = schemas.DefaultMinShare
	DefaultBuckets   = schemas.DefaultBuckets
	DefaultMinRows   = schemas.DefaultMinRows
	DefaultRetrain   = time.Duration(schemas.DefaultRetrain)
	DefaultTestShare = schemas.DefaultTestShare
	DefaultThreshold = schemas.DefaultThreshold
	DefaultL2        = schemas.DefaultL2
)

// DeclOf is the model the catalog read from a dataset's dataset.yaml, its
// defaults filled in: the one conversion from schemas.Model.
func DeclOf(model *schemas.Model) *Decl {
	c := *model
	c.Features = slices.Clone(model.Features)
	c.Defaults("") // a no-op on the catalog's, which has them
	m := &c
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
	return d
}

// datasetFile is what this package reads of a dataset.yaml: the model
// section, as the catalog reads it.
type datasetFile struct {
	Description string         `yaml:"description"`
	Sources     yaml.Node      `yaml:"sources"`
	Model       *schemas.Model `yaml:"model"`
	Views       yaml.Node      `yaml:"views"`
}

// ParseDecl parses the model section of a dataset.yaml's content, with
// the catalog's defaults filled in, for declarations that have no clean
// schema to be checked against (tests, experiments).
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
	f.Model.Defaults("")
	d := DeclOf(f.Model)
	if err := d.Check(); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	return d, nil
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
