package model

import (
	"cmp"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/datamill/datamill/schemas"
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

// usersDecl is the users dataset's model declaration.
func usersDecl(t testing.TB) *Decl {
	t.Helper()
	ds, err := schemas.BuiltIn().Dataset("users")
	if err != nil {
		t.Fatal(err)
	}
	return DeclOf(ds.Decl.Model)
}

// user is a clean users record as the model reads it.
func user(age *float64, gender, country *string, signup, login *time.Time, spend *float64, status string) Map {
	m := Map{"age": age, "gender": gender, "country": country, "signup_date": signup, "last_login": login, "monthly_spend": spend}
	if status != "" {
		m["account_status"] = status
	}
	return m
}

func TestPreprocessing(t *testing.T) {
	asOf := time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)
	day := func(d int) *time.Time { v := asOf.AddDate(0, 0, -d); return &v }
	var train []Record
	for i := range 300 {
		country := ptr("FR")
		if i == 0 {
			country = ptr("LU") // too rare for a column of its own
		}
		train = append(train, user(ptr(float64(20+i%3*10)), ptr([]string{"female", "male"}[i%2]), country, day(400), day(10), ptr(9.0), ""))
	}
	p, err := FitPreprocessing(usersDecl(t).Features, train)
	if err != nil {
		t.Fatal(err)
	}
	if p.Features[0].Median != 30 || !near(p.Features[1].Mean, 390, 1e-9) || !p.AsOf.Equal(*day(10)) {
		t.Errorf("numeric %+v", p.Features[:2])
	}
	names := p.Names()
	x := p.Vector(nil, user(nil, ptr("other-value"), ptr("LU"), nil, day(10), nil, ""))
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

// The kinds of feature a declaration can ask for, each on a record that
// has its value and on one that lacks it.
func TestFeatureKinds(t *testing.T) {
	ref := time.Date(2025, 6, 30, 0, 0, 0, 0, time.UTC)
	decl := []FeatureDecl{
		{Column: "spend", Kind: KindNumeric, Transform: Log1p, Name: "log_spend"},
		{Column: "joined", Kind: KindNumeric, Transform: DaysSince, Name: "days_since_joined"},
		{Column: "remote", Kind: KindBoolean, Name: "remote"},
		{Column: "title", Kind: KindTokens, Name: "title", Buckets: 8},
		{Column: "city", Kind: KindCategorical, Name: "city", Top: 1, MinShare: 0.005},
	}
	var train []Record
	for i := range 100 {
		train = append(train, Map{
			"spend": float64(i % 2 * 10), "joined": ref.AddDate(0, 0, -i%2*10), "remote": i%2 == 0,
			"title": "Go engineer", "city": []string{"Paris", "Paris", "Lyon", "Nice"}[i%4],
		})
	}
	p, err := FitPreprocessing(decl, train)
	if err != nil {
		t.Fatal(err)
	}
	if !p.AsOf.Equal(ref) {
		t.Errorf("reference date %v, want the newest date of the column, %v", p.AsOf, ref)
	}
	if want := []string{"Paris", Other, Missing}; !slices.Equal(p.Features[4].Categories, want) {
		t.Errorf("categories %v, want the top 1 and other, missing: %v", p.Features[4].Categories, want)
	}
	vec := func(r Record) map[string]float64 {
		out := map[string]float64{}
		for i, v := range p.Vector(nil, r) {
			out[p.Names()[i]] = v
		}
		return out
	}
	full := vec(Map{"spend": math.E - 1, "joined": ref.AddDate(0, 0, -20), "remote": ptr(false), "title": "Senior GO developer!", "city": "Nice"})
	empty := vec(Map{"spend": -3.0, "remote": "maybe"})
	buckets := func(v map[string]float64) []int {
		var on []int
		for b := range 8 {
			if v["title#"+strconv.Itoa(b)] == 1 {
				on = append(on, b)
			}
		}
		return on
	}
	var wantOn []int
	for _, tok := range []string{"senior", "go", "developer"} {
		wantOn = append(wantOn, Bucket(tok, 8))
	}
	slices.Sort(wantOn)
	wantOn = slices.Compact(wantOn)
	for name, c := range map[string]struct{ got, want float64 }{
		"log1p":                    {full["log_spend"], (1 - p.Features[0].Mean) / p.Features[0].Std},
		"days since":               {full["days_since_joined"], (20 - p.Features[1].Mean) / p.Features[1].Std},
		"days since present":       {full["days_since_joined_missing"], 0},
		"boolean false":            {full["remote=false"], 1},
		"boolean true":             {full["remote=true"], 0},
		"rare category":            {full["city=other"], 1},
		"negative log1p":           {empty["log_spend_missing"], 1},
		"negative log1p median":    {empty["log_spend"], (p.Features[0].Median - p.Features[0].Mean) / p.Features[0].Std},
		"missing date":             {empty["days_since_joined_missing"], 1},
		"boolean not one":          {empty["remote=missing"], 1},
		"categorical missing":      {empty["city=missing"], 1},
		"tokens of a missing text": {float64(len(buckets(empty))), 0},
	} {
		if !near(c.got, c.want, 1e-9) {
			t.Errorf("%s: %v, want %v", name, c.got, c.want)
		}
	}
	if got := buckets(full); !slices.Equal(got, wantOn) {
		t.Errorf("token buckets %v, want %v (tokens %q)", got, wantOn, Tokens("Senior GO developer!"))
	}
}

func TestParseDecl(t *testing.T) {
	good := `
description: jobs
sources: [{kind: http}]
model:
  kind: ridge
  label: {column: salary}
  features:
    - {column: posted, kind: numeric, transform: days_since}
    - {column: title, kind: tokens}
    - {column: city, kind: categorical}
views: [{name: v, sql: select 1}]
`
	d, err := ParseDecl([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if d.Features[0].Name != "posted" || d.Features[1].Buckets != DefaultBuckets || d.Features[2].Top != 0 || d.Features[2].MinShare != DefaultMinShare ||
		d.Train.TestShare != DefaultTestShare || d.Train.Threshold != 0 || d.Train.L2 != 1 || d.Train.Seed != 1 || d.Train.ClassWeight != "none" ||
		!slices.Equal(d.Columns(), []string{"salary", "posted", "title", "city"}) {
		t.Errorf("defaults not filled: %+v", d)
	}
	users := usersDecl(t)
	if users.Kind != Logistic || users.Name != "churn" || users.Train.Retrain != 24*time.Hour || !slices.Equal(users.Label.Positive, []string{"churned"}) {
		t.Errorf("users declaration %+v", users)
	}
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown key":          {"model:\n  kind: logistic\n  lable: {column: a}\n", "field lable not found"},
		"unknown section":      {"modle: {}\n", "field modle not found"},
		"no model":             {"description: x\n", "no model section"},
		"bad kind":             {"model: {kind: forest, label: {column: y}, features: [{column: a, kind: numeric}]}", `kind "forest"`},
		"no positive":          {"model: {kind: logistic, label: {column: y}, features: [{column: a, kind: numeric}]}", "positive values"},
		"ridge with positive":  {"model: {kind: ridge, label: {column: y, positive: [a]}, features: [{column: a, kind: numeric}]}", "no positive values"},
		"bad transform":        {"model: {kind: ridge, label: {column: y}, features: [{column: a, kind: numeric, transform: sqrt}]}", `transform "sqrt"`},
		"transform on text":    {"model: {kind: ridge, label: {column: y}, features: [{column: a, kind: tokens, transform: log1p}]}", "takes no transform"},
		"label as feature":     {"model: {kind: ridge, label: {column: y}, features: [{column: y, kind: numeric}]}", "the label is no feature"},
		"twice the same name":  {"model: {kind: ridge, label: {column: y}, features: [{column: a, kind: numeric}, {column: a, kind: numeric}]}", "a second feature"},
		"top on numeric":       {"model: {kind: ridge, label: {column: y}, features: [{column: a, kind: numeric, top: 3}]}", "top 3"},
		"ridge threshold":      {"model: {kind: ridge, label: {column: y}, features: [{column: a, kind: numeric}], train: {threshold: 0.3}}", "no threshold"},
		"bad class weight":     {"model: {kind: logistic, label: {column: y, positive: [a]}, features: [{column: a, kind: numeric}], train: {class_weight: heavy}}", `class_weight "heavy"`},
		"bad min share":        {"model: {kind: ridge, label: {column: y}, features: [{column: a, kind: categorical, min_share: 2}]}", "min_share 2"},
		"bad test share":       {"model: {kind: ridge, label: {column: y}, features: [{column: a, kind: numeric}], train: {test_share: 1.5}}", "test_share 1.5"},
		"bad feature kind":     {"model: {kind: ridge, label: {column: y}, features: [{column: a, kind: image}]}", `kind "image"`},
		"no features no label": {"model: {kind: ridge}", "no features"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseDecl([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseDecl(%q) = %v, want an error mentioning %q", tc.yaml, err, tc.want)
			}
		})
	}
}

func train(t testing.TB, records []Record, d *Decl, seed uint64, classWeight string) (*Model, *Split) {
	t.Helper()
	c := *d
	c.Train.Seed, c.Train.ClassWeight = seed, cmp.Or(classWeight, "none")
	m, split, err := TrainModel(records, Config{Dataset: "users", Decl: &c})
	if err != nil {
		t.Fatal(err)
	}
	return m, split
}

func TestModelArtefactRoundTripAndRefusals(t *testing.T) {
	records := synthetic(3000, 5)
	d := usersDecl(t)
	d.Train.TestShare = 0.25
	m, split := train(t, records, d, 3, "")
	if m.Test.AUC < 0.7 || m.Test.Rows != len(split.TestY) || m.Training.Iterations == 0 || len(m.Training.CPUSecondsPerEpoch) != m.Training.Iterations {
		t.Errorf("model %+v / test %+v", m.Training, m.Test)
	}
	if m.Name != "churn" || m.Kind != Logistic || m.Label.Column != "account_status" || m.Threshold != 0.5 {
		t.Errorf("model %s, kind %s, label %+v, threshold %v: not the declaration's", m.Name, m.Kind, m.Label, m.Threshold)
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
	for _, r := range records[:50] {
		if a, b := m.Score(r), back.Score(r); a != b {
			t.Fatalf("loaded model scores %v, trained one %v", b, a)
		}
	}
	if latest, err := Latest(dir, "churn"); err != nil || latest != path {
		t.Errorf("Latest = %q, %v; want %q", latest, err, path)
	}

	for name, spoil := range map[string]func(string) string{
		"unknown kind":    func(s string) string { return strings.Replace(s, `"kind": "categorical"`, `"kind": "image"`, 1) },
		"no reference":    func(s string) string { return strings.Replace(s, `"as_of"`, `"as_of_not"`, 1) },
		"other format":    func(s string) string { return strings.Replace(s, `"format": 2`, `"format": 3`, 1) },
		"weights missing": func(s string) string { return strings.Replace(s, `"weights": [`, `"weights": [1,`, 1) },
		"model kind":      func(s string) string { return strings.Replace(s, `"kind": "logistic"`, `"kind": "forest"`, 1) },
	} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		spoilt := spoil(string(b))
		if spoilt == string(b) {
			t.Fatalf("%s: the spoiler changed nothing", name)
		}
		bad := filepath.Join(t.TempDir(), "bad.json")
		if err := os.WriteFile(bad, []byte(spoilt), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(bad); err == nil {
			t.Errorf("%s: Load accepted the artefact", name)
		}
	}
}

func TestTrainRefusesWhatItCannotLearn(t *testing.T) {
	records := synthetic(100, 1)
	for _, r := range records {
		r.(Map)["account_status"] = "active"
	}
	d := usersDecl(t)
	if _, _, err := TrainModel(records, Config{Decl: d}); err == nil || !strings.Contains(err.Error(), "same label") {
		t.Errorf("one class: %v", err)
	}
	if _, _, err := TrainModel(nil, Config{Decl: d}); err == nil {
		t.Error("no data: no error")
	}
	d.Train.ClassWeight = "heavy"
	if _, _, err := TrainModel(synthetic(100, 1), Config{Decl: d}); err == nil || !strings.Contains(err.Error(), `class_weight "heavy"`) {
		t.Errorf("bad class weight: %v", err)
	}
}

// Records without a label are left out of training.
func TestTrainLeavesOutUnlabelledRecords(t *testing.T) {
	records := synthetic(500, 2)
	for _, r := range records[:40] {
		delete(r.(Map), "account_status")
	}
	m, _ := train(t, records, usersDecl(t), 1, "")
	if m.Training.Rows != 460 {
		t.Errorf("trained on %d records, want the 460 labelled ones", m.Training.Rows)
	}
}

// A ridge model of a noiseless linear target finds its coefficients, and
// its metrics say so; with a penalty the normal equations hold at the
// optimum.
func TestRidge(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var records []Record
	for range 400 {
		a, b := rng.NormFloat64()*3+10, rng.NormFloat64()
		records = append(records, Map{"a": a, "b": b, "kind": []string{"x", "y"}[rng.IntN(2)], "target": 5 + 2*a - 3*b})
	}
	d, err := ParseDecl([]byte(`model: {kind: ridge, name: price, label: {column: target}, features: [{column: a, kind: numeric}, {column: b, kind: numeric}, {column: kind, kind: categorical}], train: {l2: 1e-9}}`))
	if err != nil {
		t.Fatal(err)
	}
	m, split, err := TrainModel(records, Config{Dataset: "things", Decl: d})
	if err != nil {
		t.Fatal(err)
	}
	// Standardised features: the weight of a is 2·std(a), of b −3·std(b).
	pa, pb := m.Preprocessing.Features[0], m.Preprocessing.Features[1]
	if !near(m.Weights[0], 2*pa.Std, 1e-5) || !near(m.Weights[1], -3*pb.Std, 1e-5) {
		t.Errorf("weights %v, want %v and %v", m.Weights[:2], 2*pa.Std, -3*pb.Std)
	}
	if m.Test.RMSE > 1e-5 || m.Test.MAE > 1e-5 || !near(m.Test.R2, 1, 1e-9) || m.Threshold != 0 || m.Name != "price" {
		t.Errorf("test metrics %+v, threshold %v, name %s", m.Test, m.Threshold, m.Name)
	}
	if r := records[7]; !near(m.Score(r), r.Value("target").(float64), 1e-5) {
		t.Errorf("prediction %v, target %v", m.Score(r), r.Value("target"))
	}
	path, err := m.Save(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatal(err)
	}

	const l2 = 50.0
	fit, err := TrainRidge(split.TrainX, split.TrainY, l2)
	if err != nil {
		t.Fatal(err)
	}
	grad := make([]float64, split.TrainX.Cols+1)
	for i := range split.TrainX.Rows {
		r := fit.Linear(split.TrainX.Row(i)) - split.TrainY[i]
		for j, v := range split.TrainX.Row(i) {
			grad[j] += r * v
		}
		grad[len(grad)-1] += r
	}
	for j, w := range fit.Weights {
		grad[j] += l2 * w
	}
	for j, g := range grad {
		if math.Abs(g) > 1e-6 {
			t.Errorf("gradient[%d] = %g at the ridge optimum", j, g)
		}
	}
}

func TestEvaluateRegressionByHand(t *testing.T) {
	m := EvaluateRegression([]float64{1, 2, 3, 4}, []float64{1, 2, 4, 2})
	// errors 0, 0, −1, 2; mean 2.5, SStot 5, SSres 5.
	if !near(m.RMSE, math.Sqrt(5.0/4), 1e-12) || !near(m.MAE, 0.75, 1e-12) || !near(m.R2, 0, 1e-12) || m.Rows != 4 {
		t.Errorf("metrics %+v", m)
	}
}

// synthetic makes users whose churn follows inactivity and spend.
func synthetic(n int, seed uint64) []Record {
	rng := rand.New(rand.NewPCG(seed, 1))
	asOf := time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)
	out := make([]Record, n)
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
		age := ptr(float64(18 + rng.IntN(60)))
		if i%13 == 0 {
			age = nil
		}
		out[i] = user(age, ptr([]string{"female", "male"}[rng.IntN(2)]), ptr([]string{"FR", "DE", "US"}[rng.IntN(3)]), &signup, &login, &spend, status)
	}
	return out
}

// BenchmarkScore is the scorer's per-record work: features and prediction
// of one user.
func BenchmarkScore(b *testing.B) {
	records := synthetic(5000, 9)
	m, _ := train(b, records, usersDecl(b), 1, "")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = m.Predict(m.Score(records[i%len(records)]))
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkTrain200k trains on 200,000 synthetic users.
func BenchmarkTrain200k(b *testing.B) {
	records := synthetic(200_000, 10)
	d := usersDecl(b)
	for b.Loop() {
		train(b, records, d, 1, "")
	}
}

func TestBalancedClassWeightRaisesRecall(t *testing.T) {
	records := synthetic(4000, 12) // about a third churned
	d := usersDecl(t)
	d.Train.TestShare = 0.25
	plain, _ := train(t, records, d, 2, "")
	weighted, _ := train(t, records, d, 2, "balanced")
	if weighted.Test.Recall <= plain.Test.Recall || weighted.Training.ClassWeight != "balanced" {
		t.Errorf("recall %.3f balanced vs %.3f unweighted: balancing the classes should find more churners", weighted.Test.Recall, plain.Test.Recall)
	}
}
