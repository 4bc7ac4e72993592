package report

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"html"
	"html/template"
	"image/color"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// The size of a chart, in SVG user units (CSS pixels at full size): a
// laptop's column. An HBar chart grows a row per bar, and wider for long
// labels.
const (
	chartWidth  = 720
	chartHeight = 360
	// barThick is a bar's thickness, barGap the space between two
	// labels' groups of bars, both in user units.
	barThick = 12
	barGap   = 7
	// hbarFrame is the height of what an HBar chart has besides its
	// rows: the value axis, its label, the padding.
	hbarFrame = 70
	// labelRoom is the width the plot keeps for its bars beside the
	// widest label.
	labelRoom = 420
)

// palette is the series' colours, told apart by most colour-blind readers
// (Okabe and Ito); the series of a chart are tagged by their colour, so no
// two series share one (seriesColor).
var palette = []color.RGBA{
	{0x00, 0x72, 0xB2, 0xFF},
	{0xE6, 0x9F, 0x00, 0xFF},
	{0x00, 0x9E, 0x73, 0xFF},
	{0xCC, 0x79, 0xA7, 0xFF},
	{0x56, 0xB4, 0xE9, 0xFF},
	{0xD5, 0x5E, 0x00, 0xFF},
	{0x7F, 0x3C, 0x8D, 0xFF},
	{0x8C, 0x56, 0x4B, 0xFF},
}

// seriesColor is series i's colour: the palette's, then shades apart from
// it (none grey, none black like the axes).
func seriesColor(i int) color.RGBA {
	if i < len(palette) {
		return palette[i]
	}
	c := palette[i%len(palette)]
	k := uint8(i / len(palette) * 9) // #nosec G115 -- a distinct offset per round; wrapping is fine, any byte is a shade
	return color.RGBA{c.R ^ k, c.G ^ (k * 3), c.B ^ (k * 5), 0xFF}
}

func hexColor(c color.RGBA) string { return fmt.Sprintf("#%02X%02X%02X", c.R, c.G, c.B) }

// datum is one overlay shape: a rectangle (bars, bins) or a circle
// (points), in the SVG's coordinates (y down).
type datum struct {
	series, label, value, tooltip, link string
	x                                   string // Line, Scatter: the point's X
	rect                                bool
	x0, y0, x1, y1                      float64 // rect corners, or the circle's centre in x0, y0
}

// recorder is added last to a plot: it keeps the data area's transforms.
type recorder struct {
	x, y func(float64) vg.Length
}

func (r *recorder) Plot(c draw.Canvas, p *plot.Plot) { r.x, r.y = p.Transforms(&c) }

// renderChart draws c as a <figure class="chart">: its caption, a legend
// of its series, the SVG with its overlay, a CSV link.
func renderChart(c Chart) (template.HTML, error) {
	if c.ID == "" {
		return "", fmt.Errorf("chart %q has no id", c.Title)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<figure class=\"chart\" id=\"%s\" data-kind=\"%s\">\n<figcaption>%s</figcaption>\n",
		html.EscapeString(c.ID), html.EscapeString(string(c.Kind)), html.EscapeString(c.Title))
	points := 0
	for _, s := range c.Series {
		points += len(s.Points)
	}
	if points == 0 {
		b.WriteString("<p class=\"empty\">No data.</p>\n</figure>")
		return template.HTML(b.String()), nil // #nosec G203 -- escaped above
	}
	if len(c.Series) > 1 {
		b.WriteString("<div class=\"legend\">")
		for i, s := range c.Series {
			fmt.Fprintf(&b, "<button type=\"button\" data-series=\"%s\" aria-pressed=\"true\"><span class=\"swatch\" style=\"background:%s\"></span>%s</button>",
				html.EscapeString(s.Name), hexColor(seriesColor(i)), html.EscapeString(s.Name))
		}
		b.WriteString("</div>\n")
	}
	svg, err := chartSVG(c)
	if err != nil {
		return "", fmt.Errorf("chart %s: %w", c.ID, err)
	}
	b.WriteString(svg)
	data, err := chartCSV(c)
	if err != nil {
		return "", fmt.Errorf("chart %s: %w", c.ID, err)
	}
	fmt.Fprintf(&b, "<p class=\"csv\"><a download=\"%s.csv\" href=\"data:text/csv;charset=utf-8,%s\">CSV</a> of this chart's data</p>\n</figure>",
		html.EscapeString(c.ID), html.EscapeString(url.PathEscape(data)))
	return template.HTML(b.String()), nil // #nosec G203 -- every text escaped above
}

// chartCSV is the chart's data: a row per point, with its series.
func chartCSV(c Chart) (string, error) {
	var b strings.Builder
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"series", "label", "x", "y", "link"})
	for _, s := range c.Series {
		for _, p := range s.Points {
			_ = w.Write([]string{s.Name, p.Label, exactNumber(p.X), exactNumber(p.Y), p.Link})
		}
	}
	w.Flush()
	return b.String(), w.Error()
}

