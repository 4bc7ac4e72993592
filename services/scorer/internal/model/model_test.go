package model

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// With one binary feature and a vanishing penalty the optimum is known:
// the intercept is the log-odds of the label where x = 0, the weight the
// log-odds ratio between x = 1 and x = 0.
func TestTrainFindsTheKnownOptimum(t *testing.T) {
	// x = 0: 30 of 100 positive; x = 1: 80 of 100 positive.
	x := &Matrix{Rows: 200, Cols: 1}
	var y []float64
	for i := range 200 {
		xi, yi := 0.0, 0.0
		if i >= 100 {
			xi = 1
		}
		if (i < 100 && i < 30) || (i >= 100 && i < 180) {
			yi = 1
		}
		x.Data = append(x.Data, xi)
		y = append(y, yi)
	}
	fit, err := Train(x, y, nil, Options{L2: 1e-9})
	if err != nil {
		t.Fatal(err)
	}
	logit := func(p float64) float64 { return math.Log(p / (1 - p)) }
	if !near(fit.Intercept, logit(0.3), 1e-6) || !near(fit.Weights[0], logit(0.8)-logit(0.3), 1e-6) {
		t.Errorf("fit %+.8f / %+.8f, want %+.8f / %+.8f", fit.Intercept, fit.Weights[0], logit(0.3), logit(0.8)-logit(0.3))
	}
	if fit.Iterations > 10 {
		t.Errorf("%d Newton steps for a one-feature problem", fit.Iterations)
	}
}

// At the optimum of the penalised problem the gradient vanishes:
// Xᵀ(p − y) + λβ = 0 for the weights, Σ(p − y) = 0 for the intercept.
func TestTrainReachesAZeroGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n, d, l2 = 2000, 6, 3.0
	x := &Matrix{Rows: n, Cols: d}
	y := make([]float64, n)
	for i := range n {
		z := 0.3
		for j := range d {
			v := rng.NormFloat64()
			x.Data = append(x.Data, v)
			z += float64(j-2) * 0.5 * v
		}
		if rng.Float64() < sigmoid(z) {
			y[i] = 1
		}
	}
	fit, err := Train(x, y, nil, Options{L2: l2})
	if err != nil {
		t.Fatal(err)
	}
	grad := make([]float64, d+1)
	for i := range n {
		r := fit.Probability(x.Row(i)) - y[i]
		for j, v := range x.Row(i) {
			grad[j] += r * v
		}
		grad[d] += r
	}
	for j := range d {
		grad[j] += l2 * fit.Weights[j]
	}
	for j, g := range grad {
		if math.Abs(g) > 1e-6 {
			t.Errorf("gradient[%d] = %g at the optimum", j, g)
		}
	}
	// And the weights came out in the order they went in.
	for j := 1; j < d; j++ {
		if fit.Weights[j] <= fit.Weights[j-1] {
			t.Errorf("weights %v not increasing as generated", fit.Weights)
			break
		}
	}
}

func TestEvaluateByHand(t *testing.T) {
	y := []float64{1, 0, 1, 0}
	p := []float64{0.9, 0.4, 0.35, 0.1}
	m := Evaluate(y, p, 0.5)
	want := Confusion{TruePositives: 1, FalsePositives: 0, TrueNegatives: 2, FalseNegatives: 1}
	if m.Confusion != want {
		t.Errorf("confusion %+v, want %+v", m.Confusion, want)
	}
	logLoss := -(math.Log(0.9) + math.Log(0.6) + math.Log(0.35) + math.Log(0.9)) / 4
	for name, c := range map[string][2]float64{
		"accuracy": {m.Accuracy, 0.75}, "precision": {m.Precision, 1}, "recall": {m.Recall, 0.5},
		"f1": {m.F1, 2.0 / 3}, "auc": {m.AUC, 0.75}, "log loss": {m.LogLoss, logLoss},
		"brier": {m.Brier, (0.01 + 0.16 + 0.4225 + 0.01) / 4},
	} {
		if !near(c[0], c[1], 1e-12) {
			t.Errorf("%s = %v, want %v", name, c[0], c[1])
		}
	}
	// Ties count one half; one class alone gives 0.5.
	if a := AUC([]float64{1, 0, 1, 0}, []float64{0.5, 0.5, 0.7, 0.2}); !near(a, 0.875, 1e-12) {
		t.Errorf("AUC with a tie = %v, want 0.875", a)
	}
	if a := AUC([]float64{1, 1}, []float64{0.2, 0.3}); a != 0.5 {
		t.Errorf("AUC of one class = %v, want 0.5", a)
	}
}

