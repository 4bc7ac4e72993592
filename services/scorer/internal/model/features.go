// Package model is the scorer's model of a dataset, as the dataset
// declares it (Decl, the model section of its dataset.yaml): the features
// of its clean records and their preprocessing fitted on a training split,
// an L2-regularised logistic regression (a binary label) or a ridge
// regression (a numeric target), their evaluation, and the versioned
// artefact that carries all of it from `scorer train` to the scorer.
//
// Training and scoring compute features with the same code (Preprocessing
// .Vector), from the same fitted values stored in the artefact, so the two
// can never disagree. Records are read generically (Record), by column.
package model

import (
	"cmp"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Feature is one declared feature with what training fitted for it.
//
// A numeric feature is the column's number, or its log1p (a negative
// number is missing), or the days from its date to the model's reference
// date (Preprocessing.AsOf); a missing value takes the training median and
// sets the feature's missing indicator, then the value is standardised
// with the training mean and deviation. A categorical feature is one-hot
// over its Categories: the most frequent training values (at most the
// declared top, each with at least the declared share of the rows), then
// "other" (rare or unseen values) and "missing". A boolean feature is
// one-hot over true, false and missing. A tokens feature is the words of a
// text hashed into Buckets columns, each 1 when a word of the text falls
// into it.
type Feature struct {
	Name       string   `json:"name"`
	Column     string   `json:"column"`
	Kind       string   `json:"kind"`
	Transform  string   `json:"transform,omitempty"`
	Median     float64  `json:"median,omitempty"`
	Mean       float64  `json:"mean,omitempty"`
	Std        float64  `json:"std,omitempty"`
	Categories []string `json:"categories,omitempty"`
	Buckets    int      `json:"buckets,omitempty"`
	// Edges and Shares are the feature's distribution over the training
	// split, against which drift is measured (Bins, PSI): a numeric
	// feature's values fall in the bins the Edges (its training deciles)
	// cut, then a last bin for missing values; a categorical or boolean
	// one's in its Categories. Shares are the training shares of the bins.
	// A tokens feature has none.
	Edges  []float64 `json:"edges,omitempty"`
	Shares []float64 `json:"shares,omitempty"`
}

// The extra categories of every categorical feature, and the categories of
// a boolean one.
const (
	Other   = "other"
	Missing = "missing"
)

// booleanCategories are the categories of a boolean feature.
func booleanCategories() []string { return []string{"true", "false", Missing} }

// Preprocessing turns records into feature vectors.
type Preprocessing struct {
	// AsOf is the data's reference date, from which days_since features
	// count: the newest date, in the training split, of any column a
	// days_since feature reads; nil when there is none.
	AsOf     *time.Time `json:"as_of,omitempty"`
	Features []Feature  `json:"features"`
}

// FitPreprocessing fits the preprocessing of the declared features on the
// training records.
func FitPreprocessing(decl []FeatureDecl, train []Record) (*Preprocessing, error) {
	if len(train) == 0 {
		return nil, errors.New("no training records")
	}
	p := &Preprocessing{}
	for _, d := range decl {
		if d.Kind != KindNumeric || d.Transform != DaysSince {
			continue
		}
		for _, r := range train {
			if t, ok := Date(r.Value(d.Column)); ok && (p.AsOf == nil || t.After(*p.AsOf)) {
				p.AsOf = &t
			}
		}
		if p.AsOf == nil {
			p.AsOf = new(time.Unix(0, 0).UTC()) // no date at all: every value is missing
		}
	}
	for _, d := range decl {
		f := Feature{Name: d.Name, Column: d.Column, Kind: d.Kind, Transform: d.Transform}
		switch d.Kind {
		case KindNumeric:
			fitNumeric(&f, train, p.AsOf)
		case KindCategorical:
			f.Categories = topCategories(f.Column, d.Top, d.MinShare, train)
		case KindBoolean:
			f.Categories = booleanCategories()
		case KindTokens:
			f.Buckets = d.Buckets
		default:
			return nil, fmt.Errorf("feature %s: kind %q", d.Name, d.Kind)
		}
		fitShares(&f, train, p.AsOf)
		p.Features = append(p.Features, f)
	}
	return p, p.Check()
}

// DriftBins is how many bins of equal training share a numeric feature's
// values are cut into for drift (besides the bin of missing values).
const DriftBins = 10

// fitShares sets the training distribution of f: the bin edges of a
// numeric feature (its training deciles, each once), and every feature's
// share of the training records in each bin.
func fitShares(f *Feature, train []Record, asOf *time.Time) {
	switch f.Kind {
	case KindTokens:
		return
	case KindNumeric:
		var seen []float64
		for _, r := range train {
			if v, ok := f.number(r, asOf); ok {
				seen = append(seen, v)
			}
		}
		slices.Sort(seen)
		f.Edges = []float64{}
		if len(seen) > 0 {
			for q := 1; q < DriftBins; q++ {
				f.Edges = append(f.Edges, seen[q*len(seen)/DriftBins])
			}
			f.Edges = slices.Compact(f.Edges)
		}
	}
	counts := make([]float64, f.bins())
	for _, r := range train {
		counts[f.bin(r, asOf)]++
	}
	for i := range counts {
		counts[i] /= float64(len(train))
	}
	f.Shares = counts
}

// bins is how many drift bins f has.
func (f *Feature) bins() int {
	switch f.Kind {
	case KindNumeric:
		return len(f.Edges) + 2
	case KindCategorical, KindBoolean:
		return len(f.Categories)
	}
	return 0
}

// bin is the drift bin of r's value of f.
func (f *Feature) bin(r Record, asOf *time.Time) int {
	if f.Kind == KindNumeric {
		v, ok := f.number(r, asOf)
		if !ok {
			return len(f.Edges) + 1
		}
		i, _ := slices.BinarySearch(f.Edges, v) // edges[i-1] < v ≤ edges[i]
		return i
	}
	return slices.Index(f.Categories, f.category(r))
}

// Drifts says whether feature i has a training distribution to measure
// drift against.
func (p *Preprocessing) Drifts(i int) bool {
	return len(p.Features[i].Shares) > 0
}

// Bin is the drift bin of r's value of feature i, an index into its
// Shares; -1 when it has none.
func (p *Preprocessing) Bin(i int, r Record) int {
	if !p.Drifts(i) {
		return -1
	}
	return p.Features[i].bin(r, p.AsOf)
}

// MinDriftShare stands for an empty bin's share in PSI, which would
// otherwise be infinite.
const MinDriftShare = 1e-4

// PSI is the population stability index of observed bin counts against
// expected shares: Σ (aᵢ − eᵢ)·ln(aᵢ/eᵢ) over the bins, where aᵢ are the
// observed shares, both floored at MinDriftShare. 0 is no shift; above 0.1
// a moderate one, above 0.25 a large one. It is 0 without observations.
func PSI(expected []float64, counts []int) float64 {
	total := 0
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	psi := 0.0
	for i, e := range expected {
		a := max(float64(counts[i])/float64(total), MinDriftShare)
		e = max(e, MinDriftShare)
		psi += (a - e) * math.Log(a/e)
	}
	return psi
}

func fitNumeric(f *Feature, train []Record, asOf *time.Time) {
	var seen []float64
	for _, r := range train {
		if v, ok := f.number(r, asOf); ok {
			seen = append(seen, v)
		}
	}
	f.Std = 1
	if len(seen) > 0 {
		slices.Sort(seen)
		f.Median = seen[len(seen)/2]
	}
	// Mean and deviation of the imputed column, as the model sees it.
	var sum, sq float64
	for _, r := range train {
		v := f.imputed(r, asOf)
		sum += v
		sq += v * v
	}
	n := float64(len(train))
	f.Mean = sum / n
	if v := sq/n - f.Mean*f.Mean; v > 1e-12 {
		f.Std = math.Sqrt(v)
	}
}

// topCategories are the most frequent values of column in train (at most
// top of them, 0: no limit) that have at least minShare of the records, by
// count then name, then Other and Missing.
func topCategories(column string, top int, minShare float64, train []Record) []string {
	counts := map[string]int{}
	for _, r := range train {
		if v, ok := Text(r.Value(column)); ok {
			counts[v]++
		}
	}
	var cats []string
	for c, n := range counts {
		if float64(n) >= minShare*float64(len(train)) && c != Other && c != Missing {
			cats = append(cats, c)
		}
	}
	slices.SortFunc(cats, func(a, b string) int { return cmp.Or(counts[b]-counts[a], cmp.Compare(a, b)) })
	if top > 0 {
		cats = cats[:min(top, len(cats))]
	}
	return append(cats, Other, Missing)
}

// number is a numeric feature's value of r, before imputation and
// scaling, with the model's reference date asOf; false when it is missing.
func (f *Feature) number(r Record, asOf *time.Time) (float64, bool) {
	v := r.Value(f.Column)
	switch f.Transform {
	case DaysSince:
		t, ok := Date(v)
		if !ok {
			return 0, false
		}
		return asOf.Sub(t).Hours() / 24, true
	case Log1p:
		// Money and counts spread over orders of magnitude: their
		// logarithm is what moves the odds evenly.
		x, ok := Number(v)
		if !ok || x < 0 {
			return 0, false
		}
		return math.Log1p(x), true
	}
	return Number(v)
}

func (f *Feature) imputed(r Record, asOf *time.Time) float64 {
	if v, ok := f.number(r, asOf); ok {
		return v
	}
	return f.Median
}

// category is the category a categorical or boolean feature's value of r
// falls in.
func (f *Feature) category(r Record) string {
	if f.Kind == KindBoolean {
		b, ok := Bool(r.Value(f.Column))
		if !ok {
			return Missing
		}
		return strconv.FormatBool(b)
	}
	v, ok := Text(r.Value(f.Column))
	switch {
	case !ok:
		return Missing
	case v != Other && v != Missing && slices.Contains(f.Categories, v):
		return v
	}
	return Other
}

// Tokens are the words of a text, lower-cased: its runs of letters and
// digits.
func Tokens(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// Bucket is the column of a token among n: its 32-bit FNV-1a hash modulo n.
func Bucket(token string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(token))     // hash.Hash's Write never returns an error
	return int(h.Sum32() % uint32(n)) // #nosec G115 -- n is a feature count, far below 2^31
}

// Check refuses a preprocessing that is not complete.
func (p *Preprocessing) Check() error {
	if len(p.Features) == 0 {
		return errors.New("no features")
	}
	var errs []error
	for _, f := range p.Features {
		if f.Name == "" || f.Column == "" {
			errs = append(errs, fmt.Errorf("feature %q of column %q: no name or column", f.Name, f.Column))
		}
		switch f.Kind {
		case KindNumeric:
			if f.Std <= 0 || math.IsNaN(f.Mean+f.Median+f.Std) || math.IsInf(f.Mean+f.Median+f.Std, 0) {
				errs = append(errs, fmt.Errorf("numeric feature %q has no usable statistics", f.Name))
			}
			switch f.Transform {
			case "", Log1p:
			case DaysSince:
				if p.AsOf == nil || p.AsOf.IsZero() {
					errs = append(errs, fmt.Errorf("numeric feature %q counts days since a date but the model has no reference date", f.Name))
				}
			default:
				errs = append(errs, fmt.Errorf("numeric feature %q: transform %q is not one the scorer computes", f.Name, f.Transform))
			}
		case KindCategorical:
			if !slices.Contains(f.Categories, Other) || !slices.Contains(f.Categories, Missing) {
				errs = append(errs, fmt.Errorf("categorical feature %q lacks the %q and %q categories", f.Name, Other, Missing))
			}
		case KindBoolean:
			if !slices.Equal(f.Categories, booleanCategories()) {
				errs = append(errs, fmt.Errorf("boolean feature %q: categories %v, want %v", f.Name, f.Categories, booleanCategories()))
			}
		case KindTokens:
			if f.Buckets < 1 {
				errs = append(errs, fmt.Errorf("tokens feature %q has no buckets", f.Name))
			}
		default:
			errs = append(errs, fmt.Errorf("feature %q: kind %q is not one the scorer computes", f.Name, f.Kind))
		}
		if len(f.Shares) > 0 && (len(f.Shares) != f.bins() || !slices.IsSorted(f.Edges)) {
			errs = append(errs, fmt.Errorf("feature %q: %d training shares for %d drift bins", f.Name, len(f.Shares), f.bins()))
		}
	}
	return errors.Join(errs...)
}

// Names are the columns of the vectors Vector makes: the numeric features'
// values, then their missing indicators, then the other features' columns
// in their order.
func (p *Preprocessing) Names() []string {
	var names, missing []string
	for _, f := range p.Features {
		if f.Kind == KindNumeric {
			names = append(names, f.Name)
			missing = append(missing, f.Name+"_missing")
		}
	}
	names = append(names, missing...)
	for _, f := range p.Features {
		switch f.Kind {
		case KindCategorical, KindBoolean:
			for _, c := range f.Categories {
				names = append(names, f.Name+"="+c)
			}
		case KindTokens:
			for b := range f.Buckets {
				names = append(names, f.Name+"#"+strconv.Itoa(b))
			}
		}
	}
	return names
}

// Width is the length of the vectors Vector makes.
func (p *Preprocessing) Width() int {
	w := 0
	for _, f := range p.Features {
		switch f.Kind {
		case KindNumeric:
			w += 2
		case KindCategorical, KindBoolean:
			w += len(f.Categories)
		case KindTokens:
			w += f.Buckets
		}
	}
	return w
}

// Vector appends the feature vector of r to dst.
func (p *Preprocessing) Vector(dst []float64, r Record) []float64 {
	for _, f := range p.Features {
		if f.Kind == KindNumeric {
			dst = append(dst, (f.imputed(r, p.AsOf)-f.Mean)/f.Std)
		}
	}
	for _, f := range p.Features {
		if f.Kind == KindNumeric {
			missing := 0.0
			if _, ok := f.number(r, p.AsOf); !ok {
				missing = 1
			}
			dst = append(dst, missing)
		}
	}
	for i := range p.Features {
		f := &p.Features[i]
		switch f.Kind {
		case KindCategorical, KindBoolean:
			hot := f.category(r)
			for _, c := range f.Categories {
				if c == hot {
					dst = append(dst, 1)
				} else {
					dst = append(dst, 0)
				}
			}
		case KindTokens:
			at := len(dst)
			dst = append(dst, make([]float64, f.Buckets)...)
			if s, ok := Text(r.Value(f.Column)); ok {
				for _, t := range Tokens(s) {
					dst[at+Bucket(t, f.Buckets)] = 1
				}
			}
		}
	}
	return dst
}
