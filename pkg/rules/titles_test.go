package rules

import (
	"bufio"
	"os"
	"slices"
	"strconv"
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

// titleCases reads testdata/titles.tsv: the input (with \t, \n, \xff and
// \\ escapes), then the expected norm, seniority and family.
func titleCases(tb testing.TB) []titleCase {
	tb.Helper()
	f, err := os.Open("testdata/titles.tsv")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var cases []titleCase
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) != 4 {
			tb.Fatalf("titles.tsv:%d: %d columns, want 4", n, len(cols))
		}
		cases = append(cases, titleCase{n, titleUnescape(cols[0]), Title{Norm: cols[1], Seniority: cols[2], Family: cols[3]}})
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return cases
}

// titleUnescape decodes the escapes of an input of titles.tsv.
func titleUnescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'x':
			if i+2 < len(s) {
				if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
					b.WriteByte(byte(v))
					i += 2
					continue
				}
			}
			b.WriteString(`\x`)
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
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
