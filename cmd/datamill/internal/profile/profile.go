// Package profile describes a table of text values column by column, as
// `datamill profile` prints it and `datamill init` drafts a declaration
// from it: each column's inferred type, missing share, distinct count, top
// values, numeric quantiles with outliers by the IQR rule, date ranges, and
// the columns that could key the records, with the duplicates of the best.
//
// Memory stays bounded whatever the number of rows: quantiles come from a
// reservoir sample, a column's distinct values are counted up to a cap (a
// count at the cap is a lower bound, "≥N"), and key candidates are checked
// through hashes of their values, up to another cap.
package profile

import (
	"cmp"
	"hash/maphash"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/datamill/datamill/pkg/rules"
)

// Kind is a column's inferred type.
type Kind string

// The kinds a column can have.
const (
	Empty     Kind = "empty" // no value at all
	Int       Kind = "int"
	Decimal   Kind = "decimal"
	Bool      Kind = "bool"
	Date      Kind = "date"
	Timestamp Kind = "timestamp"
	Enum      Kind = "enum-like" // text with few distinct values, each seen again and again
	Text      Kind = "text"
)

// Options bound the work and memory of a profile; zero values take the
// defaults.
type Options struct {
	Top         int    // top values kept per column (5)
	Sample      int    // numeric values sampled per column for quantiles (10,000)
	MaxDistinct int    // distinct values counted per column (10,000)
	MaxKeys     int    // values of a key candidate checked for duplicates (2,000,000)
	Seed        uint64 // of the reservoir sample, for repeatable profiles
}

func (o Options) withDefaults() Options {
	o.Top = cmp.Or(o.Top, 5)
	o.Sample = cmp.Or(o.Sample, 10_000)
	o.MaxDistinct = cmp.Or(o.MaxDistinct, 10_000)
	o.MaxKeys = cmp.Or(o.MaxKeys, 2_000_000)
	return o
}

// The type a column takes is the most specific one that at least
// typeShare of its values have; the others are its invalid values.
const typeShare = 0.9

// Enum-like columns have at most maxEnum distinct values, each seen at
// least twice on average.
const maxEnum = 20

// A key candidate has at least keyShare as many distinct values as there
// are rows: unique, or nearly (a few re-sent records).
const keyShare = 0.9

// Profiler takes rows one at a time. It is not safe for concurrent use.
type Profiler struct {
	opts   Options
	rows   int64
	cols   []*column
	byName map[string]*column
	seed   maphash.Seed
	rng    *rand.Rand
}

// New returns an empty profiler.
func New(opts Options) *Profiler {
	opts = opts.withDefaults()
	return &Profiler{
		opts:   opts,
		byName: map[string]*column{},
		seed:   maphash.MakeSeed(),
		rng:    rand.New(rand.NewPCG(opts.Seed, 0x9e3779b97f4a7c15)), // #nosec G404 -- seeded sampling, reproducible
	}
}

// Declare adds columns in the order given, before any row: a CSV header's
// order. Columns first seen in rows come after, sorted within each row.
func (p *Profiler) Declare(names ...string) {
	for _, n := range names {
		p.col(n)
	}
}

func (p *Profiler) col(name string) *column {
	c := p.byName[name]
	if c == nil {
		c = &column{name: name, counts: map[string]int64{}, keys: map[uint64]uint32{}, misses: map[Kind][]string{}}
		p.byName[name] = c
		p.cols = append(p.cols, c)
	}
	return c
}

// Rows is the number of rows added.
func (p *Profiler) Rows() int64 { return p.rows }

// Add takes one row: its values by column (nil, absent or blank: missing).
func (p *Profiler) Add(row map[string]*string) {
	p.rows++
	var fresh []string
	for name, v := range row {
		if p.byName[name] == nil {
			fresh = append(fresh, name) // a column, even when null here
			continue
		}
		if v != nil {
			p.byName[name].add(p, *v)
		}
	}
	slices.Sort(fresh)
	for _, name := range fresh {
		c := p.col(name)
		if v := row[name]; v != nil {
			c.add(p, *v)
		}
	}
}

