package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Format is the version of the artefact layout this code reads and writes:
// 2 since features are declared by the dataset.
const Format = 2

// Model is a trained model of a dataset: the versioned artefact `scorer
// train` writes as models/<name>-<version>.json and the scorer loads.
type Model struct {
	Format  int       `json:"format"`
	Name    string    `json:"name"`
	Version string    `json:"version"`
	Created time.Time `json:"created"`
	// Dataset, Kind and Label say what it was trained on and predicts.
	Dataset       string         `json:"dataset"`
	Kind          string         `json:"kind"`
	Label         Label          `json:"label"`
	Preprocessing *Preprocessing `json:"preprocessing"`
	// Features name the columns of the vectors, Weights their
	// coefficients.
	Features  []string  `json:"features"`
	Weights   []float64 `json:"weights"`
	Intercept float64   `json:"intercept"`
	// Threshold (logistic) is the probability from which a record is
	// predicted positive.
	Threshold float64  `json:"threshold,omitempty"`
	Training  Training `json:"training"`
	// Test are the metrics on the held-out split, Train on the training
	// split.
	Test  Metrics `json:"test_metrics"`
	Train Metrics `json:"train_metrics"`
}

// Label is what a model predicts: the label column, and for a logistic
// model the values that are the positive class.
type Label struct {
	Column   string   `json:"column"`
	Positive []string `json:"positive,omitempty"`
}

// Training records how the model was trained.
type Training struct {
	Rows        int     `json:"rows"`
	TestShare   float64 `json:"test_share"`
	Seed        uint64  `json:"seed"`
	L2          float64 `json:"l2"`
	ClassWeight string  `json:"class_weight"`
	Iterations  int     `json:"iterations"`
	// Fingerprint is the SHA-256 of the labelled rows trained and tested
	// on (their label and feature columns), in order.
	Fingerprint string `json:"data_fingerprint"`
	// CPUSecondsPerEpoch is the process CPU time of each Newton step (of
	// the one solve of a ridge model), for the eco meter.
	CPUSecondsPerEpoch []float64 `json:"cpu_seconds_per_epoch"`
	CPUSeconds         float64   `json:"cpu_seconds"`
	WallSeconds        float64   `json:"wall_seconds"`
}

// Score is the model's prediction for r: the probability of the positive
// class (logistic) or the predicted number (ridge).
func (m *Model) Score(r Record) float64 {
	var buf [128]float64
	return m.apply(m.Preprocessing.Vector(buf[:0], r))
}

// apply is the model's prediction for a feature vector.
func (m *Model) apply(x []float64) float64 {
	f := Fit{Intercept: m.Intercept, Weights: m.Weights}
	if m.Kind == Ridge {
		return f.Linear(x)
	}
	return f.Probability(x)
}

// Predict is the label of a logistic model's probability p at its
// threshold.
func (m *Model) Predict(p float64) int {
	if p >= m.Threshold {
		return 1
	}
	return 0
}

// Check refuses a model this code cannot apply: another format or kind,
// features the scorer does not compute, coefficients that do not match
// them.
func (m *Model) Check() error {
	if m.Format != Format {
		return fmt.Errorf("artefact format %d, this scorer reads format %d", m.Format, Format)
	}
	if m.Name == "" || m.Version == "" {
		return errors.New("artefact without a name or version")
	}
	if m.Preprocessing == nil {
		return errors.New("artefact without preprocessing")
	}
	if err := m.Preprocessing.Check(); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	if names := m.Preprocessing.Names(); !slices.Equal(names, m.Features) || len(m.Weights) != len(names) {
		return fmt.Errorf("%d weights for features %v, but the preprocessing makes %v", len(m.Weights), m.Features, names)
	}
	if m.Label.Column == "" {
		return errors.New("artefact without a label column")
	}
	switch m.Kind {
	case Logistic:
		if m.Threshold <= 0 || m.Threshold >= 1 {
			return fmt.Errorf("threshold %g: want it in (0, 1)", m.Threshold)
		}
	case Ridge:
	default:
		return fmt.Errorf("kind %q: want %s or %s", m.Kind, Logistic, Ridge)
	}
	return nil
}

// Save writes the model into dir as <name>-<version>.json, atomically (a
// scorer watching dir never sees half a file), and returns its path.
func (m *Model) Save(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, m.Name+"-"+m.Version+".json")
	tmp, err := os.CreateTemp(dir, ".model-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		_ = tmp.Close() // the write's error is the one returned
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return path, os.Rename(tmp.Name(), path)
}

// Load reads and checks a model artefact, of this format or of format 1
// (the seed's churn model of before declarations, read as the declared
// model it is).
func Load(path string) (*Model, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- a model in the directory the operator configures
	if err != nil {
		return nil, err
	}
	var head struct {
		Format int `json:"format"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("model %s: %w", path, err)
	}
	m := &Model{}
	if head.Format == 1 {
		m, err = fromFormat1(b)
	} else {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		err = dec.Decode(m)
	}
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", path, err)
	}
	if err := m.Check(); err != nil {
		return nil, fmt.Errorf("model %s: %w", path, err)
	}
	return m, nil
}

// Latest returns the newest model named name in dir (versions sort by
// time), or "" when there is none.
func Latest(dir, name string) (string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, name+"-*.json"))
	if err != nil {
		return "", err
	}
	if len(matches) == 0 {
		return "", nil
	}
	slices.Sort(matches)
	return matches[len(matches)-1], nil
}

// NewVersion is a version for a model trained at t: sortable, to the
// second.
func NewVersion(t time.Time) string { return t.UTC().Format("20060102T150405Z") }

// VersionAfter is a version for a model trained at t that sorts after
// version prev (when prev is one): NewVersion(t), or the second after
// prev when t is not later.
func VersionAfter(prev string, t time.Time) string {
	v := NewVersion(t)
	if p, err := time.Parse("20060102T150405Z", prev); err == nil && v <= prev {
		v = NewVersion(p.Add(time.Second))
	}
	return v
}
