package model

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Config says what to train: the model a dataset declares (its label,
// features and training settings).
type Config struct {
	Dataset string
	Decl    *Decl
	// OnIteration, when set, hears of every Newton step.
	OnIteration func(iteration int, objective float64)
}

// Split is the data of a training run as the model saw it: the labelled
// records and feature vectors and labels of both splits, for reference
// checks.
type Split struct {
	Features            []string
	TrainRows, TestRows []Record
	TrainX, TestX       *Matrix
	TrainY, TestY       []float64
}

// LabelOf is the label of r under d: 1 or 0 for a logistic model (1 when
// the label column holds one of the positive values), the number for a
// ridge one; false when r has no label.
func (d *Decl) LabelOf(r Record) (float64, bool) {
	v := r.Value(d.Label.Column)
	if d.Kind == Ridge {
		return Number(v)
	}
	s, ok := Text(v)
	if !ok {
		return 0, false
	}
	if slices.Contains(d.Label.Positive, s) {
		return 1, true
	}
	return 0, true
}

// TrainModel fits the preprocessing and the regression the declaration
// asks for on a training split of the labelled records (stratified by
// label for a logistic model), evaluates both splits and returns the model
// (not yet saved) with the split. Records without a label are left out.
func TrainModel(records []Record, cfg Config) (*Model, *Split, error) {
	start := time.Now()
	cpu0 := cpuSeconds()
	d := cfg.Decl
	if d == nil {
		return nil, nil, errors.New("no model declaration")
	}
	if err := d.Check(); err != nil {
		return nil, nil, err
	}
	var labelled []Record
	var y []float64
	var positives int
	for _, r := range records {
		if v, ok := d.LabelOf(r); ok {
			labelled = append(labelled, r)
			y = append(y, v)
			if v == 1 {
				positives++
			}
		}
	}
	if len(labelled) < 10 {
		return nil, nil, fmt.Errorf("%d labelled records: too few to train and test on", len(labelled))
	}
	strata := y
	if d.Kind == Logistic {
		if positives == 0 || positives == len(labelled) {
			return nil, nil, fmt.Errorf("all %d records have the same label (%d of %s in %v): nothing to learn", len(labelled), positives, d.Label.Column, d.Label.Positive)
		}
	} else {
		strata = make([]float64, len(y)) // one stratum: a plain shuffled split
	}
	trainIdx, testIdx := StratifiedSplit(strata, d.Train.TestShare, d.Train.Seed)
	rows := func(idx []int) []Record {
		out := make([]Record, len(idx))
		for i, j := range idx {
			out[i] = labelled[j]
		}
		return out
	}
	split := &Split{TrainRows: rows(trainIdx), TestRows: rows(testIdx)}
	pre, err := FitPreprocessing(d.Features, split.TrainRows)
	if err != nil {
		return nil, nil, err
	}
	split.Features = pre.Names()
	split.TrainX, split.TrainY = design(pre, labelled, y, trainIdx)
	split.TestX, split.TestY = design(pre, labelled, y, testIdx)

	m := &Model{
		Format: Format, Name: cmp.Or(d.Name, cfg.Dataset), Version: NewVersion(start), Created: start.UTC(),
		Dataset: cfg.Dataset, Kind: d.Kind, Label: Label{Column: d.Label.Column, Positive: d.Label.Positive}, Preprocessing: pre,
		Features: pre.Names(),
		Training: Training{
			Rows: len(labelled), TestShare: d.Train.TestShare, Seed: d.Train.Seed, L2: d.Train.L2,
			Fingerprint: fingerprint(d.Columns(), labelled),
		},
	}
	var fit *Fit
	switch d.Kind {
	case Logistic:
		m.Threshold = d.Train.Threshold
		var weights []float64
		switch d.Train.ClassWeight {
		case "", "none":
			m.Training.ClassWeight = "none"
		case "balanced":
			m.Training.ClassWeight = "balanced"
			weights = balanced(split.TrainY)
		default:
			return nil, nil, fmt.Errorf("class weight %q: want none or balanced", d.Train.ClassWeight)
		}
		last := cpuSeconds()
		fit, err = Train(split.TrainX, split.TrainY, weights, Options{L2: d.Train.L2, OnIteration: func(it int, obj float64) {
			now := cpuSeconds()
			m.Training.CPUSecondsPerEpoch = append(m.Training.CPUSecondsPerEpoch, now-last)
			last = now
			if cfg.OnIteration != nil {
				cfg.OnIteration(it, obj)
			}
		}})
	case Ridge:
		if d.Train.ClassWeight != "" && d.Train.ClassWeight != "none" {
			return nil, nil, fmt.Errorf("class weight %q: a ridge model has no classes", d.Train.ClassWeight)
		}
		m.Training.ClassWeight = "none"
		last := cpuSeconds()
		fit, err = TrainRidge(split.TrainX, split.TrainY, d.Train.L2)
		m.Training.CPUSecondsPerEpoch = []float64{cpuSeconds() - last}
		if err == nil && cfg.OnIteration != nil {
			cfg.OnIteration(1, fit.Objective)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	m.Weights, m.Intercept, m.Training.Iterations = fit.Weights, fit.Intercept, fit.Iterations
	m.Train = m.evaluate(split.TrainX, split.TrainY)
	m.Test = m.evaluate(split.TestX, split.TestY)
	m.Training.CPUSeconds = cpuSeconds() - cpu0
	m.Training.WallSeconds = time.Since(start).Seconds()
	return m, split, nil
}

func design(pre *Preprocessing, rows []Record, y []float64, idx []int) (*Matrix, []float64) {
	x := &Matrix{Rows: len(idx), Cols: pre.Width(), Data: make([]float64, 0, len(idx)*pre.Width())}
	labels := make([]float64, len(idx))
	for i, j := range idx {
		x.Data = pre.Vector(x.Data, rows[j])
		labels[i] = y[j]
	}
	return x, labels
}

// balanced weighs each class n/(2·nₖ), as scikit-learn's "balanced".
func balanced(y []float64) []float64 {
	var pos float64
	for _, v := range y {
		pos += v
	}
	n := float64(len(y))
	w := make([]float64, len(y))
	for i, v := range y {
		if v == 1 {
			w[i] = n / (2 * pos)
		} else {
			w[i] = n / (2 * (n - pos))
		}
	}
	return w
}

// evaluate scores the model's predictions of the rows of x against y.
func (m *Model) evaluate(x *Matrix, y []float64) Metrics {
	p := make([]float64, x.Rows)
	for i := range p {
		p[i] = m.apply(x.Row(i))
	}
	if m.Kind == Ridge {
		return EvaluateRegression(y, p)
	}
	return Evaluate(y, p, m.Threshold)
}

// fingerprint hashes the records' values of columns in order.
func fingerprint(columns []string, rows []Record) string {
	h := sha256.New()
	for _, r := range rows {
		for i, c := range columns {
			if i > 0 {
				h.Write([]byte{'|'})
			}
			if v, ok := Text(r.Value(c)); ok {
				h.Write([]byte(v))
			}
		}
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// cpuSeconds is the process's user and system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// TopWeights are the n features with the largest absolute weights.
func (m *Model) TopWeights(n int) []string {
	idx := make([]int, len(m.Weights))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		wa, wb := math.Abs(m.Weights[a]), math.Abs(m.Weights[b])
		switch {
		case wa > wb:
			return -1
		case wa < wb:
			return 1
		}
		return strings.Compare(m.Features[a], m.Features[b])
	})
	var out []string
	for _, i := range idx[:min(n, len(idx))] {
		out = append(out, fmt.Sprintf("%s %+.3f", m.Features[i], m.Weights[i]))
	}
	return out
}

// EvaluateOn scores m's predictions of rows against their labels y, as
// the metrics of a training run are: a logistic model at its threshold, a
// ridge one by its errors.
func (m *Model) EvaluateOn(rows []Record, y []float64) Metrics {
	p := make([]float64, len(rows))
	for i, r := range rows {
		p[i] = m.Score(r)
	}
	if m.Kind == Ridge {
		return EvaluateRegression(y, p)
	}
	return Evaluate(y, p, m.Threshold)
}