// column is what is known of one column so far.
type column struct {
	name    string
	present int64

	counts map[string]int64 // value → count, up to MaxDistinct values
	capped bool             // a value went uncounted

	// Values of each kind, and the first few that were not of it.
	nBoolWord, nBoolDigit, nInt, nDecimal, nDate, nTime, nEmail int64
	misses                                                      map[Kind][]string

	// Numbers (every value that reads as a decimal).
	nums             int64
	numMin, numMax   float64
	intMin, intMax   int64
	sample           []float64
	dateMin, dateMax time.Time // days of the values that read as dates or timestamps
	timeMin, timeMax time.Time // instants of the same values, dates at midnight UTC
	dateSeen         bool

	// Key check: counts by hash of the value, dropped when the column is
	// clearly no key or grows past MaxKeys.
	keys       map[uint64]uint32
	keysOff    bool // dropped for duplicates
	keysCapped bool // dropped for size
	dupValues  int64
	dupRows    int64
	dupSeen    []string // first values seen twice
}

const maxMisses = 3

func (c *column) miss(k Kind, s string) {
	if len(c.misses[k]) < maxMisses && !slices.Contains(c.misses[k], s) {
		c.misses[k] = append(c.misses[k], s)
	}
}

func (c *column) add(p *Profiler, raw string) {
	s := rules.Normalise(raw)
	if s == "" {
		return
	}
	c.present++
	if n, ok := c.counts[s]; ok || len(c.counts) < p.opts.MaxDistinct {
		c.counts[s] = n + 1
	} else {
		c.capped = true
	}
	c.checkKey(p, s)

	lower := strings.ToLower(s)
	if _, ok := boolWords[lower]; ok {
		c.nBoolWord++
	} else if s == "0" || s == "1" {
		c.nBoolDigit++
	} else {
		c.miss(Bool, s)
	}
	n, err := rules.ParseInt(s)
	isInt := err == nil
	if isInt {
		if c.nInt == 0 || n < c.intMin {
			c.intMin = n
		}
		if c.nInt == 0 || n > c.intMax {
			c.intMax = n
		}
		c.nInt++
	} else {
		c.miss(Int, s)
	}
	// An int is an amount as it is (but for a plus sign, which the
	// cleaner's amounts lack); a number past float64's range is no amount
	// any decimal column holds.
	if isInt {
		if s[0] != '+' {
			c.nDecimal++
		} else {
			c.miss(Decimal, s)
		}
		c.number(p, float64(n))
	} else if d, ok := rules.ParseDecimal(s); ok && amountLike(s) && finite(d) {
		c.nDecimal++
		f, _ := d.Float64()
		c.number(p, f)
	} else {
		c.miss(Decimal, s)
	}
	if t, withTime, ok := rules.ParseDate(s); ok {
		// The day is the one the value names, in its own zone, as the
		// cleaner reads it.
		day := rules.Day(t)
		t = t.UTC()
		if !c.dateSeen {
			c.dateMin, c.dateMax, c.timeMin, c.timeMax = day, day, t, t
		}
		c.dateMin, c.dateMax = minTime(c.dateMin, day), maxTime(c.dateMax, day)
		c.timeMin, c.timeMax = minTime(c.timeMin, t), maxTime(c.timeMax, t)
		c.dateSeen = true
		if withTime {
			c.nTime++
		} else {
			c.nDate++
		}
	} else {
		c.miss(Date, s)
	}
	if _, ok := rules.Email(s); ok {
		c.nEmail++
	}
}

// number adds a numeric value to the exact range and the reservoir sample.
func (c *column) number(p *Profiler, f float64) {
	if c.nums == 0 || f < c.numMin {
		c.numMin = f
	}
	if c.nums == 0 || f > c.numMax {
		c.numMax = f
	}
	c.nums++
	if len(c.sample) < p.opts.Sample {
		c.sample = append(c.sample, f)
		return
	}
	if i := p.rng.Int64N(c.nums); i < int64(p.opts.Sample) {
		c.sample[i] = f
	}
}

// keyCheckAfter is how many values a column shows before a share of
// duplicates rules it out as a key.
const keyCheckAfter = 1000

func (c *column) checkKey(p *Profiler, s string) {
	if c.keys == nil {
		return
	}
	h := maphash.String(p.seed, s)
	n := c.keys[h]
	if n == 0 && len(c.keys) >= p.opts.MaxKeys {
		c.keys, c.keysCapped = nil, true
		return
	}
	c.keys[h] = n + 1
	if n >= 1 {
		c.dupRows++
		if n == 1 {
			c.dupValues++
			if len(c.dupSeen) < 10 {
				c.dupSeen = append(c.dupSeen, s)
			}
		}
	}
	if c.present >= keyCheckAfter && float64(c.dupRows) > (1-keyShare)*float64(c.present) {
		c.keys, c.keysOff = nil, true
	}
}

