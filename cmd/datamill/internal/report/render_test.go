package report

import (
	"encoding/csv"
	"html"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// overlayShape is one overlay shape of a rendered chart, as tests read it.
type overlayShape struct {
	Series, Label, Value string
	attrs                map[string]string
}

var (
	datumTag = regexp.MustCompile(`<(rect|circle) class="datum"[^>]*>`)
	attrRe   = regexp.MustCompile(`([a-zA-Z:-]+)="([^"]*)"`)
	figureRe = regexp.MustCompile(`(?s)<figure class="chart" id="([^"]*)" data-kind="([^"]*)">.*?</figure>`)
)

func tagAttrs(tag string) map[string]string {
	out := map[string]string{}
	for _, m := range attrRe.FindAllStringSubmatch(tag, -1) {
		out[m[1]] = html.UnescapeString(m[2])
	}
	return out
}

// figures splits a page into its charts' figures, by id.
func chartFigures(t testing.TB, page string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range figureRe.FindAllStringSubmatch(page, -1) {
		out[m[1]] = m[0]
	}
	return out
}

// shapes reads the overlay of a figure.
func overlayShapes(figure string) []overlayShape {
	var out []overlayShape
	for _, tag := range datumTag.FindAllString(figure, -1) {
		a := tagAttrs(tag)
		out = append(out, overlayShape{Series: a["data-series"], Label: a["data-label"], Value: a["data-value"], attrs: a})
	}
	return out
}

// csvOf decodes the figure's CSV link.
func csvOf(t testing.TB, figure string) [][]string {
	t.Helper()
	m := regexp.MustCompile(`href="data:text/csv;charset=utf-8,([^"]*)"`).FindStringSubmatch(figure)
	if m == nil {
		t.Fatalf("no CSV link in %.300s", figure)
	}
	text, err := url.PathUnescape(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil {
		t.Fatalf("CSV %q: %v", text, err)
	}
	return rows
}

func renderPage(t testing.TB, sections ...Section) string {
	t.Helper()
	var b strings.Builder
	if err := Render(&b, "Test report", time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC), sections); err != nil {
		t.Fatalf("render: %v", err)
	}
	return b.String()
}

func TestEachKindRendersItsDataAsOverlayAndCSV(t *testing.T) {
	tests := map[string]Chart{
		"hbar": {Kind: HBar, Unit: "offers", XLabel: "offers", Series: []Series{{Name: "titles", Points: []Point{
			{Label: "software engineer", Y: 40}, {Label: "data engineer <senior> & co", Y: 12, Link: "https://example.org/a?b=1&c=2"}, {Label: "nurse", Y: 12}, {Label: "baker", Y: 0},
		}}}},
		"bar": {Kind: Bar, Unit: "€", Series: []Series{
			{Name: "stated", Points: []Point{{Label: "it", Y: 61000.5}, {Label: "health", Y: 42000}}},
			{Name: "estimated", Points: []Point{{Label: "it", Y: 58000}, {Label: "sales", Y: 39000}}},
		}},
		"line": {Kind: Line, Unit: "offers", Series: []Series{
			{Name: "remotive", Points: []Point{{Label: "2026-12-01", X: 0, Y: 3}, {Label: "2026-12-02", X: 1, Y: 7}}},
			{Name: "arbeitnow", Points: []Point{{Label: "2026-12-01", X: 0, Y: 5}, {Label: "2026-12-03", X: 2, Y: 1}}},
		}},
		"scatter": {Kind: Scatter, Series: []Series{{Name: "model", Points: []Point{{X: 0.1, Y: 0.5}, {X: -2, Y: 3.25}, {X: 7, Y: -1}}}}},
		"histogram": {Kind: Histogram, Unit: "users", Series: []Series{{Name: "age", Points: []Point{
			{Label: "18–28", X: 18, Y: 10}, {Label: "28–38", X: 28, Y: 0}, {Label: "38–48", X: 38, Y: 4},
		}}}},
	}
	for name, c := range tests {
		t.Run(name, func(t *testing.T) {
			c.ID, c.Title = "chart-"+name, "A "+name+" chart"
			page := renderPage(t, Section{ID: "s", Title: "S", Charts: []Chart{c}})
			fig, ok := chartFigures(t, page)[c.ID]
			if !ok {
				t.Fatalf("no figure %s in the page:\n%.2000s", c.ID, page)
			}
			if !strings.Contains(fig, `data-kind="`+string(c.Kind)+`"`) || !strings.Contains(fig, "<figcaption>"+html.EscapeString(c.Title)+"</figcaption>") || !strings.Contains(fig, "<svg ") {
				t.Errorf("figure %s lacks its kind, caption or SVG:\n%.1000s", c.ID, fig)
			}
			var want []overlayShape
			wantCSV := [][]string{{"series", "label", "x", "y", "link"}}
			for _, s := range c.Series {
				for _, p := range s.Points {
					label := p.Label
					if label == "" {
						label = strconv.FormatFloat(p.X, 'f', -1, 64)
					}
					want = append(want, overlayShape{Series: s.Name, Label: label, Value: strconv.FormatFloat(p.Y, 'g', -1, 64)})
					wantCSV = append(wantCSV, []string{s.Name, p.Label, strconv.FormatFloat(p.X, 'g', -1, 64), strconv.FormatFloat(p.Y, 'g', -1, 64), p.Link})
				}
			}
			got := overlayShapes(fig)
			if diff := cmp.Diff(want, got, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".attrs" }, cmp.Ignore()), cmp.AllowUnexported(overlayShape{})); diff != "" {
				t.Errorf("overlay of %s (-want +got):\n%s", name, diff)
			}
			if diff := cmp.Diff(wantCSV, csvOf(t, fig)); diff != "" {
				t.Errorf("CSV of %s (-want +got):\n%s", name, diff)
			}
			// Every shape is inside the chart (a group of bars too).
			svg := tagAttrs(regexp.MustCompile(`<svg [^>]*>`).FindString(fig))
			w, _ := strconv.ParseFloat(svg["width"], 64)
			h, _ := strconv.ParseFloat(svg["height"], 64)
			for _, sh := range got {
				f := func(k string) float64 { v, _ := strconv.ParseFloat(sh.attrs[k], 64); return v }
				x0, y0, x1, y1 := f("x"), f("y"), f("x")+f("width"), f("y")+f("height")
				if sh.attrs["cx"] != "" {
					x0, y0, x1, y1 = f("cx"), f("cy"), f("cx"), f("cy")
				}
				if x0 < 0 || y0 < 0 || x1 > w || y1 > h {
					t.Errorf("shape %s/%s at (%v,%v)-(%v,%v) is outside the %vx%v chart", sh.Series, sh.Label, x0, y0, x1, y1, w, h)
				}
			}
			// Each shape tells its value in a native tooltip.
			if n := strings.Count(fig, "<title>"); n != len(want) {
				t.Errorf("%d tooltips for %d points", n, len(want))
			}
			if c.Unit != "" && !strings.Contains(fig, " "+html.EscapeString(c.Unit)+"</title>") && !strings.Contains(fig, " "+html.EscapeString(c.Unit)+" (") {
				t.Errorf("no tooltip names the unit %q", c.Unit)
			}
		})
	}
}

