package model

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Example is a labelled user: its status says whether it churned.
type Example struct {
	User   User
	Status string
}

// Config says how to train.
type Config struct {
	Name string
	// Churned lists the account statuses that mean churned (label 1);
	// every other status is 0.
	Churned   []string
	TestShare float64
	Seed      uint64
	// L2 is the penalty on the weights (scikit-learn's 1/C).
	L2 float64
	// ClassWeight is "none" or "balanced" (each class weighs n/(2·nₖ)).
	ClassWeight string
	Threshold   float64
	// AsOf is the reference date of day counts; zero: the latest signup
	// or login date of the data.
	AsOf time.Time
	// OnIteration, when set, hears of every Newton step.
	OnIteration func(iteration int, objective float64)
}

// Split is the data of a training run as the model saw it: feature
// vectors and labels of both splits, for reference checks.
type Split struct {
	Features          []string
	TrainX, TestX     *Matrix
	TrainY, TestY     []float64
	TrainIdx, TestIdx []int
}

// TrainModel fits the preprocessing and the logistic regression on a
// stratified training split of examples, evaluates both splits and
// returns the model (not yet saved) with the split.
func TrainModel(examples []Example, cfg Config) (*Model, *Split, error) {
	start := time.Now()
	cpu0 := cpuSeconds()
	if len(examples) < 10 {
		return nil, nil, fmt.Errorf("%d labelled users: too few to train and test on", len(examples))
	}
	if cfg.TestShare <= 0 || cfg.TestShare >= 1 {
		return nil, nil, fmt.Errorf("test share %g: want it in (0, 1)", cfg.TestShare)
	}
	if cfg.Threshold <= 0 || cfg.Threshold >= 1 {
		return nil, nil, fmt.Errorf("threshold %g: want it in (0, 1)", cfg.Threshold)
	}
	y := make([]float64, len(examples))
	var positives int
	for i, e := range examples {
		if slices.Contains(cfg.Churned, e.Status) {
			y[i] = 1
			positives++
		}
	}
	if positives == 0 || positives == len(examples) {
		return nil, nil, fmt.Errorf("all %d users have the same label (%d churned by %v): nothing to learn", len(examples), positives, cfg.Churned)
	}
	asOf := cfg.AsOf
	if asOf.IsZero() {
		asOf = latestDate(examples)
	}
	trainIdx, testIdx := StratifiedSplit(y, cfg.TestShare, cfg.Seed)
	users := func(idx []int) []User {
		out := make([]User, len(idx))
		for i, j := range idx {
			out[i] = examples[j].User
		}
		return out
	}
	pre, err := FitPreprocessing(users(trainIdx), asOf)
	if err != nil {
		return nil, nil, err
	}
	split := &Split{Features: pre.Names(), TrainIdx: trainIdx, TestIdx: testIdx}
	split.TrainX, split.TrainY = design(pre, examples, y, trainIdx)
	split.TestX, split.TestY = design(pre, examples, y, testIdx)

	var weights []float64
	switch cfg.ClassWeight {
	case "", "none":
		cfg.ClassWeight = "none"
	case "balanced":
		weights = balanced(split.TrainY)
	default:
		return nil, nil, fmt.Errorf("class weight %q: want none or balanced", cfg.ClassWeight)
	}
	var epochs []float64
	last := cpuSeconds()
	fit, err := Train(split.TrainX, split.TrainY, weights, Options{L2: cfg.L2, OnIteration: func(it int, obj float64) {
		now := cpuSeconds()
		epochs = append(epochs, now-last)
		last = now
		if cfg.OnIteration != nil {
			cfg.OnIteration(it, obj)
		}
	}})
	if err != nil {
		return nil, nil, err
	}
	m := &Model{
		Format: Format, Name: cfg.Name, Version: NewVersion(start), Created: start.UTC(),
		Dataset: "users", Churned: cfg.Churned, Preprocessing: pre,
		Features: pre.Names(), Weights: fit.Weights, Intercept: fit.Intercept, Threshold: cfg.Threshold,
		Training: Training{
			Rows: len(examples), TestShare: cfg.TestShare, Seed: cfg.Seed, L2: cfg.L2, ClassWeight: cfg.ClassWeight,
			Iterations: fit.Iterations, Fingerprint: fingerprint(examples), CPUSecondsPerEpoch: epochs,
		},
	}
	m.Train = evaluate(fit, split.TrainX, split.TrainY, cfg.Threshold)
	m.Test = evaluate(fit, split.TestX, split.TestY, cfg.Threshold)
	m.Training.CPUSeconds = cpuSeconds() - cpu0
	m.Training.WallSeconds = time.Since(start).Seconds()
	return m, split, nil
}

func design(pre *Preprocessing, examples []Example, y []float64, idx []int) (*Matrix, []float64) {
	x := &Matrix{Rows: len(idx), Cols: pre.Width(), Data: make([]float64, 0, len(idx)*pre.Width())}
	labels := make([]float64, len(idx))
	for i, j := range idx {
		x.Data = pre.Vector(x.Data, examples[j].User)
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

func evaluate(fit *Fit, x *Matrix, y []float64, threshold float64) Metrics {
	p := make([]float64, x.Rows)
	for i := range p {
		p[i] = fit.Probability(x.Row(i))
	}
	return Evaluate(y, p, threshold)
}

// latestDate is the latest signup or login date of the examples.
func latestDate(examples []Example) time.Time {
	var t time.Time
	for _, e := range examples {
		for _, d := range []*time.Time{e.User.SignupDate, e.User.LastLogin} {
			if d != nil && d.After(t) {
				t = *d
			}
		}
	}
	return t
}

// fingerprint hashes the examples' values in order.
func fingerprint(examples []Example) string {
	h := sha256.New()
	for _, e := range examples {
		u := e.User
		fmt.Fprintf(h, "%s|%s|%s|%s|%s|%s|%s\n", num(u.Age), str(u.Gender), str(u.Country), date(u.SignupDate), date(u.LastLogin), num(u.MonthlySpend), e.Status)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func num(p *float64) string {
	if p == nil {
		return ""
	}
	return fmt.Sprint(*p)
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func date(p *time.Time) string {
	if p == nil {
		return ""
	}
	return p.Format(time.DateOnly)
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