// Profile is the description of a table.
type Profile struct {
	Rows    int64    `json:"rows"`
	Columns []Column `json:"columns"`
	Keys    Keys     `json:"keys"`
}

// Column describes one column.
type Column struct {
	Name         string  `json:"name"`
	Type         Kind    `json:"type"`
	Missing      int64   `json:"missing"`
	MissingShare float64 `json:"missing_share"`
	Distinct     int64   `json:"distinct"`
	// DistinctAtLeast says that Distinct is a lower bound: the column has
	// more distinct values than the profile counts.
	DistinctAtLeast bool `json:"distinct_at_least,omitempty"`
	// Invalid counts the values that are not of the column's type; a few
	// of them are examples.
	Invalid         int64    `json:"invalid"`
	InvalidExamples []string `json:"invalid_examples,omitempty"`
	Top             []Count  `json:"top"`
	Numeric         *Numeric `json:"numeric,omitempty"`
	Dates           *Dates   `json:"dates,omitempty"`
	// Email says that the text values are email addresses.
	Email bool `json:"email,omitempty"`

	// Values are every distinct value with its count, for enum-like and
	// bool columns.
	Values []Count `json:"-"`
	// IntMin and IntMax are the exact range of an int column.
	IntMin, IntMax int64 `json:"-"`
	// DayMin and DayMax are the range of a date or timestamp column in
	// days.
	DayMin, DayMax time.Time `json:"-"`
}

// Count is a value and how often it occurs.
type Count struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// Numeric is the distribution of an int or decimal column. Min and Max
// are exact; the quantiles come from a sample of Sampled values when the
// column has more.
type Numeric struct {
	Min      float64  `json:"min"`
	P1       float64  `json:"p1"`
	Q1       float64  `json:"q1"`
	Median   float64  `json:"median"`
	Q3       float64  `json:"q3"`
	P99      float64  `json:"p99"`
	Max      float64  `json:"max"`
	Sampled  int64    `json:"sampled,omitempty"`
	Outliers Outliers `json:"outliers"`
}

// Outliers are the values outside [Q1 − 1.5·IQR, Q3 + 1.5·IQR]. Their
// count is estimated from the sample when the column was sampled.
type Outliers struct {
	Count     int64     `json:"count"`
	Estimated bool      `json:"estimated,omitempty"`
	Low       float64   `json:"low"`
	High      float64   `json:"high"`
	Examples  []float64 `json:"examples,omitempty"`
}

// Dates is the range of a date or timestamp column: days, or RFC 3339
// times in UTC.
type Dates struct {
	Min string `json:"min"`
	Max string `json:"max"`
}

// Keys are the int or text columns whose values are unique, or nearly,
// best first.
type Keys struct {
	Candidates []Candidate `json:"candidates"`
	// Best is the candidate a declaration would key the records by.
	Best string `json:"best,omitempty"`
	// Duplicates of the best candidate.
	Duplicates *Duplicates `json:"duplicates,omitempty"`
	// Unchecked are the columns that had more distinct values than
	// MaxKeys when they were still unique enough: keys, maybe.
	Unchecked []string `json:"unchecked,omitempty"`
}

// Candidate is a column that could key the records.
type Candidate struct {
	Column string `json:"column"`
	// DistinctShare is its number of distinct values over the rows.
	DistinctShare float64 `json:"distinct_share"`
	Missing       int64   `json:"missing"`
}

// Duplicates are a key column's values that more than one row has.
type Duplicates struct {
	Values    int64   `json:"values"`     // distinct values seen more than once
	ExtraRows int64   `json:"extra_rows"` // rows beyond the first of each
	Examples  []Count `json:"examples,omitempty"`
}

// Profile describes the rows added so far.
func (p *Profiler) Profile() *Profile {
	out := &Profile{Rows: p.rows, Columns: make([]Column, 0, len(p.cols)), Keys: Keys{Candidates: []Candidate{}}}
	for _, c := range p.cols {
		out.Columns = append(out.Columns, c.describe(p))
	}
	p.keys(out)
	return out
}