// Bars of equal values are equally long, each on its own row, and a long
// label is not cut: the chart widens and its text starts inside it.
func TestHBarShowsTiesAndWholeLabels(t *testing.T) {
	long := "senior principal staff distributed systems reliability engineer for payment infrastructure"
	c := Chart{ID: "ties", Kind: HBar, Title: "Ties", Series: []Series{{Name: "n", Points: []Point{
		{Label: "a", Y: 9}, {Label: long, Y: 5}, {Label: "c", Y: 5}, {Label: "d", Y: 5}, {Label: "e", Y: 1},
	}}}}
	fig := chartFigures(t, renderPage(t, Section{ID: "s", Title: "S", Charts: []Chart{c}}))["ties"]
	got := overlayShapes(fig)
	if len(got) != 5 {
		t.Fatalf("%d bars, want 5", len(got))
	}
	f := func(s overlayShape, k string) float64 {
		v, err := strconv.ParseFloat(s.attrs[k], 64)
		if err != nil {
			t.Fatalf("%s of %+v: %v", k, s, err)
		}
		return v
	}
	rows := map[float64]bool{}
	for i, s := range got {
		rows[f(s, "y")] = true
		if i > 0 && f(s, "y") <= f(got[i-1], "y") {
			t.Errorf("bar %q is not below %q (y %v, %v): the first label is on top", s.Label, got[i-1].Label, f(s, "y"), f(got[i-1], "y"))
		}
	}
	if len(rows) != 5 {
		t.Errorf("bars share rows: %v", rows)
	}
	if w1, w2, w3 := f(got[1], "width"), f(got[2], "width"), f(got[3], "width"); w1 != w2 || w2 != w3 {
		t.Errorf("tied bars have widths %v, %v, %v", w1, w2, w3)
	}
	if f(got[0], "width") <= f(got[1], "width") || f(got[4], "width") >= f(got[1], "width") {
		t.Errorf("bars are not as long as their values: %+v", got)
	}
	m := regexp.MustCompile(`<text x="([-0-9.e]+)"[^>]*>` + regexp.QuoteMeta(long) + `</text>`).FindStringSubmatch(fig)
	if m == nil {
		t.Fatalf("the long label is not drawn whole:\n%.3000s", fig)
	}
	if x, _ := strconv.ParseFloat(m[1], 64); x < 0 {
		t.Errorf("the long label starts at x=%v, outside the chart", x)
	}
	svg := tagAttrs(regexp.MustCompile(`<svg [^>]*>`).FindString(fig))
	if w, _ := strconv.ParseFloat(svg["width"], 64); w <= chartWidth {
		t.Errorf("the chart of a long label is %v wide, no wider than %d", w, chartWidth)
	}
}

