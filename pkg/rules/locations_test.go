package rules

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// locCase is one line of testdata/locations.tsv.
type locCase struct {
	line  int
	input string
	want  []string
}

// locReadCases reads testdata/locations.tsv: the input, a tab, the
// expected codes comma-separated or - for none.
func locReadCases(tb testing.TB) []locCase {
	tb.Helper()
	var cases []locCase
	for _, l := range readTSV(tb, "locations.tsv", 2) {
		c := locCase{line: l.line, input: l.fields[0]}
		if l.fields[1] != "-" {
			c.want = strings.Split(l.fields[1], ",")
		}
		cases = append(cases, c)
	}
	return cases
}

func TestLocationsTestdata(t *testing.T) {
	cases := locReadCases(t)
	if len(cases) < 50 {
		t.Fatalf("testdata/locations.tsv has %d cases; want at least 50", len(cases))
	}
	for _, c := range cases {
		if diff := cmp.Diff(c.want, Locations(c.input)); diff != "" {
			t.Errorf("line %d: Locations(%q) (-want +got):\n%s", c.line, c.input, diff)
		}
	}
}

func TestLocationsEdges(t *testing.T) {
	long := strings.Repeat("Germany, ", 1<<17) + "France" // 1 MB; France is past 4 KiB
	tests := []struct {
		name, input string
		want        []string
	}{
		{"only whitespace", " \t\n ", nil},
		{"invalid UTF-8 alone", "\xff\xfe\xfd", nil},
		{"control characters separate words", "Berlin\x00Germany\x1b", []string{"DE"}},
		{"only the first 4 KiB are read", long, []string{"DE"}},
		{"a rune cut at 4 KiB", strings.Repeat("a", locMaxText-1) + "é France", nil},
		{"us inside Russia", "Russia", []string{"RU"}},
		{"lower-case country code", "de", nil},
		{"all capitals: a code amid words", "REMOTE IN BERLIN", []string{"DE"}},
		{"all capitals: a code last", "BERLIN, DE", []string{"DE"}},
		{"HTML around a name", "<b>Lisbon</b>", []string{"PT"}},
		{"entities around a name", "Paris&nbsp;&amp; Lyon", []string{"FR"}},
		{"overseas department", "971 - Les Abymes", []string{"GP"}},
		{"a count is no department", "10 - 20 people", nil},
		{"IANA zone with an unknown city", "Europe/Isle_of_Man", []string{"EU"}},
		{"offset range reversed", "UTC+1 to UTC-5", []string{"AMER", "EU"}},
		{"offset past 14 hours", "UTC+99", nil},
		{"named zone beats offsets", "CST (UTC-6)", []string{"US"}},
		{"anywhere with an offset", "Anywhere (UTC-5 to UTC+1)", []string{"WW"}},
		{"dotted code", "Remote - U.S.", []string{"US"}},
		{"curly apostrophe", "Côte d’Ivoire", []string{"CI"}},
		{"several cities", "Berlin, München, Hamburg", []string{"DE"}},
		{"cities of two countries", "Berlin, London", []string{"DE", "GB"}},
		{"list of codes read back", "AF, AMER, DE, EU, NA, WW", []string{"AF", "AMER", "DE", "EU", "NA", "WW"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Locations(tt.input)); diff != "" {
				t.Errorf("Locations(%.60q) (-want +got):\n%s", tt.input, diff)
			}
		})
	}
}

// TestLocationsReadBack checks that the codes Locations returns, written
// as a list, read back as themselves: every code it can return is one it
// reads.
func TestLocationsReadBack(t *testing.T) {
	for code := range locKnownCodes() {
		if got := Locations(code); len(got) != 1 || got[0] != code {
			t.Errorf("Locations(%q) = %v; want [%s]", code, got, code)
		}
	}
}

// locCheck checks the invariants of Locations' output for input s.
func locCheck(tb testing.TB, s string, got []string) {
	tb.Helper()
	known := locKnownCodes()
	if len(got) > len(known) {
		tb.Fatalf("Locations(%q) gave %d codes; want at most %d", s, len(got), len(known))
	}
	if got != nil && len(got) == 0 {
		tb.Fatalf("Locations(%q) = empty, non-nil; want nil", s)
	}
	for i, code := range got {
		if !utf8.ValidString(code) || !known[code] {
			tb.Fatalf("Locations(%q) = %q: %q is no known code", s, got, code)
		}
		if i > 0 && got[i-1] >= code {
			tb.Fatalf("Locations(%q) = %q: not sorted and unique", s, got)
		}
	}
}