func (c *column) describe(p *Profiler) Column {
	col := Column{
		Name:     c.name,
		Missing:  p.rows - c.present,
		Distinct: int64(len(c.counts)),
		Top:      top(c.counts, p.opts.Top),
	}
	if p.rows > 0 {
		col.MissingShare = round(float64(col.Missing)/float64(p.rows), 4)
	}
	if c.capped {
		col.DistinctAtLeast = true
		if c.keys != nil {
			col.Distinct, col.DistinctAtLeast = int64(len(c.keys)), false
		}
	}
	col.Type = c.kind(col.Distinct, col.DistinctAtLeast)
	var valid int64
	switch col.Type {
	case Empty:
	case Bool:
		valid = c.nBoolWord + c.nBoolDigit
		col.InvalidExamples = c.misses[Bool]
	case Int:
		valid = c.nInt
		col.InvalidExamples = c.misses[Int]
		col.IntMin, col.IntMax = c.intMin, c.intMax
	case Decimal:
		valid = c.nDecimal
		col.InvalidExamples = c.misses[Decimal]
	case Date, Timestamp:
		valid = c.nDate + c.nTime
		col.InvalidExamples = c.misses[Date]
		col.DayMin, col.DayMax = c.dateMin, c.dateMax
		col.Dates = &Dates{Min: c.dateMin.Format(time.DateOnly), Max: c.dateMax.Format(time.DateOnly)}
		if col.Type == Timestamp {
			col.Dates = &Dates{Min: c.timeMin.Format(time.RFC3339), Max: c.timeMax.Format(time.RFC3339)}
		}
	default:
		valid = c.present
		col.Email = c.nEmail >= int64(math.Ceil(typeShare*float64(c.present)))
	}
	col.Invalid = c.present - valid
	if col.Type == Int || col.Type == Decimal {
		col.Numeric = c.numeric(p)
	}
	if col.Type == Enum || col.Type == Bool {
		col.Values = top(c.counts, len(c.counts))
	}
	return col
}

// kind infers a column's type from how many of its values read as each.
func (c *column) kind(distinct int64, atLeast bool) Kind {
	if c.present == 0 {
		return Empty
	}
	enough := func(n int64) bool { return float64(n) >= typeShare*float64(c.present) }
	switch {
	case c.nBoolWord > 0 && enough(c.nBoolWord+c.nBoolDigit):
		return Bool
	case enough(c.nInt):
		return Int
	case enough(c.nDecimal):
		return Decimal
	case enough(c.nDate+c.nTime) && c.nTime > c.nDate:
		return Timestamp
	case enough(c.nDate + c.nTime):
		return Date
	case !atLeast && distinct <= maxEnum && c.present >= 2*distinct:
		return Enum
	}
	return Text
}

// numeric computes the distribution of the column's sample.
func (c *column) numeric(p *Profiler) *Numeric {
	s := slices.Clone(c.sample)
	slices.Sort(s)
	n := &Numeric{
		Min: c.numMin, Max: c.numMax,
		P1: round(Quantile(s, 0.01), 6), Q1: round(Quantile(s, 0.25), 6),
		Median: round(Quantile(s, 0.5), 6),
		Q3:     round(Quantile(s, 0.75), 6), P99: round(Quantile(s, 0.99), 6),
	}
	sampled := c.nums > int64(len(s))
	if sampled {
		n.Sampled = int64(len(s))
	}
	low, high, outliers := IQROutliers(s)
	n.Outliers = Outliers{Low: round(low, 6), High: round(high, 6), Count: int64(len(outliers)), Estimated: sampled}
	if sampled && len(s) > 0 {
		n.Outliers.Count = int64(math.Round(float64(len(outliers)) * float64(c.nums) / float64(len(s))))
	}
	// The most extreme outliers, each value once.
	med := Quantile(s, 0.5)
	slices.SortStableFunc(outliers, func(a, b float64) int { return cmp.Compare(math.Abs(b-med), math.Abs(a-med)) })
	for _, v := range slices.Compact(outliers) {
		if len(n.Outliers.Examples) == 5 {
			break
		}
		if !slices.Contains(n.Outliers.Examples, v) {
			n.Outliers.Examples = append(n.Outliers.Examples, v)
		}
	}
	return n
}

// Quantile is the q-quantile of sorted values, interpolated linearly
// between the two nearest ranks; 0 for no values.
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	if lo+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[lo] + (pos-float64(lo))*(sorted[lo+1]-sorted[lo])
}