func TestStratifiedSplit(t *testing.T) {
	y := make([]float64, 1000)
	for i := range 250 {
		y[i*4] = 1
	}
	train, test := StratifiedSplit(y, 0.2, 7)
	if len(test) != 200 || len(train) != 800 {
		t.Fatalf("split %d/%d, want 800/200", len(train), len(test))
	}
	pos := 0
	for _, i := range test {
		pos += int(y[i])
	}
	if pos != 50 {
		t.Errorf("%d positives in the test split, want 50 (the same share as the whole)", pos)
	}
	all := append(slices.Clone(train), test...)
	slices.Sort(all)
	for i, v := range all {
		if v != i {
			t.Fatalf("the splits do not partition the rows (index %d is %d)", i, v)
		}
	}
	again, _ := StratifiedSplit(y, 0.2, 7)
	other, _ := StratifiedSplit(y, 0.2, 8)
	if !slices.Equal(train, again) || slices.Equal(train, other) {
		t.Error("the split does not follow its seed")
	}
}

func ptr[T any](v T) *T { return &v }

func TestPreprocessing(t *testing.T) {
	asOf := time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)
	day := func(d int) *time.Time { v := asOf.AddDate(0, 0, -d); return &v }
	var train []User
	for i := range 300 {
		u := User{
			Age: ptr(float64(20 + i%3*10)), Gender: ptr([]string{"female", "male"}[i%2]), Country: ptr("FR"),
			SignupDate: day(400), LastLogin: day(10), MonthlySpend: ptr(9.0),
		}
		if i == 0 {
			u.Country = ptr("LU") // too rare for a column of its own
		}
		train = append(train, u)
	}
	p, err := FitPreprocessing(train, asOf)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
	if p.Numeric[0].Median != 30 || !near(p.Numeric[1].Mean, 400, 1e-9) {
		t.Errorf("numeric %+v", p.Numeric)
	}
	names := p.Names()
	x := p.Vector(nil, User{Gender: ptr("other-value"), Country: ptr("LU"), LastLogin: day(10)})
	if len(x) != p.Width() || len(names) != len(x) {
		t.Fatalf("vector of %d for %d names, width %d", len(x), len(names), p.Width())
	}
	got := map[string]float64{}
	for i, n := range names {
		got[n] = x[i]
	}
	want := map[string]float64{
		"age": 0, "age_missing": 1, // the median, standardised around a mean of 30
		"days_since_login_missing": 0, "gender=other": 1, "gender=female": 0, "gender=missing": 0,
		"country=other": 1, "country=FR": 0, "tenure_days_missing": 1,
	}
	for k, v := range want {
		if !near(got[k], v, 1e-9) {
			t.Errorf("%s = %v, want %v (vector %v)", k, got[k], v, got)
		}
	}
	if _, ok := got["country=LU"]; ok {
		t.Error("a country seen once got its own column")
	}
}

