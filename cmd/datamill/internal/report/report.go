// Package report builds `datamill report`: one self-contained HTML page of
// charts and tables read from the warehouse (the datasets' views, the
// scorer's predictions and model registry, the ecometer's tables).
//
// A Source reads one Section from PostgreSQL; Build runs the sources and
// Render writes the page. Charts are SVG drawn by gonum.org/v1/plot, with
// an overlay of one transparent shape per bar or point carrying a native
// SVG tooltip (<title>) and data-label, data-value and data-series
// attributes; a legend that toggles series (a few lines of inline script)
// and a CSV link of each chart's data. The page fetches nothing: no
// script, style, font or image comes from the network, and it reads
// without script and prints.
//
// A section whose data is missing (a dataset that was not run, no eco
// meter) says so in a note and is still rendered: the report never fails
// because a table is absent (see MissingTable).
package report

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A Section is one part of the page.
type Section struct {
	ID, Title string
	Notes     []string // paragraphs, plain text (attribution, caveats)
	Charts    []Chart
	Tables    []Table
}

// A Chart is one chart: its kind and its series.
type Chart struct {
	ID, Title, XLabel, YLabel, Unit string
	Kind                            ChartKind // HBar (horizontal bars: a label per bar), Bar (vertical), Line, Scatter, Histogram
	Series                          []Series
}

// ChartKind is how a chart draws its series.
type ChartKind string

// The kinds of chart.
const (
	// HBar draws a horizontal bar per label, the first label on top; a
	// bar's value is its point's Y. Several series make groups of bars.
	HBar ChartKind = "hbar"
	// Bar is HBar with vertical bars, the first label on the left.
	Bar ChartKind = "bar"
	// Line joins each series' points in the order given. When every
	// point has a Label, the X axis is labelled with them (e.g. days).
	Line ChartKind = "line"
	// Scatter draws each point.
	Scatter ChartKind = "scatter"
	// Histogram draws a bar per bin: a point's X is the bin's lower
	// edge, its Y the bin's count, its Label the bin's range. The bins
	// are of equal width, the distance between consecutive Xs (1 when
	// there is one bin).
	Histogram ChartKind = "histogram"
)

// A Series is a named list of points, drawn in one colour.
type Series struct {
	Name   string
	Points []Point
}

// Point: Label names a bar (HBar, Bar) or a histogram bin; X, Y are the
// coordinates (a bar's value is Y; a Line/Scatter point's X and Y); Link,
// when set, is a URL the bar's label links to.
type Point struct {
	Label string
	X, Y  float64
	Link  string
}

// A Table is a table of text cells. A cell that is a whole http(s) URL is
// rendered as a link.
type Table struct {
	ID, Title string
	Columns   []string
	Rows      [][]string
}

// A Source builds one section from the database.
type Source func(ctx context.Context, db *pgx.Conn) (Section, error)

// MissingTable reports whether err says that a table, view or column the
// query reads does not exist: its dataset (or the eco meter) was not run.
// A Source turns it into a note rather than an error.
func MissingTable(err error) bool {
	var pg *pgconn.PgError
	// undefined_table, undefined_column, invalid_schema_name
	return errors.As(err, &pg) && (pg.Code == "42P01" || pg.Code == "42703" || pg.Code == "3F000")
}

// Build runs each source in turn. A source that fails still has a section,
// which names the error in a note, so that the page shows what could be
// built; the errors come back joined.
func Build(ctx context.Context, db *pgx.Conn, sources ...Source) ([]Section, error) {
	sections := make([]Section, 0, len(sources))
	var errs []error
	for i, src := range sources {
		s, err := src(ctx, db)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			id := fmt.Sprintf("section-%d", i+1)
			if s.ID == "" {
				s.ID = id
			}
			if s.Title == "" {
				s.Title = fmt.Sprintf("Section %d", i+1)
			}
			s.Notes = append(s.Notes, "This section could not be built: "+err.Error())
			errs = append(errs, fmt.Errorf("section %s: %w", s.ID, err))
		}
		sections = append(sections, s)
	}
	return sections, errors.Join(errs...)
}

// page is what the page template reads.
type pageData struct {
	Title     string
	Generated string
	Sections  []renderedSection
}

type renderedSection struct {
	Section
	Charts []template.HTML
	Tables []renderedTable
}

type renderedTable struct {
	Table
	Rows [][]tableCell
}

type tableCell struct {
	Text string
	Link template.URL // set when the cell is a http(s) URL
}

