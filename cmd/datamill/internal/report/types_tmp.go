// Package report builds the page `datamill report` writes: its sections,
// read from PostgreSQL.
package report

// This file is a copy of the shared design's types, so that the sections
// compile before report.go merges; the integrator deletes it then.

import (
	"context"

	"github.com/jackc/pgx/v5"
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

// ChartKind is how a chart is drawn.
type ChartKind string

// The kinds of chart, as the design writes them.
const (
	//lint:ignore SA9004 a copy of the design's declaration, which report.go replaces
	HBar      ChartKind = "hbar"
	Bar                 = "bar"
	Line                = "line"
	Scatter             = "scatter"
	Histogram           = "histogram"
)

// Series is one named set of points of a chart.
type Series struct {
	Name   string
	Points []Point
}

// Point: Label names a bar (HBar, Bar) or a histogram bin; X, Y are the coordinates (a bar's
// value is Y; a Line/Scatter point's X and Y); Link, when set, is a URL the bar's label links to.
type Point struct {
	Label string
	X, Y  float64
	Link  string
}

// Table is a table of text cells.
type Table struct {
	ID, Title string
	Columns   []string
	Rows      [][]string
}

// A Source builds one section from the database.
type Source func(ctx context.Context, db *pgx.Conn) (Section, error)
