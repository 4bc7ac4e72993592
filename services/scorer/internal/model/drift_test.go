package model

import (
	"math"
	"testing"
)

func TestPSIByHand(t *testing.T) {
	for name, c := range map[string]struct {
		expected []float64
		counts   []int
		want     float64
	}{
		"same shares":     {[]float64{0.25, 0.75}, []int{25, 75}, 0},
		"shifted":         {[]float64{0.5, 0.5}, []int{90, 10}, 0.4*math.Log(1.8) + 0.4*math.Log(5)},
		"an empty bin":    {[]float64{0.5, 0.5}, []int{100, 0}, (1-0.5)*math.Log(1/0.5) + (MinDriftShare-0.5)*math.Log(MinDriftShare/0.5)},
		"no observations": {[]float64{0.5, 0.5}, []int{0, 0}, 0},
	} {
		if got := PSI(c.expected, c.counts); !near(got, c.want, 1e-12) {
			t.Errorf("%s: PSI(%v, %v) = %v, want %v", name, c.expected, c.counts, got, c.want)
		}
	}
}

// The training distribution stored with each feature: deciles and shares
// that sum to one; records like the training ones do not drift, records
// whose age moved do, on age alone.
func TestDriftAgainstTheTrainingDistribution(t *testing.T) {
	m, split := train(t, synthetic(4000, 31), usersDecl(t), 1, "")
	p := m.Preprocessing
	for i, f := range p.Features {
		sum := 0.0
		for _, s := range f.Shares {
			sum += s
		}
		if !p.Drifts(i) || !near(sum, 1, 1e-9) {
			t.Errorf("feature %s: shares %v sum to %v", f.Name, f.Shares, sum)
		}
	}
	if age := p.Features[0]; len(age.Edges) != DriftBins-1 || age.Shares[len(age.Shares)-1] == 0 {
		t.Errorf("age: edges %v, shares %v: want %d deciles and the share of missing ages", age.Edges, age.Shares, DriftBins-1)
	}
	psi := func(rows []Record) map[string]float64 {
		out := map[string]float64{}
		for i, f := range p.Features {
			counts := make([]int, len(f.Shares))
			for _, r := range rows {
				counts[p.Bin(i, r)]++
			}
			out[f.Name] = PSI(f.Shares, counts)
		}
		return out
	}
	for name, v := range psi(split.TestRows) {
		if v > 0.05 {
			t.Errorf("held-out records like the training ones: PSI of %s = %.3f", name, v)
		}
	}
	var older []Record
	for _, r := range split.TestRows {
		m := Map{}
		for k, v := range r.(Map) {
			m[k] = v
		}
		if a, ok := Number(m["age"]); ok {
			m["age"] = a + 25
		}
		older = append(older, m)
	}
	got := psi(older)
	if got["age"] < 0.25 || got["gender"] > 0.05 || got["days_since_login"] > 0.05 {
		t.Errorf("ages moved by 25 years: PSI %v, want age above 0.25 and the others near 0", got)
	}
}
