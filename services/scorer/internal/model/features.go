// Package model is the churn model of the users dataset: the features a
// clean user gives, their preprocessing fitted on a training split, an
// L2-regularised logistic regression, its evaluation, and the versioned
// artefact that carries all of it from `scorer train` to the scorer.
//
// Training and scoring compute features with the same code (Preprocessing
// .Vector), from the same fitted values stored in the artefact, so the two
// can never disagree.
package model

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"
)

// User is what the model reads of a clean user; nil is missing.
type User struct {
	Age          *float64
	Gender       *string
	Country      *string
	SignupDate   *time.Time
	LastLogin    *time.Time
	MonthlySpend *float64
}

// The numeric features, computed from a user relative to the model's
// reference date.
var numeric = map[string]func(u User, asOf time.Time) (float64, bool){
	"age": func(u User, _ time.Time) (float64, bool) { return deref(u.Age) },
	"tenure_days": func(u User, asOf time.Time) (float64, bool) {
		return daysBefore(asOf, u.SignupDate)
	},
	"days_since_login": func(u User, asOf time.Time) (float64, bool) {
		return daysBefore(asOf, u.LastLogin)
	},
	// Money is spread over orders of magnitude: its logarithm is what
	// moves the odds evenly.
	"log_monthly_spend": func(u User, _ time.Time) (float64, bool) {
		if u.MonthlySpend == nil || *u.MonthlySpend < 0 {
			return 0, false
		}
		return math.Log1p(*u.MonthlySpend), true
	},
}

// The categorical features.
var categorical = map[string]func(u User) *string{
	"gender":  func(u User) *string { return u.Gender },
	"country": func(u User) *string { return u.Country },
}

// NumericFeatures and CategoricalFeatures name the features this code
// computes, in the order an artefact made by Fit lists them.
var (
	NumericFeatures     = []string{"age", "tenure_days", "days_since_login", "log_monthly_spend"}
	CategoricalFeatures = []string{"gender", "country"}
)

func deref(p *float64) (float64, bool) {
	if p == nil {
		return 0, false
	}
	return *p, true
}

func daysBefore(asOf time.Time, t *time.Time) (float64, bool) {
	if t == nil {
		return 0, false
	}
	return asOf.Sub(*t).Hours() / 24, true
}

// Numeric is a numeric feature's preprocessing: missing values take the
// training median (and set the feature's missing indicator), then the
// value is standardised with the training mean and deviation.
type Numeric struct {
	Name   string  `json:"name"`
	Median float64 `json:"median"`
	Mean   float64 `json:"mean"`
	Std    float64 `json:"std"`
}

// Categorical is a categorical feature's one-hot encoding: one column per
// category seen often enough in training, plus "other" (rare or unseen
// values) and "missing".
type Categorical struct {
	Name       string   `json:"name"`
	Categories []string `json:"categories"`
}

// The extra categories of every categorical feature.
const (
	Other   = "other"
	Missing = "missing"
)

// Preprocessing turns users into feature vectors.
type Preprocessing struct {
	// AsOf is the reference date of the day-count features.
	AsOf        time.Time     `json:"as_of"`
	Numeric     []Numeric     `json:"numeric"`
	Categorical []Categorical `json:"categorical"`
}

// MinCategoryShare is the share of training users a category needs to get
// its own column; rarer ones are "other".
const MinCategoryShare = 0.005

