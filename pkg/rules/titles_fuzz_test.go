package rules

import (
	"slices"
	"testing"
	"unicode/utf8"
)

// FuzzParseTitle checks that any title reads without panic into a valid
// UTF-8 norm of bounded length that reads as itself, a known seniority,
// and a declared family or none.
func FuzzParseTitle(f *testing.F) {
	for _, c := range titleCases(f) {
		f.Add(c.input)
	}
	fams := titleDefaults(f)
	var names []string
	for _, r := range DefaultJobFamilies {
		names = append(names, r.Family)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := ParseTitle(s, fams)
		if !utf8.ValidString(got.Norm) || len(got.Norm) > titleMaxNorm {
			t.Fatalf("ParseTitle(%q).Norm = %q: invalid UTF-8 or over %d bytes", s, got.Norm, titleMaxNorm)
		}
		if !slices.Contains(Seniorities, got.Seniority) {
			t.Fatalf("ParseTitle(%q).Seniority = %q, none of %v", s, got.Seniority, Seniorities)
		}
		if got.Family != "" && !slices.Contains(names, got.Family) {
			t.Fatalf("ParseTitle(%q).Family = %q, not declared", s, got.Family)
		}
		if again := ParseTitle(got.Norm, fams); again != got {
			t.Fatalf("ParseTitle(%q) = %+v, but its norm reads %+v", s, got, again)
		}
	})
}
