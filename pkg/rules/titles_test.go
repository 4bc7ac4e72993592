package rules

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// titleCase is one line of testdata/titles.tsv.
type titleCase struct {
	line  int
	input string
	want  Title
}

// titleCases reads testdata/titles.tsv: the input, then the expected
// norm, seniority and family.
func titleCases(tb testing.TB) []titleCase {
	tb.Helper()
	var cases []titleCase
	for _, l := range readTSV(tb, "titles.tsv", 4) {
		f := l.fields
		cases = append(cases, titleCase{l.line, f[0], Title{Norm: f[1], Seniority: f[2], Family: f[3]}})
	}
	return cases
}

func titleDefaults(tb testing.TB) *Families {
	tb.Helper()
	f, err := CompileFamilies(DefaultJobFamilies)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

func TestParseTitle(t *testing.T) {
	f := titleDefaults(t)
	cases := titleCases(t)
	if len(cases) < 50 {
		t.Fatalf("titles.tsv holds %d cases, want at least 50", len(cases))
	}
	for _, c := range cases {
		got := ParseTitle(c.input, f)
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("titles.tsv:%d: ParseTitle(%q) (-want +got):\n%s", c.line, c.input, diff)
		}
		if again := ParseTitle(got.Norm, f); again != got {
			t.Errorf("titles.tsv:%d: ParseTitle(%q) = %+v, but its norm reads %+v", c.line, c.input, got, again)
		}
	}
}

func TestCompileFamilies(t *testing.T) {
	tests := []struct {
		name  string
		rules []FamilyRule
		want  string // in the error; "" for none
	}{
		{"defaults", DefaultJobFamilies, ""},
		{"empty family", []FamilyRule{{"backend", []string{"go"}}, {" ", []string{"x"}}}, "rule 2: empty family"},
		{"empty pattern", []FamilyRule{{"qa", []string{"qa", " "}}}, `"qa": pattern " " has no word`},
		{"punctuation only", []FamilyRule{{"qa", []string{"--"}}}, `"qa": pattern "--" has no word`},
		{"no patterns", []FamilyRule{{"design", nil}}, `"design": no patterns`},
		{"duplicate", []FamilyRule{{"qa", []string{"qa"}}, {"design", []string{"ux"}}, {"qa", []string{"tester"}}}, `"qa": declared twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileFamilies(tt.rules)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("CompileFamilies: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("CompileFamilies = %v, want an error holding %q", err, tt.want)
			}
		})
	}
}

func TestFamilyWordBoundaries(t *testing.T) {
	f, err := CompileFamilies([]FamilyRule{
		{"management", []string{"cto", "Head of Engineering"}},
		{"data_scientist", []string{"ml", "machine learning"}},
		{"fullstack", []string{"Full-Stack"}},
		{"frontend", []string{"javascript", "front-end"}},
		{"backend", []string{"java", "c#", ".net", "développeur"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ title, want string }{
		{"Director of Sales", ""},
		{"CTO (m/w/d)", "management"},
		{"Interim CTO", "management"},
		{"HTML Developer", ""},
		{"ML Engineer", "data_scientist"},
		{"Java Developer", "backend"},
		{"JavaScript Developer", "frontend"},
		{"Fullstack Developer", "fullstack"},
		{"Frontend Developer", "frontend"},
		{"C# Developer", "backend"},
		{".NET Developer", "backend"},
		{"Developpeur PHP", "backend"},
		{"Head of Engineering Operations", "management"},
		{"Head of Engineeringops", ""},
		{"Machine Learning Java Engineer", "data_scientist"}, // the first rule wins
	}
	for _, tt := range tests {
		if got := ParseTitle(tt.title, f).Family; got != tt.want {
			t.Errorf("ParseTitle(%q).Family = %q, want %q", tt.title, got, tt.want)
		}
	}
}

func TestParseTitleWithoutFamilies(t *testing.T) {
	got := ParseTitle("Senior Go Developer (m/w/d)", nil)
	want := Title{Norm: "senior go developer", Seniority: "senior"}
	if got != want {
		t.Fatalf("ParseTitle without families = %+v, want %+v", got, want)
	}
}

func TestParseTitleBounds(t *testing.T) {
	f := titleDefaults(t)
	tests := []struct {
		name, title string
		want        func(Title) bool
	}{
		{"a megabyte of words", strings.Repeat("Senior Go Developer ", 50_000), func(t Title) bool {
			return len(t.Norm) <= titleMaxNorm && strings.HasPrefix(t.Norm, "senior go developer senior") && !strings.HasSuffix(t.Norm, " ")
		}},
		{"a megabyte of one word", strings.Repeat("a", 1<<20), func(t Title) bool { return t.Norm == "" }},
		{"a long word among short ones", "Senior " + strings.Repeat("x", 65) + " Engineer", func(t Title) bool { return t.Norm == "senior engineer" }},
		{"synonyms that grow", strings.Repeat("sr ", 2000), func(t Title) bool {
			return len(t.Norm) <= titleMaxNorm && strings.Count(t.Norm, "senior") == (titleMaxNorm+1)/len("senior ")
		}},
		{"html", `<script>alert(1)</script><p>Backend&nbsp;Engineer</p>`, func(t Title) bool { return t.Norm == "alert backend engineer" }},
		{"entities twice escaped", "R&amp;amp;D Engineer", func(t Title) bool { return t.Norm == "r & amp d engineer" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseTitle(tt.title, f)
			if !tt.want(got) {
				t.Fatalf("ParseTitle(%.60q…) = %+v", tt.title, got)
			}
			if again := ParseTitle(got.Norm, f); again.Norm != got.Norm {
				t.Fatalf("the norm %q reads as %q", got.Norm, again.Norm)
			}
		})
	}
}

func TestSeniorities(t *testing.T) {
	f := titleDefaults(t)
	for _, c := range titleCases(t) {
		if !slices.Contains(Seniorities, c.want.Seniority) {
			t.Errorf("titles.tsv:%d: seniority %q is none of %v", c.line, c.want.Seniority, Seniorities)
		}
	}
	// Every seniority is read from some title.
	for _, s := range Seniorities {
		found := false
		for _, c := range titleCases(t) {
			found = found || ParseTitle(c.input, f).Seniority == s
		}
		if !found {
			t.Errorf("no title of titles.tsv is %s", s)
		}
	}
}
