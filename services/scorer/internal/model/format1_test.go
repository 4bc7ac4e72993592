package model

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// An artefact trained before datasets declared their models (format 1,
// testdata/churn-format1.json, written by that scorer) still loads, and
// scores users as its own coefficients and statistics say.
func TestLoadsAFormat1Artefact(t *testing.T) {
	const path = "testdata/churn-format1.json"
	m, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != Logistic || m.Label.Column != "account_status" || !slices.Equal(m.Label.Positive, []string{"churned"}) || m.Name != "churn" {
		t.Errorf("read as %s %s of %+v", m.Kind, m.Name, m.Label)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var old struct {
		Preprocessing struct {
			AsOf    time.Time `json:"as_of"`
			Numeric []struct {
				Name              string
				Median, Mean, Std float64
			}
			Categorical []struct {
				Name       string
				Categories []string
			}
		}
		Weights   []float64
		Intercept float64
	}
	if err := json.Unmarshal(b, &old); err != nil {
		t.Fatal(err)
	}
	// The probability format 1 gave a user, from the artefact's own numbers.
	probability := func(u Map) float64 {
		raw := map[string]func() (float64, bool){
			"age": func() (float64, bool) { return Number(u["age"]) },
			"tenure_days": func() (float64, bool) {
				d, ok := Date(u["signup_date"])
				return old.Preprocessing.AsOf.Sub(d).Hours() / 24, ok
			},
			"days_since_login": func() (float64, bool) {
				d, ok := Date(u["last_login"])
				return old.Preprocessing.AsOf.Sub(d).Hours() / 24, ok
			},
			"log_monthly_spend": func() (float64, bool) {
				v, ok := Number(u["monthly_spend"])
				return math.Log1p(v), ok && v >= 0
			},
		}
		var x, missing []float64
		for _, n := range old.Preprocessing.Numeric {
			v, ok := raw[n.Name]()
			if !ok {
				v = n.Median
			}
			x = append(x, (v-n.Mean)/n.Std)
			missing = append(missing, map[bool]float64{false: 1}[ok])
		}
		x = append(x, missing...)
		for _, c := range old.Preprocessing.Categorical {
			hot := "missing"
			if v, ok := u[c.Name].(string); ok {
				hot = "other"
				if slices.Contains(c.Categories, v) {
					hot = v
				}
			}
			for _, cat := range c.Categories {
				x = append(x, map[bool]float64{true: 1}[cat == hot])
			}
		}
		z := old.Intercept
		for i, w := range old.Weights {
			z += w * x[i]
		}
		return 1 / (1 + math.Exp(-z))
	}
	for _, u := range []Map{
		{"age": 31.0, "gender": "female", "country": "DE", "signup_date": "2023-05-01", "last_login": "2025-12-01", "monthly_spend": 12.5},
		{"age": 70.0, "gender": "other", "country": "LU", "signup_date": "2019-01-01", "last_login": "2024-02-01", "monthly_spend": -1.0},
		{},
	} {
		if got, want := m.Score(u), probability(u); math.Abs(got-want) > 1e-12 {
			t.Errorf("user %v: %v, format 1 gave %v", u, got, want)
		}
	}

	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(strings.Replace(string(b), `"name": "tenure_days"`, `"name": "shoe_size"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), `"shoe_size" is not one format 1 computed`) {
		t.Errorf("a format 1 artefact with a feature it never computed: %v", err)
	}
}
