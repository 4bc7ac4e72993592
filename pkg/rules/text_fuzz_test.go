package rules

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzCleanText checks that CleanText, plain or HTML, returns valid UTF-8
// of at most TextMaxBytes without control characters but line breaks,
// trimmed lines and no two blank lines in a row, and that it leaves its own
// output unchanged.
func FuzzCleanText(f *testing.F) {
	for _, c := range readTSV(f, "text.tsv", 3) {
		f.Add(c.fields[1], strings.HasPrefix(c.fields[0], "html"))
	}
	f.Fuzz(func(t *testing.T, s string, isHTML bool) {
		o := TextOptions{HTML: isHTML, DropLines: []string{textRemoteOKDrop}}
		got := CleanText(s, o)
		if !utf8.ValidString(got) || len(got) > TextMaxBytes {
			t.Fatalf("CleanText(%q, html=%v) = %q: want at most %d bytes of valid UTF-8", s, isHTML, got, TextMaxBytes)
		}
		for _, r := range got {
			if r != '\n' && unicode.IsControl(r) || r == '\ufeff' || r == '\u200b' {
				t.Fatalf("CleanText(%q, html=%v) = %q holds %U", s, isHTML, got, r)
			}
		}
		for line := range strings.SplitSeq(got, "\n") {
			if line != strings.TrimSpace(line) || strings.Contains(line, "  ") {
				t.Fatalf("CleanText(%q, html=%v) = %q: line %q is not trimmed and collapsed", s, isHTML, got, line)
			}
		}
		if strings.Contains(got, "\n\n\n") || strings.HasPrefix(got, "\n") || strings.HasSuffix(got, "\n") {
			t.Fatalf("CleanText(%q, html=%v) = %q: blank lines left", s, isHTML, got)
		}
		if again := CleanText(got, TextOptions{DropLines: o.DropLines}); again != got {
			t.Fatalf("CleanText(%q, html=%v) = %q, and CleanText of that = %q; want it unchanged", s, isHTML, got, again)
		}
	})
}

// FuzzCompanyKey checks that a key is valid UTF-8 of at most 256 bytes,
// lower-case words joined by single spaces, empty only for a name without
// letters or digits, and its own key.
func FuzzCompanyKey(f *testing.F) {
	for _, c := range readTSV(f, "company.tsv", 2) {
		f.Add(c.fields[0])
	}
	f.Fuzz(func(t *testing.T, name string) {
		k := CompanyKey(name)
		if !utf8.ValidString(k) || len(k) > textKeyMaxBytes {
			t.Fatalf("CompanyKey(%q) = %q: want at most %d bytes of valid UTF-8", name, k, textKeyMaxBytes)
		}
		if k != strings.Join(strings.Fields(k), " ") || strings.ContainsFunc(k, unicode.IsPunct) {
			t.Fatalf("CompanyKey(%q) = %q: want words without punctuation joined by single spaces", name, k)
		}
		if k == "" && strings.ContainsFunc(CleanText(name, TextOptions{}), func(r rune) bool {
			return unicode.IsLetter(r) || unicode.IsDigit(r)
		}) {
			t.Fatalf("CompanyKey(%q) is empty", name)
		}
		if again := CompanyKey(k); again != k {
			t.Fatalf("CompanyKey(%q) = %q, and CompanyKey of that = %q; want it unchanged", name, k, again)
		}
	})
}