// number is v as it is written in attributes and CSV: exact.
func exactNumber(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// readable is v as a tooltip shows it: whole above 100, else at most two
// decimals.
func readableNumber(v float64) string {
	if math.Abs(v) >= 100 {
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	}
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}

// chartFont is the charts' typeface: Liberation Sans, which the page's
// style asks for (or a font of the same metrics), so that the labels are
// as wide as the plot measured them.
func chartFont(size vg.Length) font.Font {
	return font.From(font.Font{Typeface: "Liberation", Variant: "Sans"}, size)
}

// chartSVG draws the chart with gonum/plot and returns the SVG element
// with the overlay of its data.
func chartSVG(c Chart) (string, error) {
	p := plot.New()
	p.X.Label.Text, p.Y.Label.Text = c.XLabel, c.YLabel
	p.X.Label.TextStyle.Font, p.Y.Label.TextStyle.Font = chartFont(12), chartFont(12)
	p.X.Tick.Label.Font, p.Y.Tick.Label.Font = chartFont(11), chartFont(11)
	width, height := vg.Length(chartWidth), vg.Length(chartHeight)
	rec := &recorder{}
	var overlay func() []datum
	var err error
	switch c.Kind {
	case HBar, Bar:
		overlay, height, width, err = drawBars(p, c, rec)
	case Line, Scatter:
		overlay, err = drawLines(p, c, rec)
	case Histogram:
		overlay, err = drawHistogram(p, c, rec)
	default:
		return "", fmt.Errorf("unknown kind %q", c.Kind)
	}
	if err != nil {
		return "", err
	}
	p.Add(rec)
	canvas := vgsvg.New(width, height)
	p.Draw(draw.New(canvas))
	var buf bytes.Buffer
	if _, err := canvas.WriteTo(&buf); err != nil {
		return "", err
	}
	if rec.x == nil {
		return "", errors.New("the plot drew no data area")
	}
	return finishSVG(buf.String(), c, float64(height), overlay())
}

// svgStart is the opening of gonum's SVG, sized in points.
var svgStart = regexp.MustCompile(`<svg width="([0-9.]+)pt" height="([0-9.]+)pt"`)

// finishSVG makes gonum's document an inline element: no XML prolog, a
// size in user units that the page's style lets shrink, each series'
// shapes tagged with data-series (for the legend), and the overlay.
func finishSVG(doc string, c Chart, height float64, data []datum) (string, error) {
	i := strings.Index(doc, "<svg ")
	if i < 0 {
		return "", errors.New("the plot wrote no <svg>")
	}
	doc = doc[i:]
	doc = svgStart.ReplaceAllString(doc, fmt.Sprintf(`<svg width="$1" height="$2" role="img" aria-label="%s"`, html.EscapeString(c.Title)))
	// Tag each series' paths by its colour.
	tags := map[string]string{}
	for i, s := range c.Series {
		tags[hexColor(seriesColor(i))] = s.Name
	}
	var b strings.Builder
	for line := range strings.Lines(doc) {
		if strings.HasPrefix(line, "<path ") {
			for hex, name := range tags {
				if strings.Contains(line, "fill:"+hex) || strings.Contains(line, "stroke:"+hex) {
					line = `<path data-series="` + html.EscapeString(name) + `" ` + line[len("<path "):]
					break
				}
			}
		}
		b.WriteString(line)
	}
	doc = b.String()
	end := strings.LastIndex(doc, "</svg>")
	if end < 0 {
		return "", errors.New("the plot's <svg> is not closed")
	}
	var o strings.Builder
	o.WriteString("<g class=\"overlay\">\n")
	for _, d := range data {
		if d.link != "" {
			fmt.Fprintf(&o, `<a href="%s" target="_blank" rel="noopener noreferrer">`, html.EscapeString(d.link))
		}
		attrs := fmt.Sprintf(`class="datum" data-series="%s" data-label="%s" data-value="%s"`,
			html.EscapeString(d.series), html.EscapeString(d.label), d.value)
		if d.x != "" {
			attrs += ` data-x="` + d.x + `"`
		}
		// SVG's y grows downwards; the plot's upwards.
		if d.rect {
			x0, x1 := min(d.x0, d.x1), max(d.x0, d.x1)
			y0, y1 := height-max(d.y0, d.y1), height-min(d.y0, d.y1)
			fmt.Fprintf(&o, `<rect %s x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="#000" fill-opacity="0">`, attrs, x0, y0, max(x1-x0, 1), y1-y0)
			fmt.Fprintf(&o, "<title>%s</title></rect>", html.EscapeString(d.tooltip))
		} else {
			fmt.Fprintf(&o, `<circle %s cx="%.2f" cy="%.2f" r="5" fill="#000" fill-opacity="0">`, attrs, d.x0, height-d.y0)
			fmt.Fprintf(&o, "<title>%s</title></circle>", html.EscapeString(d.tooltip))
		}
		if d.link != "" {
			o.WriteString("</a>")
		}
		o.WriteString("\n")
	}
	o.WriteString("</g>\n")
	return doc[:end] + o.String() + doc[end:], nil
}

// tooltip is what a datum's <title> says: "label: value unit", and the
// series when the chart has several.
func datumTooltip(c Chart, series, label string, v float64) string {
	t := label + ": " + readableNumber(v)
	if c.Unit != "" {
		t += " " + c.Unit
	}
	if len(c.Series) > 1 {
		t += " (" + series + ")"
	}
	return t
}

// bars adds c's bars to p, a row (HBar) or column (Bar) per label, the
// series side by side, and returns the chart's size and its overlay.
func drawBars(p *plot.Plot, c Chart, rec *recorder) (func() []datum, vg.Length, vg.Length, error) {
	var labels []string
	at := map[string]int{}
	for _, s := range c.Series {
		for _, pt := range s.Points {
			if _, ok := at[pt.Label]; !ok {
				at[pt.Label] = len(labels)
				labels = append(labels, pt.Label)
			}
		}
	}
	n, ns := len(labels), len(c.Series)
	horizontal := c.Kind == HBar
	// pos is where label i is on the category axis: HBar lists the
	// first label on top.
	pos := func(i int) int {
		if horizontal {
			return n - 1 - i
		}
		return i
	}
	names := make([]string, n)
	for i, l := range labels {
		names[pos(i)] = l
	}
	width, height := vg.Length(chartWidth), vg.Length(chartHeight)
	if horizontal {
		p.NominalY(names...)
		height = vg.Length(max(160, n*(ns*barThick+barGap)+hbarFrame))
		widest := vg.Length(0)
		for _, l := range labels {
			widest = max(widest, p.Y.Tick.Label.Width(l))
		}
		width = max(width, widest+labelRoom)
	} else {
		p.NominalX(names...)
		if n > 6 {
			// Slanted, so that many labels do not overlap.
			p.X.Tick.Label.Rotation = math.Pi / 4
			p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = draw.XRight, draw.YCenter
		}
	}
	thick := vg.Length(barThick)
	if !horizontal {
		// Columns share the width.
		thick = max(2, min(vg.Length(40), (width-120)/vg.Length(n)*0.8/vg.Length(ns)))
	}
	type bar struct {
		series, label, link string
		y                   float64
		pos                 int
		offset              vg.Length
	}
	var all []bar
	for si, s := range c.Series {
		values := make(plotter.Values, n)
		seen := make([]bool, n)
		offset := (vg.Length(si) - vg.Length(ns-1)/2) * thick
		if horizontal {
			offset = -offset // the first series on top
		}
		for _, pt := range s.Points {
			i := at[pt.Label]
			if seen[i] {
				return nil, 0, 0, fmt.Errorf("series %q has the label %q twice", s.Name, pt.Label)
			}
			seen[i] = true
			values[pos(i)] = pt.Y
			all = append(all, bar{series: s.Name, label: pt.Label, link: pt.Link, y: pt.Y, pos: pos(i), offset: offset})
		}
		bc, err := plotter.NewBarChart(values, thick)
		if err != nil {
			return nil, 0, 0, err
		}
		bc.Horizontal, bc.Offset, bc.Color = horizontal, offset, seriesColor(si)
		bc.LineStyle.Width = 0
		p.Add(bc)
	}
	// Half a slot beside the first and last labels, so that a group of
	// bars stays inside the data area, and room beyond the longest bar.
	cat, val := &p.Y, &p.X
	if !horizontal {
		cat, val = &p.X, &p.Y
	}
	cat.Min, cat.Max = -0.5, float64(n)-0.5
	val.Min, val.Max = min(val.Min, 0), axisHeadroom(val.Max)
	overlay := func() []datum {
		out := make([]datum, 0, len(all))
		for _, b := range all {
			d := datum{
				series: b.series, label: b.label, value: exactNumber(b.y), link: b.link, rect: true,
				tooltip: datumTooltip(c, b.series, b.label, b.y),
			}
			if horizontal {
				mid := float64(rec.y(float64(b.pos)) + b.offset)
				d.x0, d.x1 = float64(rec.x(0)), float64(rec.x(b.y))
				d.y0, d.y1 = mid-float64(thick)/2, mid+float64(thick)/2
			} else {
				mid := float64(rec.x(float64(b.pos)) + b.offset)
				d.y0, d.y1 = float64(rec.y(0)), float64(rec.y(b.y))
				d.x0, d.x1 = mid-float64(thick)/2, mid+float64(thick)/2
			}
			out = append(out, d)
		}
		return out
	}
	return overlay, height, width, nil
}

// lines adds c's series to p as lines (Line) or points (Scatter).
func drawLines(p *plot.Plot, c Chart, rec *recorder) (func() []datum, error) {
	labelled := true
	ticks := map[float64]string{}
	for _, s := range c.Series {
		for _, pt := range s.Points {
			labelled = labelled && pt.Label != ""
			ticks[pt.X] = pt.Label
		}
	}
	if labelled {
		p.X.Tick.Marker = labelTicks(ticks)
	}
	for si, s := range c.Series {
		xys := make(plotter.XYs, len(s.Points))
		for i, pt := range s.Points {
			xys[i] = plotter.XY{X: pt.X, Y: pt.Y}
		}
		sc, err := plotter.NewScatter(xys)
		if err != nil {
			return nil, fmt.Errorf("series %q: %w", s.Name, err)
		}
		sc.GlyphStyle.Color, sc.GlyphStyle.Shape, sc.GlyphStyle.Radius = seriesColor(si), draw.CircleGlyph{}, 2.5
		if c.Kind == Line {
			l, err := plotter.NewLine(xys)
			if err != nil {
				return nil, fmt.Errorf("series %q: %w", s.Name, err)
			}
			l.LineStyle.Color, l.LineStyle.Width = seriesColor(si), 1.5
			p.Add(l)
		}
		p.Add(sc)
	}
	return func() []datum {
		var out []datum
		for _, s := range c.Series {
			for _, pt := range s.Points {
				label := pt.Label
				if label == "" {
					label = readableNumber(pt.X)
				}
				out = append(out, datum{
					series: s.Name, label: label, value: exactNumber(pt.Y), x: exactNumber(pt.X), link: pt.Link,
					tooltip: datumTooltip(c, s.Name, label, pt.Y), x0: float64(rec.x(pt.X)), y0: float64(rec.y(pt.Y)),
				})
			}
		}
		return out
	}, nil
}

// labelTicks marks the X axis with the points' labels (a day, say), at
// most ten of them, evenly spread.
type labelTicks map[float64]string

func (l labelTicks) Ticks(lo, hi float64) []plot.Tick {
	xs := make([]float64, 0, len(l))
	for x := range l {
		if x >= lo && x <= hi {
			xs = append(xs, x)
		}
	}
	slices.Sort(xs)
	step := max(1, (len(xs)+9)/10)
	ticks := make([]plot.Tick, len(xs))
	for i, x := range xs {
		ticks[i] = plot.Tick{Value: x}
		if i%step == 0 {
			ticks[i].Label = l[x]
		}
	}
	return ticks
}

// histogram adds c's bins to p: a point per bin, X its lower edge.
func drawHistogram(p *plot.Plot, c Chart, rec *recorder) (func() []datum, error) {
	var xs []float64
	for _, s := range c.Series {
		for _, pt := range s.Points {
			xs = append(xs, pt.X)
		}
	}
	slices.Sort(xs)
	xs = slices.Compact(xs)
	binWidth := math.Inf(1)
	for i := 1; i < len(xs); i++ {
		binWidth = min(binWidth, xs[i]-xs[i-1])
	}
	if math.IsInf(binWidth, 1) {
		binWidth = 1
	}
	for si, s := range c.Series {
		h := &plotter.Histogram{Width: binWidth, FillColor: seriesColor(si)}
		h.LineStyle.Width = 0
		for _, pt := range s.Points {
			h.Bins = append(h.Bins, plotter.HistogramBin{Min: pt.X, Max: pt.X + binWidth, Weight: pt.Y})
		}
		p.Add(h)
	}
	p.Y.Min, p.Y.Max = min(p.Y.Min, 0), axisHeadroom(p.Y.Max)
	return func() []datum {
		var out []datum
		for _, s := range c.Series {
			for _, pt := range s.Points {
				label := pt.Label
				if label == "" {
					label = readableNumber(pt.X) + "–" + readableNumber(pt.X+binWidth)
				}
				out = append(out, datum{
					series: s.Name, label: label, value: exactNumber(pt.Y), x: exactNumber(pt.X), rect: true,
					tooltip: datumTooltip(c, s.Name, label, pt.Y),
					x0:      float64(rec.x(pt.X)), x1: float64(rec.x(pt.X + binWidth)), y0: float64(rec.y(0)), y1: float64(rec.y(pt.Y)),
				})
			}
		}
		return out
	}, nil
}

// headroom is an axis' maximum with a little room beyond the largest value.
func axisHeadroom(v float64) float64 {
	if v > 0 {
		return v * 1.04
	}
	return v
}

// isWebURL reports whether s is a whole absolute http(s) URL.
func isWebURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && !strings.ContainsAny(s, " \t\n")
}