func TestModelArtefactRoundTripAndRefusals(t *testing.T) {
	examples := synthetic(3000, 5)
	m, split, err := TrainModel(examples, Config{Name: "churn", Churned: []string{"churned"}, TestShare: 0.25, Seed: 3, L2: 1, Threshold: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if m.Test.AUC < 0.7 || m.Test.Rows != len(split.TestY) || m.Training.Iterations == 0 || len(m.Training.CPUSecondsPerEpoch) != m.Training.Iterations {
		t.Errorf("model %+v / test %+v", m.Training, m.Test)
	}
	dir := t.TempDir()
	path, err := m.Save(dir)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range examples[:50] {
		if a, b := m.Probability(e.User), back.Probability(e.User); a != b {
			t.Fatalf("loaded model scores %v, trained one %v", b, a)
		}
	}
	if latest, err := Latest(dir, "churn"); err != nil || latest != path {
		t.Errorf("Latest = %q, %v; want %q", latest, err, path)
	}

	for name, spoil := range map[string]func(string) string{
		"unknown feature": func(s string) string { return strings.Replace(s, `"name": "age"`, `"name": "shoe_size"`, 1) },
		"other format":    func(s string) string { return strings.Replace(s, `"format": 1`, `"format": 2`, 1) },
		"weights missing": func(s string) string { return strings.Replace(s, `"weights": [`, `"weights": [1,`, 1) },
	} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		bad := filepath.Join(t.TempDir(), "bad.json")
		if err := os.WriteFile(bad, []byte(spoil(string(b))), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(bad); err == nil {
			t.Errorf("%s: Load accepted the artefact", name)
		}
	}
}

func TestTrainRefusesWhatItCannotLearn(t *testing.T) {
	examples := synthetic(100, 1)
	for i := range examples {
		examples[i].Status = "active"
	}
	if _, _, err := TrainModel(examples, Config{Churned: []string{"churned"}, TestShare: 0.2, L2: 1, Threshold: 0.5}); err == nil || !strings.Contains(err.Error(), "same label") {
		t.Errorf("one class: %v", err)
	}
	if _, _, err := TrainModel(nil, Config{TestShare: 0.2, Threshold: 0.5}); err == nil {
		t.Error("no data: no error")
	}
}

// synthetic makes users whose churn follows inactivity and spend.
func synthetic(n int, seed uint64) []Example {
	rng := rand.New(rand.NewPCG(seed, 1))
	asOf := time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)
	out := make([]Example, n)
	for i := range out {
		inactive := rng.Float64() * 300
		spend := rng.ExpFloat64() * 40
		signup := asOf.AddDate(0, 0, -int(inactive)-rng.IntN(900))
		login := asOf.AddDate(0, 0, -int(inactive))
		z := -1 + inactive/60 - 0.5*math.Log1p(spend)
		status := "active"
		if rng.Float64() < sigmoid(z) {
			status = "churned"
		}
		out[i] = Example{User: User{
			Age: ptr(float64(18 + rng.IntN(60))), Gender: ptr([]string{"female", "male"}[rng.IntN(2)]),
			Country: ptr([]string{"FR", "DE", "US"}[rng.IntN(3)]), SignupDate: &signup, LastLogin: &login, MonthlySpend: &spend,
		}, Status: status}
	}
	return out
}

// BenchmarkScore is the scorer's per-record work: features and prediction
// of one user.
func BenchmarkScore(b *testing.B) {
	examples := synthetic(5000, 9)
	m, _, err := TrainModel(examples, Config{Name: "bench", Churned: []string{"churned"}, TestShare: 0.2, Seed: 1, L2: 1, Threshold: 0.5})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = m.Predict(m.Probability(examples[i%len(examples)].User))
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkTrain200k trains on 200,000 synthetic users.
func BenchmarkTrain200k(b *testing.B) {
	examples := synthetic(200_000, 10)
	for b.Loop() {
		if _, _, err := TrainModel(examples, Config{Name: "bench", Churned: []string{"churned"}, TestShare: 0.2, Seed: 1, L2: 1, Threshold: 0.5}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBalancedClassWeightRaisesRecall(t *testing.T) {
	examples := synthetic(4000, 12) // about a third churned
	cfg := Config{Name: "w", Churned: []string{"churned"}, TestShare: 0.25, Seed: 2, L2: 1, Threshold: 0.5}
	plain, _, err := TrainModel(examples, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ClassWeight = "balanced"
	weighted, _, err := TrainModel(examples, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if weighted.Test.Recall <= plain.Test.Recall || weighted.Training.ClassWeight != "balanced" {
		t.Errorf("recall %.3f balanced vs %.3f unweighted: balancing the classes should find more churners", weighted.Test.Recall, plain.Test.Recall)
	}
}