// IQROutliers returns the fences of the IQR rule over sorted values and
// the values outside them, in order.
func IQROutliers(sorted []float64) (low, high float64, outliers []float64) {
	q1, q3 := Quantile(sorted, 0.25), Quantile(sorted, 0.75)
	iqr := q3 - q1
	low, high = q1-1.5*iqr, q3+1.5*iqr
	for _, v := range sorted {
		if v < low || v > high {
			outliers = append(outliers, v)
		}
	}
	return low, high, outliers
}

// keys finds the key candidates and the duplicates of the best.
func (p *Profiler) keys(out *Profile) {
	type cand struct {
		Candidate
		col  *column
		kind Kind
		i    int
	}
	var cands []cand
	for i, c := range p.cols {
		if c.keysCapped {
			out.Keys.Unchecked = append(out.Keys.Unchecked, c.name)
		}
		// Keys are numbers or text; a column of dates or amounts that
		// happen to differ keys nothing.
		if t := out.Columns[i].Type; c.keys == nil || c.present == 0 || t != Int && t != Text {
			continue
		}
		share := float64(len(c.keys)) / float64(p.rows)
		if share < keyShare {
			continue
		}
		cands = append(cands, cand{Candidate{Column: c.name, DistinctShare: round(share, 4), Missing: p.rows - c.present}, c, out.Columns[i].Type, i})
	}
	// Best first: a name that says key, then the fewest missing values,
	// the most unique, a type keys usually have, the earliest column.
	slices.SortStableFunc(cands, func(a, b cand) int {
		return cmp.Or(
			-cmp.Compare(keyName(a.Column), keyName(b.Column)),
			cmp.Compare(a.Missing, b.Missing),
			-cmp.Compare(a.DistinctShare, b.DistinctShare),
			-cmp.Compare(keyKind(a.kind), keyKind(b.kind)),
			cmp.Compare(a.i, b.i),
		)
	})
	for _, c := range cands {
		out.Keys.Candidates = append(out.Keys.Candidates, c.Candidate)
	}
	if len(cands) == 0 {
		return
	}
	best := cands[0].col
	out.Keys.Best = best.name
	if best.dupValues == 0 {
		return
	}
	d := &Duplicates{Values: best.dupValues, ExtraRows: best.dupRows}
	for _, v := range best.dupSeen {
		d.Examples = append(d.Examples, Count{Value: v, Count: int64(best.keys[maphash.String(p.seed, v)])})
	}
	slices.SortStableFunc(d.Examples, func(a, b Count) int { return cmp.Or(-cmp.Compare(a.Count, b.Count), cmp.Compare(a.Value, b.Value)) })
	out.Keys.Duplicates = d
}

// keyName ranks a column name by how much it says "key": 2 for id or key,
// 1 for a name ending so (user_id, sku_code, uuid), else 0; -1 for the
// fields every datamill record carries, unique per event, not per entity.
func keyName(name string) int {
	n := strings.ToLower(name)
	switch {
	case slices.Contains([]string{"event_id", "content_hash", "source", "ingested_at", "event_time"}, n):
		return -1
	case n == "id" || n == "key" || n == "uuid":
		return 2
	case strings.HasSuffix(n, "_id"), strings.HasSuffix(n, "_key"), strings.HasSuffix(n, "_code"), strings.HasSuffix(n, "uuid"):
		return 1
	}
	return 0
}

// keyKind ranks ints above text as keys.
func keyKind(k Kind) int {
	if k == Int {
		return 1
	}
	return 0
}

// top returns the n most frequent values, most frequent first, ties by
// value.
func top(counts map[string]int64, n int) []Count {
	out := make([]Count, 0, len(counts))
	for v, c := range counts {
		out = append(out, Count{Value: v, Count: c})
	}
	slices.SortFunc(out, func(a, b Count) int { return cmp.Or(-cmp.Compare(a.Count, b.Count), cmp.Compare(a.Value, b.Value)) })
	return out[:min(n, len(out))]
}

func finite(d *big.Rat) bool {
	f, _ := d.Float64()
	return !math.IsInf(f, 0)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// round rounds f to decimals, for stable output; a number too large to
// have them stays as it is.
func round(f float64, decimals int) float64 {
	p := math.Pow(10, float64(decimals))
	if math.Abs(f) >= 1e15/p {
		return f
	}
	return math.Round(f*p) / p
}
