package rules

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// textRemoteOKDrop is the pattern a jobs schema declares to drop
// RemoteOK's anti-spam line; the "html+drop" cases of text.tsv use it.
const textRemoteOKDrop = `^please mention the word \S+ and tag \S+ when applying`

func textOptions(t testing.TB, name string) TextOptions {
	t.Helper()
	switch name {
	case "plain":
		return TextOptions{}
	case "html":
		return TextOptions{HTML: true}
	case "html+drop":
		return TextOptions{HTML: true, DropLines: []string{textRemoteOKDrop}}
	case "plain+drop":
		return TextOptions{DropLines: []string{textRemoteOKDrop}}
	}
	t.Fatalf("options %q: want plain, html, html+drop or plain+drop", name)
	return TextOptions{}
}

func TestCleanText(t *testing.T) {
	cases := readTSV(t, "text.tsv", 3)
	if len(cases) < 40 {
		t.Errorf("text.tsv has %d cases, want 40 or more", len(cases))
	}
	for _, c := range cases {
		o, in, want := textOptions(t, c.fields[0]), c.fields[1], c.fields[2]
		t.Run(strconv.Itoa(c.line), func(t *testing.T) {
			got := CleanText(in, o)
			if got != want {
				t.Errorf("CleanText(%q, %s)\n got %q\nwant %q", in, c.fields[0], got, want)
			}
			if again := CleanText(got, TextOptions{}); again != got {
				t.Errorf("CleanText of its output %q = %q, want it unchanged", got, again)
			}
		})
	}
}

func TestCompanyKey(t *testing.T) {
	cases := readTSV(t, "company.tsv", 2)
	if len(cases) < 30 {
		t.Errorf("company.tsv has %d cases, want 30 or more", len(cases))
	}
	for _, c := range cases {
		in, want := c.fields[0], c.fields[1]
		t.Run(strconv.Itoa(c.line), func(t *testing.T) {
			if got := CompanyKey(in); got != want {
				t.Errorf("CompanyKey(%q) = %q, want %q", in, got, want)
			}
			if again := CompanyKey(want); again != want {
				t.Errorf("CompanyKey(%q) = %q, want it unchanged", want, again)
			}
		})
	}
}

func TestCleanTextInvalidUTF8(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"latin-1 byte":     {"Z\xfcrich", "Z\uFFFDrich"},
		"cut sequence":     {"Gda\xc5", "Gda\uFFFD"},
		"bad after repair": {"Caf\xc3\xa9 \xff", "Café \uFFFD"},
		"surrogate bytes":  {"a\xed\xa0\x80b", "a\uFFFDb"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			for _, o := range []TextOptions{{}, {HTML: true}} {
				got := CleanText(tt.in, o)
				if got != tt.want || !utf8.ValidString(got) {
					t.Errorf("CleanText(%q, html=%v) = %q, want %q", tt.in, o.HTML, got, tt.want)
				}
			}
		})
	}
}

func TestCleanTextBounded(t *testing.T) {
	tests := map[string]string{
		"long text":          strings.Repeat("Senior Go engineer. ", 100_000),
		"long html":          strings.Repeat("<p>Gda&#x144;sk &amp; M\u00c3\u00bcnchen</p>", 50_000),
		"expanding nfkc":     strings.Repeat("\ufdfa", TextMaxBytes/3+10),
		"rune across cut":    strings.Repeat("a", TextMaxBytes-1) + "ń tail",
		"unclosed script":    "<p>Hello</p><script>" + strings.Repeat("x", 1<<20),
		"reference chain":    strings.Repeat("&amp;", 100_000) + "lt;",
		"nested mojibake":    strings.Repeat("\u00c3\u0083\u00c2\u00bc", 200_000),
		"many blank lines":   strings.Repeat("\n \n", 300_000) + "x",
		"long control chars": strings.Repeat("\x01\x02\u0085", 400_000),
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			for _, o := range []TextOptions{{}, {HTML: true}} {
				got := CleanText(in, o)
				if len(got) > TextMaxBytes || !utf8.ValidString(got) {
					t.Errorf("CleanText(%d bytes, html=%v) = %d bytes, valid UTF-8 %v; want at most %d valid",
						len(in), o.HTML, len(got), utf8.ValidString(got), TextMaxBytes)
				}
			}
		})
	}
	if got := CleanText("<p>Hello</p><script>"+strings.Repeat("x", 1000), TextOptions{HTML: true}); got != "Hello" {
		t.Errorf("an unclosed script: got %q, want %q", got, "Hello")
	}
}

