package rules

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// salaryCheck fails unless s, read from in, keeps the documented ranges:
// 0 < Min ≤ Max and finite, a known period, a currency of three upper-case
// letters or "", sorted distinct notes of a bounded count.
func salaryCheck(t *testing.T, fn, in string, s Salary) {
	t.Helper()
	if !(s.Min > 0) || s.Min > s.Max || math.IsInf(s.Max, 0) {
		t.Fatalf("%s(%q): Min %v, Max %v; want 0 < Min ≤ Max < Inf", fn, in, s.Min, s.Max)
	}
	if _, ok := salaryPerYear[s.Period]; !ok {
		t.Fatalf("%s(%q): period %q", fn, in, s.Period)
	}
	if s.Currency != "" && (len(s.Currency) != 3 || strings.Trim(s.Currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "") {
		t.Fatalf("%s(%q): currency %q", fn, in, s.Currency)
	}
	if len(s.Notes) > len(salaryNoteRes)+1 || !slices.IsSorted(s.Notes) || len(slices.Compact(slices.Clone(s.Notes))) != len(s.Notes) {
		t.Fatalf("%s(%q): notes %q", fn, in, s.Notes)
	}
}

// FuzzParseSalary reads any text as a salary and as structured fields,
// and checks the ranges ParseSalary, StructuredSalary and Annual
// document; a salary read is written back plainly and read again alike.
func FuzzParseSalary(f *testing.F) {
	for _, c := range salaryCases(f) {
		f.Add(c.input)
	}
	rates := SalaryRates{To: "EUR", Per: map[string]float64{"USD": 0.92, "GBP": 1.17, "CHF": 1.05}, Min: 5000, Max: 2e6}
	f.Fuzz(func(t *testing.T, in string) {
		s, ok := ParseSalary(in)
		if !ok {
			if !cmpSalaryZero(s) {
				t.Fatalf("ParseSalary(%q) = %+v, false; want a zero Salary", in, s)
			}
		} else {
			salaryCheck(t, "ParseSalary", in, s)
			if s.Predicted {
				t.Fatalf("ParseSalary(%q) is predicted", in)
			}
			if s.Min >= 1 && s.Max < 1e12 && slices.Contains(salaryCodes, strings.ToLower(s.Currency)) {
				plain := fmt.Sprintf("%.2f - %.2f %s per %s", s.Min, s.Max, s.Currency, s.Period)
				again, ok := ParseSalary(plain)
				if !ok || math.Abs(again.Min-s.Min) > 0.01 || math.Abs(again.Max-s.Max) > 0.01 ||
					again.Currency != s.Currency || again.Period != s.Period || again.PeriodInferred {
					t.Fatalf("ParseSalary(%q) = %+v; written back as %q it reads %+v, %v", in, s, plain, again, ok)
				}
			}
		}
		if lo, hi, ok := s.Annual(rates, "EUR"); ok && !(rates.Min <= lo && lo <= hi && hi <= rates.Max) {
			t.Fatalf("ParseSalary(%q).Annual = %v, %v; want within [%v, %v]", in, lo, hi, rates.Min, rates.Max)
		}
		if st, ok := StructuredSalary(in, in, in, in, in); ok {
			salaryCheck(t, "StructuredSalary", in, st)
		} else if !cmpSalaryZero(st) {
			t.Fatalf("StructuredSalary(%q…) = %+v, false; want a zero Salary", in, st)
		}
	})
}

func cmpSalaryZero(s Salary) bool {
	return s.Min == 0 && s.Max == 0 && s.Currency == "" && s.Period == "" && !s.PeriodInferred && s.Notes == nil && !s.Predicted
}