// The page fetches nothing: no src, no stylesheet link, no url(); the
// only absolute URLs are links (<a href>) and SVG namespaces.
func TestPageFetchesNothing(t *testing.T) {
	page := renderPage(t,
		Section{
			ID: "one", Title: "One", Notes: []string{"Data from https://remotive.com, see their terms."},
			Charts: []Chart{{ID: "c1", Kind: HBar, Series: []Series{{Name: "s", Points: []Point{{Label: "x", Y: 1, Link: "https://remotive.com/remote-jobs/1"}}}}}},
			Tables: []Table{{ID: "t1", Title: "Sources", Columns: []string{"source", "offers"}, Rows: [][]string{{"remotive", "https://remotive.com/remote-jobs/1"}, {"javascript:alert(1)", "x"}}}},
		},
		Section{ID: "two", Title: "Two", Charts: []Chart{{ID: "c2", Kind: Line, Series: []Series{{Name: "s", Points: []Point{{X: 1, Y: 2}}}}}}},
	)
	for _, m := range regexp.MustCompile(`<([a-zA-Z]+)\b[^>]*?\b(src|href|xlink:href|srcset|poster|data|action)="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		tag, v := m[1], html.UnescapeString(m[3])
		if tag == "a" && (strings.HasPrefix(v, "https://") || strings.HasPrefix(v, "#") || strings.HasPrefix(v, "data:text/csv")) {
			continue
		}
		t.Errorf("<%s %s=%q> may be fetched", tag, m[2], v)
	}
	for _, bad := range []string{"url(", "@import", "<link", "<img", "<iframe", "<object", "<embed", "<image", "javascript:alert(1)\""} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q", bad)
		}
	}
	if !strings.Contains(page, `<a href="https://remotive.com/remote-jobs/1" rel="noopener noreferrer">`) {
		t.Error("the table's URL cell is not a link")
	}
	for _, id := range []string{"one", "two"} {
		if !strings.Contains(page, `<a href="#`+id+`">`) || !strings.Contains(page, `<section id="`+id+`">`) {
			t.Errorf("section %s is not in the page and its table of contents", id)
		}
	}
}

// The legend names each series of a chart with several, and each series'
// drawn shapes carry its name, which the legend's script toggles.
func TestLegendTogglesTheSeriesShapes(t *testing.T) {
	c := Chart{ID: "two", Kind: Line, Series: []Series{
		{Name: "a", Points: []Point{{X: 0, Y: 1}, {X: 1, Y: 2}}},
		{Name: "b \"quoted\"", Points: []Point{{X: 0, Y: 3}, {X: 1, Y: 1}}},
	}}
	page := renderPage(t, Section{ID: "s", Title: "S", Charts: []Chart{c}})
	fig := chartFigures(t, page)["two"]
	for _, name := range []string{"a", "b \"quoted\""} {
		esc := html.EscapeString(name)
		if !strings.Contains(fig, `<button type="button" data-series="`+esc+`"`) {
			t.Errorf("no legend entry for %q", name)
		}
		if n := strings.Count(fig, `<path data-series="`+esc+`"`); n < 3 {
			t.Errorf("%d drawn paths of series %q (its line and two points)", n, name)
		}
	}
	if !strings.Contains(page, `classList.toggle("off"`) || !strings.Contains(page, ".off{display:none}") {
		t.Error("the page has no legend script or style")
	}
	one := chartFigures(t, renderPage(t, Section{ID: "s", Title: "S", Charts: []Chart{{ID: "one", Kind: Line, Series: c.Series[:1]}}}))["one"]
	if strings.Contains(one, `class="legend"`) {
		t.Error("a chart of one series has a legend")
	}
}

func TestRenderRefusesWhatItCannotDraw(t *testing.T) {
	tests := map[string][]Section{
		"duplicate section": {{ID: "a", Title: "A"}, {ID: "a", Title: "B"}},
		"unknown kind":      {{ID: "a", Charts: []Chart{{ID: "c", Kind: "pie", Series: []Series{{Points: []Point{{Y: 1}}}}}}}},
		"chart without id":  {{ID: "a", Charts: []Chart{{Kind: Bar, Series: []Series{{Points: []Point{{Y: 1}}}}}}}},
		"label twice":       {{ID: "a", Charts: []Chart{{ID: "c", Kind: Bar, Series: []Series{{Points: []Point{{Label: "x", Y: 1}, {Label: "x", Y: 2}}}}}}}},
	}
	for name, sections := range tests {
		t.Run(name, func(t *testing.T) {
			if err := Render(&strings.Builder{}, "T", time.Now(), sections); err == nil {
				t.Errorf("Render(%+v) = nil, want an error", sections)
			}
		})
	}
	// An empty chart renders and says so.
	page := renderPage(t, Section{ID: "a", Charts: []Chart{{ID: "c", Kind: Bar}}})
	if !strings.Contains(chartFigures(t, page)["c"], "No data.") {
		t.Error("an empty chart does not say it has no data")
	}
}
