package profile

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzProfile profiles a column of any values (one per line) and checks
// what holds whatever they are: counts add up, the quantiles are in order
// within the exact range, a key's duplicates are within its rows.
func FuzzProfile(f *testing.F) {
	for _, seed := range []string{
		"1\n2\n\n3\n1000",
		"1,5\n€ 2,50\n1.234,56 EUR\nORD-1\n-0,01",
		"2024-01-31\n31/01/2024\n2024-01-31T10:00:00+14:00\n2023-02-30\n20240131",
		"yes\nno\n1\n0\nmaybe",
		"a\na\nb\n \t\n\x00\xff",
		"1" + strings.Repeat("0", 400) + "\n-" + strings.Repeat("9", 320) + ",5\n7",
	} {
		f.Add(seed, uint8(3))
	}
	f.Fuzz(func(t *testing.T, data string, sample uint8) {
		values := strings.Split(data, "\n")
		p := New(Options{Sample: int(sample%8) + 1, MaxDistinct: 4, MaxKeys: 6, Seed: 1})
		for _, v := range values {
			p.Add(map[string]*string{"c": &v, "id": &v})
		}
		got := p.Profile()
		if _, err := json.Marshal(got); err != nil {
			t.Fatalf("%q: the profile is no JSON: %v", values, err)
		}
		if got.Rows != int64(len(values)) || len(got.Columns) != 2 {
			t.Fatalf("%d values: %d rows, %d columns", len(values), got.Rows, len(got.Columns))
		}
		c := got.Columns[0]
		present := got.Rows - c.Missing
		var top int64
		for _, v := range c.Top {
			top += v.Count
		}
		switch {
		case c.Missing < 0 || present < 0 || c.Invalid < 0 || c.Invalid > present:
			t.Errorf("%q: missing %d, invalid %d of %d rows", values, c.Missing, c.Invalid, got.Rows)
		case c.Distinct > present || top > present:
			t.Errorf("%q: %d distinct, top values counting %d, of %d present", values, c.Distinct, top, present)
		case (present == 0) != (c.Type == Empty):
			t.Errorf("%q: %d present values, type %s", values, present, c.Type)
		}
		if n := c.Numeric; n != nil {
			ordered := []float64{n.Min, n.P1, n.Q1, n.Median, n.Q3, n.P99, n.Max}
			for i := 1; i < len(ordered); i++ {
				if ordered[i] < ordered[i-1]-1e-6 {
					t.Errorf("%q: min, p1, q1, median, q3, p99, max = %v, out of order", values, ordered)
					break
				}
			}
			if n.Outliers.Count < 0 || n.Outliers.Low > n.Outliers.High {
				t.Errorf("%q: outliers %+v", values, n.Outliers)
			}
		}
		if d := got.Keys.Duplicates; d != nil && (d.ExtraRows < d.Values || d.ExtraRows >= present) {
			t.Errorf("%q: duplicates %+v of %d present values", values, d, present)
		}
	})
}
