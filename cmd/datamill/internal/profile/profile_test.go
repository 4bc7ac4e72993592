package profile

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// profileOf profiles one column holding values ("" is a blank).
func profileOf(t testing.TB, opts Options, values ...string) Column {
	t.Helper()
	p := New(opts)
	p.Declare("c")
	for _, v := range values {
		p.Add(map[string]*string{"c": &v})
	}
	return p.Profile().Columns[0]
}

func TestTypeInference(t *testing.T) {
	tests := map[string]struct {
		values  []string
		want    Kind
		invalid int64
	}{
		"ints":                     {[]string{"1", "-2", "+3", "40", "5.0"}, Int, 0},
		"ints with blanks":         {[]string{"1", "", "  ", "2", "3"}, Int, 0},
		"decimals with points":     {[]string{"1.5", "2", "3.25"}, Decimal, 0},
		"decimals with commas":     {[]string{"1,5", "2,75", "1.234,50", "€ 3,00"}, Decimal, 0},
		"money with codes":         {[]string{"12.50 EUR", "USD 3", "$1,200.00", "7"}, Decimal, 0},
		"iso dates":                {[]string{"2024-01-31", "2023-12-01"}, Date, 0},
		"dates in several formats": {[]string{"2024-01-31", "31/01/2024", "31.01.2024", "Jan 31, 2024", "31 January 2024", "2024/01/31"}, Date, 0},
		"timestamps":               {[]string{"2024-01-31T10:00:00Z", "2024-02-01 08:30:00", "2024-02-02"}, Timestamp, 0},
		// The cleaner reads these as dates (pkg/rules.ParseDate), so the
		// profile must too.
		"months in lower case":       {[]string{"jan 31, 2024", "february 2, 2024", "march 3, 2024"}, Date, 0},
		"timestamps to picoseconds":  {[]string{"2024-01-31T10:00:00.123456789012+01:00", "2024-02-01T08:30:00.000000000001Z"}, Timestamp, 0},
		"booleans":                   {[]string{"yes", "no", "Yes", "NO", "y"}, Bool, 0},
		"booleans with digits":       {[]string{"true", "false", "1", "0", "TRUE"}, Bool, 0},
		"zeros and ones are ints":    {[]string{"0", "1", "1", "0"}, Int, 0},
		"blanks only":                {[]string{"", " ", ""}, Empty, 0},
		"few values again and again": {[]string{"red", "blue", "red", "blue", "green", "red"}, Enum, 0},
		"text":                       {[]string{"Alice", "Bob", "Carol", "Dan"}, Text, 0},
		"one bad int in twenty": {
			[]string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19", "abc"},
			Int, 1,
		},
		"three bad ints in twenty is text": {
			[]string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17", "x", "y", "z"},
			Text, 0,
		},
		"impossible dates are no dates": {[]string{"2023-02-30", "2023-02-31", "2023-13-01"}, Text, 0},
		"numbers with letters":          {[]string{"12abc", "1e9", "3x"}, Text, 0},
		"codes that are no currency":    {[]string{"ORD-1001", "ORD-1002", "ORD-1003"}, Text, 0},
	}
	for name, tc := range tests {
		got := profileOf(t, Options{}, tc.values...)
		if got.Type != tc.want || got.Invalid != tc.invalid {
			t.Errorf("%s: %q is %s with %d invalid, want %s with %d", name, tc.values, got.Type, got.Invalid, tc.want, tc.invalid)
		}
	}
}