// TestCleanTextLeavesRightText checks that text with the characters
// mojibake is made of, written on purpose, is not "repaired".
func TestCleanTextLeavesRightText(t *testing.T) {
	for _, in := range []string{
		"Poste basé à « Paris » – CDI",
		"Groß- und Außenhandelskaufmann (m/w/d)",
		"Ça va ? Où ça ? Déjà vu.",
		"Ärzte, Öl, Übergröße",
		"Straße ½ km",
		"São Paulo — Brasil",
		"Ð Ñ Ò Ó Ô Õ Ö × Ø",
		"©2024 Acme™ — all rights reserved",
	} {
		want := CleanText(in, TextOptions{})
		if got := textRepair(in); got != in {
			t.Errorf("textRepair(%q) = %q, want it unchanged", in, got)
		}
		if want == "" {
			t.Errorf("CleanText(%q) is empty", in)
		}
	}
	// A round that leaves as many mojibake sequences as it found is not
	// taken: "Ãƒ" would spell "Ã", leaving "Ã¼", one sequence again.
	if got := textRepair("Ãƒ¼"); got != "Ãƒ¼" {
		t.Errorf("textRepair(%q) = %q, want it unchanged", "Ãƒ¼", got)
	}
}

func TestCleanTextDropLines(t *testing.T) {
	desc := "Build our data platform.\n\nPlease mention the word FLAWLESS and tag RMTA4LjE4Mi4yMDQuMTQ2 when applying to show you read the job post completely.\nThanks!"
	tests := map[string]struct {
		drop []string
		want string
	}{
		"none":         {nil, desc},
		"remoteok":     {[]string{textRemoteOKDrop}, "Build our data platform.\n\nThanks!"},
		"any case":     {[]string{`PLEASE MENTION`}, "Build our data platform.\n\nThanks!"},
		"two patterns": {[]string{`^thanks!$`, `mention the word`}, "Build our data platform."},
		"bad, no line": {[]string{`thanks!(`}, desc},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := CleanText(desc, TextOptions{DropLines: tt.drop}); got != tt.want {
				t.Errorf("CleanText with DropLines %q\n got %q\nwant %q", tt.drop, got, tt.want)
			}
		})
	}
	if got := CleanText("a\nfoo(bar\nb", TextOptions{DropLines: []string{`foo(`}}); got != "a\nb" {
		t.Errorf("a pattern that does not compile: got %q, want it matched literally", got)
	}
	if err := (TextOptions{DropLines: []string{`ok`, `foo(`}}).Validate(); err == nil {
		t.Error("Validate of a pattern that does not compile: no error")
	}
	if err := (TextOptions{DropLines: []string{textRemoteOKDrop}}).Validate(); err != nil {
		t.Errorf("Validate(%q): %v", textRemoteOKDrop, err)
	}
}

func TestCompanyKeyBounded(t *testing.T) {
	tests := map[string]string{
		"long name":     strings.Repeat("Acme ", 10_000) + "GmbH",
		"long word":     strings.Repeat("x", 10_000),
		"invalid utf-8": "\xff\xfeAcme\x80 GmbH",
		"only forms":    "GmbH & Co. KG",
		"punctuation":   "!!! --- ...",
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			got := CompanyKey(in)
			if len(got) > textKeyMaxBytes || !utf8.ValidString(got) || CompanyKey(got) != got {
				t.Errorf("CompanyKey(%.40q) = %.40q (%d bytes); want at most %d bytes of valid UTF-8, unchanged by CompanyKey",
					in, got, len(got), textKeyMaxBytes)
			}
		})
	}
	// Stripped while a word is left: "co kg" goes, "gmbh" stays.
	if got := CompanyKey("GmbH & Co. KG"); got != "gmbh" {
		t.Errorf("CompanyKey of a legal form alone = %q, want %q", got, "gmbh")
	}
	if got := CompanyKey("!!! --- ..."); got != "" {
		t.Errorf("CompanyKey of punctuation = %q, want \"\"", got)
	}
}

func TestCleanTextHTMLEdges(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"upper-case tags":      {"<P>One</P><P>Two<BR>Three</P>", "One\n\nTwo\nThree"},
		"items left open":      {"<ul><li>One<li>Two</ul>After", "- One\n- Two\n\nAfter"},
		"'>' in an attribute":  {`<a title="a > b" href="x">link</a> text`, "link text"},
		"svg text":             {"<svg><text>logo</text></svg>Hello", "Hello"},
		"whole document":       {"<!DOCTYPE html><html><head><title>Job</title><meta charset=utf-8></head><body><h1>Go Developer</h1></body></html>", "Go Developer"},
		"tag cut at the end":   {"<p>unterminated <b", "unterminated"},
		"source line breaks":   {"<p>a</p>\n\n\n<p>b</p>", "a\n\nb"},
		"empty items":          {"<li></li><li>  </li>", ""},
		"no semicolon":         {"<p>Copy &copy 2024 &amp co</p>", "Copy © 2024 & co"},
		"inline elements":      {"<b>Bold</b><i>Italic</i> <span>span</span>", "BoldItalic span"},
		"numeric emoji":        {"<p>We’re<br/>hiring</p><p>&#128640; now</p>", "We’re\nhiring\n\n🚀 now"},
		"script in a list":     {"<ul><li>Go<script>track()</script></li></ul>", "- Go"},
		"comment left open":    {"<p>Kept</p><!-- dropped <p>too</p>", "Kept"},
		"text without any tag": {"Senior Go\n\n\nEngineer &amp; SRE", "Senior Go\n\nEngineer & SRE"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := CleanText(tt.in, TextOptions{HTML: true}); got != tt.want {
				t.Errorf("CleanText(%q, html)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}
