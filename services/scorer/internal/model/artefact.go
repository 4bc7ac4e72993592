package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Format is the version of the artefact layout this code reads and writes.
const Format = 1

// Model is a trained churn model: the versioned artefact `scorer train`
// writes as models/<name>-<version>.json and the scorer loads.
type Model struct {
	Format  int       `json:"format"`
	Name    string    `json:"name"`
	Version string    `json:"version"`
	Created time.Time `json:"created"`
	// Dataset and Label say what it was trained on: the label is 1 when
	// account_status is one of Churned.
	Dataset       string         `json:"dataset"`
	Churned       []string       `json:"churned_statuses"`
	Preprocessing *Preprocessing `json:"preprocessing"`
	// Features name the columns of the vectors, Weights their
	// coefficients.
	Features  []string  `json:"features"`
	Weights   []float64 `json:"weights"`
	Intercept float64   `json:"intercept"`
	Threshold float64   `json:"threshold"`
	Training  Training  `json:"training"`
	// Test are the metrics on the held-out split, Train on the training
	// split.
	Test  Metrics `json:"test_metrics"`
	Train Metrics `json:"train_metrics"`
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
	// on, in order.
	Fingerprint string `json:"data_fingerprint"`
	// CPUSecondsPerEpoch is the process CPU time of each Newton step,
	// for the eco meter.
	CPUSecondsPerEpoch []float64 `json:"cpu_seconds_per_epoch"`
	CPUSeconds         float64   `json:"cpu_seconds"`
	WallSeconds        float64   `json:"wall_seconds"`
}

// Probability is the model's churn probability for u.
func (m *Model) Probability(u User) float64 {
	var buf [64]float64
	x := m.Preprocessing.Vector(buf[:0], u)
	f := Fit{Intercept: m.Intercept, Weights: m.Weights}
	return f.Probability(x)
}

// Predict is the label at the model's threshold.
func (m *Model) Predict(p float64) int {
	if p >= m.Threshold {
		return 1
	}
	return 0
}

// Check refuses a model this code cannot apply: another format, features
// the scorer does not compute, coefficients that do not match them.
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
		return fmt.Errorf("features do not match the users schema: %w", err)
	}
	if names := m.Preprocessing.Names(); !slices.Equal(names, m.Features) || len(m.Weights) != len(names) {
		return fmt.Errorf("%d weights for features %v, but the preprocessing makes %v", len(m.Weights), m.Features, names)
	}
	if m.Threshold <= 0 || m.Threshold >= 1 {
		return fmt.Errorf("threshold %g: want it in (0, 1)", m.Threshold)
	}
	return nil
}

// Save writes the model into dir as <name>-<version>.json, atomically (a
// scorer watching dir never sees half a file), and returns its path.
func (m *Model) Save(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
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
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return path, os.Rename(tmp.Name(), path)
}

// Load reads and checks a model artefact.
func Load(path string) (*Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m Model
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("model %s: %w", path, err)
	}
	if err := m.Check(); err != nil {
		return nil, fmt.Errorf("model %s: %w", path, err)
	}
	return &m, nil
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