func TestMissingDistinctAndTop(t *testing.T) {
	got := profileOf(t, Options{Top: 2}, "a", "b", "", "a", " ", "c", "a", "b")
	want := Column{
		Name: "c", Type: Enum, Missing: 2, MissingShare: 0.25, Distinct: 3,
		Top:    []Count{{"a", 3}, {"b", 2}},
		Values: []Count{{"a", 3}, {"b", 2}, {"c", 1}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("profile (-want +got):\n%s", diff)
	}
}

// Past MaxDistinct values a column's distinct count is a lower bound,
// unless the column is still checked as a key: its hashes count exactly.
func TestDistinctCountIsCapped(t *testing.T) {
	repeated, unique := make([]string, 2000), make([]string, 2000)
	for i := range 2000 {
		repeated[i], unique[i] = strconv.Itoa(i%200), strconv.Itoa(i)
	}
	tests := map[string]struct {
		values   []string
		distinct int64
		atLeast  bool
	}{
		"200 values, each 10 times": {repeated, 10, true},
		"2000 values, each once":    {unique, 2000, false},
	}
	for name, tc := range tests {
		got := profileOf(t, Options{MaxDistinct: 10}, tc.values...)
		if got.Distinct != tc.distinct || got.DistinctAtLeast != tc.atLeast {
			t.Errorf("%s, counting 10: distinct %d, at least %v; want %d, %v", name, got.Distinct, got.DistinctAtLeast, tc.distinct, tc.atLeast)
		}
	}
}

func TestQuantilesAndIQROutliers(t *testing.T) {
	// -500, 1…100, 1000: the value at sorted index i (0-based) is i for
	// 1…100, so the quantile at rank q·101 is q·101 between them: Q1 25.25,
	// Q3 75.75, IQR 50.5, fences 25.25-75.75 and 75.75+75.75.
	var values []string
	for i := 1; i <= 100; i++ {
		values = append(values, strconv.Itoa(i))
	}
	values = append(values, "1000", "-500")
	got := profileOf(t, Options{}, values...).Numeric
	want := &Numeric{
		Min: -500, P1: 1.01, Q1: 25.25, Median: 50.5, Q3: 75.75, P99: 99.99, Max: 1000,
		Outliers: Outliers{Count: 2, Low: -50.5, High: 151.5, Examples: []float64{1000, -500}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("numeric profile of 1…100, 1000, -500 (-want +got):\n%s", diff)
	}

	tests := map[string]struct {
		sorted []float64
		q      float64
		want   float64
	}{
		"no values":     {nil, 0.5, 0},
		"one value":     {[]float64{7}, 0.99, 7},
		"median of two": {[]float64{1, 2}, 0.5, 1.5},
		"max":           {[]float64{1, 2, 3}, 1, 3},
		"p1 of 1…101":   {seq(1, 101), 0.01, 2},
	}
	for name, tc := range tests {
		if got := Quantile(tc.sorted, tc.q); got != tc.want {
			t.Errorf("%s: Quantile(%v, %v) = %v, want %v", name, tc.sorted, tc.q, got, tc.want)
		}
	}
}

// A sample smaller than the column estimates the outliers and says so;
// min and max stay exact.
func TestSampledQuantiles(t *testing.T) {
	var values []string
	for i := range 10_000 {
		values = append(values, strconv.Itoa(i%1000))
	}
	values = append(values, "1000000")
	got := profileOf(t, Options{Sample: 500, Seed: 1}, values...).Numeric
	if got.Min != 0 || got.Max != 1_000_000 || got.Sampled != 500 || !got.Outliers.Estimated {
		t.Errorf("sampled numeric profile = %+v, want exact min 0 and max 1e6, 500 sampled, outliers estimated", got)
	}
	if got.Median < 400 || got.Median > 600 {
		t.Errorf("median of 0…999 from 500 samples = %v, want about 500", got.Median)
	}
}

func TestDecimalRangeIsTheCleanersCents(t *testing.T) {
	got := profileOf(t, Options{}, "3,149", "1.234,567", "€ 0.999").Numeric
	if got.Min != 0.99 || got.Max != 1234.56 {
		t.Errorf("decimal range = %v…%v, want 0.99…1234.56 (cut to cents)", got.Min, got.Max)
	}
}

func TestDateRanges(t *testing.T) {
	tests := map[string]struct {
		values []string
		want   Dates
	}{
		"dates":      {[]string{"05/03/2024", "2023-12-31", "1 Feb 2024"}, Dates{"2023-12-31", "2024-03-05"}},
		"timestamps": {[]string{"2024-01-01T10:00:00+02:00", "2024-01-01 07:00:00"}, Dates{"2024-01-01T07:00:00Z", "2024-01-01T08:00:00Z"}},
	}
	for name, tc := range tests {
		got := profileOf(t, Options{}, tc.values...).Dates
		if got == nil || *got != tc.want {
			t.Errorf("%s: range of %q = %v, want %v", name, tc.values, got, tc.want)
		}
	}
}

func TestDuplicateKeys(t *testing.T) {
	p := New(Options{})
	p.Declare("id", "email", "country")
	countries := []string{"FR", "DE", "FR", "ES"}
	for i := range 40 {
		id := strconv.Itoa(i)
		if i%10 == 9 { // 4 re-sent records
			id = strconv.Itoa(i - 1)
		}
		email := fmt.Sprintf("u%d@example.com", i)
		row := map[string]*string{"id": &id, "email": &email, "country": &countries[i%4]}
		if i == 3 {
			delete(row, "email")
		}
		p.Add(row)
	}
	got := p.Profile().Keys
	want := Keys{
		Candidates: []Candidate{{Column: "id", DistinctShare: 0.9}, {Column: "email", DistinctShare: 0.975, Missing: 1}},
		Best:       "id",
		Duplicates: &Duplicates{Values: 4, ExtraRows: 4, Examples: []Count{{"18", 2}, {"28", 2}, {"38", 2}, {"8", 2}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
}

func TestNoKeyWhenEveryColumnRepeats(t *testing.T) {
	got := profileOf(t, Options{}, "a", "b", "a", "b")
	p := New(Options{})
	for _, v := range []string{"a", "b", "a", "b"} {
		p.Add(map[string]*string{"c": &v})
	}
	if keys := p.Profile().Keys; keys.Best != "" || len(keys.Candidates) != 0 {
		t.Errorf("keys of %v = %+v, want none", got.Values, keys)
	}
}

func seq(from, to int) []float64 {
	var out []float64
	for i := from; i <= to; i++ {
		out = append(out, float64(i))
	}
	return out
}

// The fields every datamill record carries are unique per event: a topic's
// records are keyed by their own column, not by event_id.
func TestEnvelopeFieldsAreNoBetterKeys(t *testing.T) {
	p := New(Options{})
	p.Declare("content_hash", "event_id", "order_id")
	for i := range 20 {
		h, e, o := fmt.Sprint("h", i), fmt.Sprint("e", i), fmt.Sprint("o", i)
		p.Add(map[string]*string{"content_hash": &h, "event_id": &e, "order_id": &o})
	}
	if got := p.Profile().Keys.Best; got != "order_id" {
		t.Errorf("best key of content_hash, event_id, order_id = %s, want order_id", got)
	}
}

// A column with more values than MaxKeys stops being checked as a key, so
// that memory stays bounded; it is no key candidate then.
func TestKeyCheckIsCapped(t *testing.T) {
	p := New(Options{MaxKeys: 100, MaxDistinct: 50})
	for i := range 500 {
		v := strconv.Itoa(i)
		p.Add(map[string]*string{"id": &v})
	}
	got := p.Profile()
	if c := got.Columns[0]; c.Distinct != 50 || !c.DistinctAtLeast || got.Keys.Best != "" || len(got.Keys.Candidates) != 0 || len(got.Keys.Unchecked) != 1 {
		t.Errorf("500 ids checking 100 as keys: distinct %d (at least %v), keys %+v; want ≥50, no candidate, id unchecked", c.Distinct, c.DistinctAtLeast, got.Keys)
	}
}

// An int with a plus sign is an int, in the range and quantiles too,
// though the cleaner reads no amount with one.
func TestSignedIntsAreInTheRange(t *testing.T) {
	got := profileOf(t, Options{}, "+30", "1", "2")
	if got.Type != Int || got.Numeric == nil || got.Numeric.Max != 30 || got.IntMax != 30 {
		t.Errorf("profile of +30, 1, 2 = %s %+v, int max %d; want int up to 30", got.Type, got.Numeric, got.IntMax)
	}
}