// Render writes the whole page: the title, when it was generated, a table
// of contents, then each section's notes, charts and tables. Everything is
// inline (style, script, SVG); the only URLs are the links of tables and
// bars, as <a href>.
func Render(w io.Writer, title string, generated time.Time, sections []Section) error {
	p := pageData{Title: title, Generated: generated.UTC().Format("2006-01-02 15:04:05 MST")}
	ids := map[string]bool{}
	for _, s := range sections {
		if ids[s.ID] {
			return fmt.Errorf("render report: two sections have the id %q", s.ID)
		}
		ids[s.ID] = true
		rs := renderedSection{Section: s}
		for _, c := range s.Charts {
			svg, err := renderChart(c)
			if err != nil {
				return fmt.Errorf("render report: section %s: %w", s.ID, err)
			}
			rs.Charts = append(rs.Charts, svg)
		}
		for _, t := range s.Tables {
			rt := renderedTable{Table: t}
			for _, row := range t.Rows {
				cells := make([]tableCell, len(row))
				for i, v := range row {
					cells[i] = tableCell{Text: v}
					if isWebURL(v) {
						cells[i].Link = template.URL(v) // #nosec G203 -- checked http(s) URL
					}
				}
				rt.Rows = append(rt.Rows, cells)
			}
			rs.Tables = append(rs.Tables, rt)
		}
		p.Sections = append(p.Sections, rs)
	}
	if err := pageTemplate.Execute(w, p); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	return nil
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2430;max-width:1100px;margin:0 auto;padding:1rem 1.5rem 3rem}
h1{font-size:1.6rem;margin:.5rem 0}h2{font-size:1.3rem;margin-top:2.5rem;border-bottom:1px solid #d0d5dd;padding-bottom:.2rem}
.generated{color:#5b6472}
nav.toc ol{padding-left:1.4rem}
figure.chart{margin:1.5rem 0;break-inside:avoid}
figure.chart figcaption{font-weight:600;margin-bottom:.3rem}
figure.chart svg{max-width:100%;height:auto;display:block}
figure.chart svg text{font-family:"Liberation Sans",Arimo,Arial,Helvetica,sans-serif!important}
.datum{pointer-events:all;cursor:default}
.datum:hover{fill-opacity:.18}
a .datum{cursor:pointer}
.off{display:none}
.legend{display:flex;flex-wrap:wrap;gap:.4rem;margin:.2rem 0}
.legend button{font:inherit;font-size:.85rem;border:1px solid #c5cad3;background:#fff;border-radius:3px;padding:.1rem .5rem;cursor:pointer}
.legend button[aria-pressed=false]{opacity:.45;text-decoration:line-through}
.swatch{display:inline-block;width:.8em;height:.8em;margin-right:.35em;vertical-align:-.05em}
.csv{font-size:.85rem;margin:.2rem 0}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
caption{text-align:left;font-weight:600;margin-bottom:.3rem}
th,td{border:1px solid #d0d5dd;padding:.2rem .5rem;text-align:left;vertical-align:top}
th{background:#f1f3f6}
td{overflow-wrap:anywhere}
@media print{.legend,.csv,nav.toc{display:none}body{max-width:none}a{color:inherit}}
</style>
</head>
<body>
<header>
<h1>{{.Title}}</h1>
<p class="generated">Generated {{.Generated}}</p>
<nav class="toc" aria-label="Contents"><ol>
{{- range .Sections}}
<li><a href="#{{.ID}}">{{.Title}}</a></li>
{{- end}}
</ol></nav>
</header>
<main>
{{- range .Sections}}
<section id="{{.ID}}">
<h2>{{.Title}}</h2>
{{- range .Notes}}
<p class="note">{{.}}</p>
{{- end}}
{{- range .Charts}}
{{.}}
{{- end}}
{{- range .Tables}}
<table id="{{.ID}}">
<caption>{{.Title}}</caption>
<thead><tr>{{range .Columns}}<th scope="col">{{.}}</th>{{end}}</tr></thead>
<tbody>
{{- range .Rows}}
<tr>{{range .}}<td>{{if .Link}}<a href="{{.Link}}" rel="noopener noreferrer">{{.Text}}</a>{{else}}{{.Text}}{{end}}</td>{{end}}</tr>
{{- end}}
</tbody>
</table>
{{- end}}
</section>
{{- end}}
</main>
<script>
// Legend entries toggle their series: every element of the chart whose
// data-series is the entry's.
document.addEventListener("click", function (e) {
  var b = e.target.closest(".legend button");
  if (!b) return;
  var on = b.getAttribute("aria-pressed") !== "true";
  b.setAttribute("aria-pressed", on ? "true" : "false");
  var fig = b.closest("figure.chart"), name = b.getAttribute("data-series");
  fig.querySelectorAll("svg [data-series]").forEach(function (el) {
    if (el.getAttribute("data-series") === name) el.classList.toggle("off", !on);
  });
});
</script>
</body>
</html>
`))
