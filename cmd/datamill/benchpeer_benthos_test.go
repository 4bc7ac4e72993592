package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/datamill/datamill/pkg/rules"
)

// benthosMapping is the Bloblang mapping of the Benthos peer.
var benthosMapping = filepath.Join("..", "..", "bench", "peers", "benthos", "users.blobl")

// countriesBlock is the country table of the mapping, between its markers,
// as rules.CountrySpellings gives it: one "folded": "XX" entry a line.
func countriesBlock() string {
	spellings := rules.CountrySpellings()
	keys := make([]string, 0, len(spellings))
	for k := range spellings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		sep := ","
		if i == len(keys)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "    %q: %q%s\n", k, spellings[k], sep)
	}
	return b.String()
}

// TestBenthosPeerCountries checks that the peer's country table is the
// cleaner's: every spelling, folded, and its code (-update rewrites it).
func TestBenthosPeerCountries(t *testing.T) {
	src, err := os.ReadFile(benthosMapping)
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "# BEGIN countries\n", "# END countries\n"
	i, j := bytes.Index(src, []byte(begin)), bytes.Index(src, []byte(end))
	if i < 0 || j < i {
		t.Fatalf("%s: no %q … %q markers", benthosMapping, strings.TrimSpace(begin), strings.TrimSpace(end))
	}
	got, want := string(src[i+len(begin):j]), countriesBlock()
	if got == want {
		return
	}
	if *update {
		out := slices.Concat(src[:i+len(begin)], []byte(want), src[j:])
		if err := os.WriteFile(benthosMapping, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s: the country table differs from rules.CountrySpellings; run go test -run TestBenthosPeerCountries -update", benthosMapping)
}
