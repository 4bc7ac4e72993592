package rules

import (
	"strings"
	"testing"
)

// FuzzLocations checks that Locations never panics and returns nil or
// sorted, unique, known codes, at most one per known code, and that its
// codes written as a list read back as themselves.
func FuzzLocations(f *testing.F) {
	for _, c := range locReadCases(f) {
		f.Add(c.input)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Locations(s)
		locCheck(t, s, got)
		if got == nil {
			return
		}
		list := strings.Join(got, ", ")
		again := Locations(list)
		if strings.Join(again, ", ") != list {
			t.Fatalf("Locations(%q) = %q, but Locations(%q) = %q", s, got, list, again)
		}
	})
}
