package model

import (
	"cmp"
	"math"
	"slices"
	"testing"
	"time"
)

// legacyVectors are the users features as the scorer computed them before
// features were declared (one reference date, the newest signup or login
// date of all the data; age, tenure, days since login, log spend, gender
// and country with other and missing), fitted on train and applied to
// rows.
func legacyVectors(train, rows []Record) [][]float64 {
	var asOf time.Time
	for _, r := range append(slices.Clone(train), rows...) {
		for _, c := range []string{"signup_date", "last_login"} {
			if d, ok := Date(r.Value(c)); ok && d.After(asOf) {
				asOf = d
			}
		}
	}
	days := func(c string) func(Record) (float64, bool) {
		return func(r Record) (float64, bool) {
			d, ok := Date(r.Value(c))
			return asOf.Sub(d).Hours() / 24, ok
		}
	}
	numeric := []func(Record) (float64, bool){
		func(r Record) (float64, bool) { return Number(r.Value("age")) },
		days("signup_date"), days("last_login"),
		func(r Record) (float64, bool) {
			v, ok := Number(r.Value("monthly_spend"))
			return math.Log1p(v), ok && v >= 0
		},
	}
	type stats struct{ median, mean, std float64 }
	var fitted []stats
	for _, f := range numeric {
		var seen []float64
		for _, r := range train {
			if v, ok := f(r); ok {
				seen = append(seen, v)
			}
		}
		slices.Sort(seen)
		s := stats{median: seen[len(seen)/2], std: 1}
		var sum, sq float64
		for _, r := range train {
			v, ok := f(r)
			if !ok {
				v = s.median
			}
			sum += v
			sq += v * v
		}
		n := float64(len(train))
		s.mean = sum / n
		if v := sq/n - s.mean*s.mean; v > 1e-12 {
			s.std = math.Sqrt(v)
		}
		fitted = append(fitted, s)
	}
	var cats [][]string
	for _, c := range []string{"gender", "country"} {
		counts := map[string]int{}
		for _, r := range train {
			if v, ok := Text(r.Value(c)); ok {
				counts[v]++
			}
		}
		var keep []string
		for v, n := range counts {
			if float64(n) >= 0.005*float64(len(train)) {
				keep = append(keep, v)
			}
		}
		slices.SortFunc(keep, func(a, b string) int { return cmp.Or(counts[b]-counts[a], cmp.Compare(a, b)) })
		cats = append(cats, append(keep, "other", "missing"))
	}
	var out [][]float64
	for _, r := range rows {
		var x, missing []float64
		for i, f := range numeric {
			v, ok := f(r)
			m := 0.0
			if !ok {
				v, m = fitted[i].median, 1
			}
			x = append(x, (v-fitted[i].mean)/fitted[i].std)
			missing = append(missing, m)
		}
		x = append(x, missing...)
		for i, c := range []string{"gender", "country"} {
			hot := "missing"
			if v, ok := Text(r.Value(c)); ok {
				hot = "other"
				if slices.Contains(cats[i], v) {
					hot = v
				}
			}
			for _, cat := range cats[i] {
				x = append(x, map[bool]float64{true: 1}[cat == hot])
			}
		}
		out = append(out, x)
	}
	return out
}

// The users declaration computes the features the scorer computed before
// features were declared, column for column.
func TestUsersDeclarationComputesTheFeaturesOfBefore(t *testing.T) {
	records := synthetic(3000, 21)
	for i, r := range records { // rare and missing values too
		m := r.(Map)
		switch i % 50 {
		case 1:
			m["country"] = "LU"
		case 2:
			m["gender"], m["signup_date"] = nil, nil
		case 3:
			m["monthly_spend"] = ptr(-1.0)
		case 4:
			m["last_login"] = (*time.Time)(nil)
		}
	}
	_, split := train(t, records, usersDecl(t), 4, "")
	want := legacyVectors(split.TrainRows, split.TestRows)
	if split.TestX.Cols != len(want[0]) {
		t.Fatalf("%d features %v, the scorer of before made %d", split.TestX.Cols, split.Features, len(want[0]))
	}
	if split.TestX.Cols != 4+4+5+5 {
		t.Errorf("%d features, want 4 numeric, 4 indicators, 3 genders and 3 countries with other and missing", split.TestX.Cols)
	}
	for i := range split.TestX.Rows {
		for j, v := range split.TestX.Row(i) {
			if !near(v, want[i][j], 1e-9) {
				t.Fatalf("row %d, feature %s: %v, the scorer of before computed %v", i, split.Features[j], v, want[i][j])
			}
		}
	}
}
