package scrape

import (
	"net/url"
	"strings"
	"testing"
	"unicode"

	"github.com/PuerkitoBio/goquery"
	"github.com/google/go-cmp/cmp"
)

// FuzzFields reads declared fields and JSON-LD from arbitrary HTML with an
// arbitrary item selector: it must never panic, and every value it gives
// is non-empty with no surrounding space, text values with their
// whitespace collapsed, the same on a second read.
func FuzzFields(f *testing.F) {
	f.Add(listPage("/jobs?page=2", listItem("/a", " Go\n Engineer ", "Acme", "USA Only", "Europe Only")), "li.feature")
	f.Add(detailPage(postingLD), "html")
	f.Add(detailPage(`[{"@graph":[{"@type":["Thing","JobPosting"],"title":7,"jobLocation":[{"address":"x"},"y"]}]}]`), "head")
	f.Add(`<li><span class="title">€ 50k–60k</span><a href="javascript:x">x</a></li>`, "li")
	f.Add("<li>\xff\xfe<b>bad utf8</b></li>", ":not(p)")
	base, _ := url.Parse("https://board.example/jobs/")
	fields := []Field{
		{Name: "title", Selector: ".title"},
		{Name: "text", Selector: ""},
		{Name: "regions", Selector: ".region, span", All: true},
		{Name: "link", Selector: "a", Attr: "href"},
		{Name: "posted", Selector: "time", Attr: "datetime"},
		{Name: "salary", Selector: "*", Regex: `(\d+)\s*k`, All: true},
	}
	var compiled []field
	for _, fd := range fields {
		c, err := compileField(fd)
		if err != nil {
			f.Fatal(err)
		}
		compiled = append(compiled, c)
	}
	f.Fuzz(func(t *testing.T, page, item string) {
		doc, err := goquery.NewDocumentFromReader(strings.NewReader(page))
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		sel, err := compileField(Field{Name: "item", Selector: item})
		if err != nil {
			return
		}
		nodes := doc.Selection
		if sel.sel != nil {
			nodes = doc.FindMatcher(sel.sel)
		}
		for _, n := range nodes.EachIter() {
			got := extract(n, compiled, base)
			for k, v := range got {
				if v == "" || strings.TrimSpace(v) != v {
					t.Errorf("field %s = %q: empty or padded", k, v)
				}
			}
			for _, k := range []string{"title", "text"} {
				if v := got[k]; strings.ContainsFunc(v, func(r rune) bool { return unicode.IsSpace(r) && r != ' ' }) || strings.Contains(v, "  ") {
					t.Errorf("text field %s = %q: whitespace not collapsed", k, v)
				}
			}
			if diff := cmp.Diff(got, extract(n, compiled, base)); diff != "" {
				t.Errorf("second read differs (-first +second):\n%s", diff)
			}
		}
		for k, v := range JSONLDFields(doc.Selection) {
			if v == "" || strings.TrimSpace(v) != v {
				t.Errorf("json-ld field %s = %q: empty or padded", k, v)
			}
		}
	})
}