// FitPreprocessing fits the preprocessing on the training users.
func FitPreprocessing(train []User, asOf time.Time) (*Preprocessing, error) {
	if len(train) == 0 {
		return nil, fmt.Errorf("no training users")
	}
	p := &Preprocessing{AsOf: asOf}
	for _, name := range NumericFeatures {
		var seen []float64
		for _, u := range train {
			if v, ok := numeric[name](u, asOf); ok {
				seen = append(seen, v)
			}
		}
		n := Numeric{Name: name, Std: 1}
		if len(seen) > 0 {
			slices.Sort(seen)
			n.Median = seen[len(seen)/2]
		}
		// Mean and deviation of the imputed column, as the model sees it.
		var sum, sq float64
		for _, u := range train {
			v := p.value(name, n.Median, u)
			sum += v
			sq += v * v
		}
		n.Mean = sum / float64(len(train))
		if v := sq/float64(len(train)) - n.Mean*n.Mean; v > 1e-12 {
			n.Std = math.Sqrt(v)
		}
		p.Numeric = append(p.Numeric, n)
	}
	for _, name := range CategoricalFeatures {
		counts := map[string]int{}
		for _, u := range train {
			if v := categorical[name](u); v != nil {
				counts[*v]++
			}
		}
		var cats []string
		for c, n := range counts {
			if float64(n) >= MinCategoryShare*float64(len(train)) && c != Other && c != Missing {
				cats = append(cats, c)
			}
		}
		slices.SortFunc(cats, func(a, b string) int { return cmp.Or(counts[b]-counts[a], cmp.Compare(a, b)) })
		p.Categorical = append(p.Categorical, Categorical{Name: name, Categories: append(cats, Other, Missing)})
	}
	return p, nil
}

func (p *Preprocessing) value(name string, median float64, u User) float64 {
	if v, ok := numeric[name](u, p.AsOf); ok {
		return v
	}
	return median
}

// Check refuses a preprocessing that names features this code does not
// compute, or that is not complete.
func (p *Preprocessing) Check() error {
	for _, n := range p.Numeric {
		if numeric[n.Name] == nil {
			return fmt.Errorf("numeric feature %q is not one the scorer computes (%v)", n.Name, NumericFeatures)
		}
		if n.Std <= 0 || math.IsNaN(n.Mean) || math.IsNaN(n.Median) {
			return fmt.Errorf("numeric feature %q has no usable statistics", n.Name)
		}
	}
	for _, c := range p.Categorical {
		if categorical[c.Name] == nil {
			return fmt.Errorf("categorical feature %q is not one the scorer computes (%v)", c.Name, CategoricalFeatures)
		}
		if !slices.Contains(c.Categories, Other) || !slices.Contains(c.Categories, Missing) {
			return fmt.Errorf("categorical feature %q lacks the %q and %q categories", c.Name, Other, Missing)
		}
	}
	if p.AsOf.IsZero() {
		return fmt.Errorf("no reference date")
	}
	return nil
}

// Names are the columns of the vectors Vector makes.
func (p *Preprocessing) Names() []string {
	var names []string
	for _, n := range p.Numeric {
		names = append(names, n.Name)
	}
	for _, n := range p.Numeric {
		names = append(names, n.Name+"_missing")
	}
	for _, c := range p.Categorical {
		for _, v := range c.Categories {
			names = append(names, c.Name+"="+v)
		}
	}
	return names
}

// Width is the length of the vectors Vector makes.
func (p *Preprocessing) Width() int {
	w := 2 * len(p.Numeric)
	for _, c := range p.Categorical {
		w += len(c.Categories)
	}
	return w
}

// Vector appends the feature vector of u to dst.
func (p *Preprocessing) Vector(dst []float64, u User) []float64 {
	for _, n := range p.Numeric {
		dst = append(dst, (p.value(n.Name, n.Median, u)-n.Mean)/n.Std)
	}
	for _, n := range p.Numeric {
		missing := 0.0
		if _, ok := numeric[n.Name](u, p.AsOf); !ok {
			missing = 1
		}
		dst = append(dst, missing)
	}
	for _, c := range p.Categorical {
		v := categorical[c.Name](u)
		hot := Missing
		if v != nil {
			hot = Other
			if slices.Contains(c.Categories, *v) {
				hot = *v
			}
		}
		for _, cat := range c.Categories {
			if cat == hot {
				dst = append(dst, 1)
			} else {
				dst = append(dst, 0)
			}
		}
	}
	return dst
}
