// Package browser is a test harness that opens an HTML file in headless
// Chromium (Debian's chromium) with the network disabled, and reads what
// the browser rendered: the report's charts as the DOM holds them, the
// requests the page tried to make and the exceptions its scripts threw,
// and screenshots.
//
// The network is cut twice: Chromium's proxy is a closed port on loopback
// (with loopback itself sent to it), and every request the page makes is
// paused through the DevTools protocol's Fetch domain and failed unless its
// URL is file:, data: or blob:. The refused URLs are kept: a page that
// opens offline refused none (Page.Blocked).
//
// A test that needs Chromium calls Open, which skips the test when no
// chromium is installed, except in CI (CI=true), where .ci/run installs it
// and its absence is a failure.
package browser

import (
	"context"
	"encoding/base64"
	"fmt"
	"iter"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/datamill/datamill/pkg/testkit"
)

// timeout bounds each step of the harness: opening, reading, a screenshot.
const timeout = time.Minute

// Page is an HTML file opened in headless Chromium.
type Page struct {
	t   testing.TB
	ctx context.Context // the tab's

	mu         sync.Mutex
	blocked    []string // URLs refused, in order
	exceptions []string // uncaught exceptions of the page's scripts
}

// execPath returns the path of Chromium, or "" when none is installed.
func execPath() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Need skips the test when Chromium is not installed (apt-get install
// chromium), except in CI, where .ci/run installs it and its absence is a
// failure. It returns Chromium's path.
func Need(t testing.TB) string {
	t.Helper()
	p := execPath()
	if p != "" {
		return p
	}
	testkit.Unavailable(t, "no chromium on PATH (apt-get install chromium)")
	return ""
}

// Open opens the HTML file at htmlPath in a new headless Chromium with the
// network disabled, waits until it has loaded, and returns it. The browser
// stops when the test ends.
func Open(t testing.TB, htmlPath string) *Page {
	t.Helper()
	chromium := Need(t)
	abs, err := filepath.Abs(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		// Containers and CI run as root, where Chromium's sandbox cannot
		// start.
		chromedp.NoSandbox,
		// Nothing listens on port 9 (discard): every request that gets
		// past the interception below goes nowhere, loopback included.
		chromedp.ProxyServer("127.0.0.1:9"),
		chromedp.Flag("proxy-bypass-list", "<-loopback>"),
		chromedp.Flag("disable-gpu", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	p := &Page{t: t, ctx: ctx}

	// The first Run starts the browser and must not carry a timeout (it
	// would stop the browser with it).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	paused := chromedp.Events(ctx, fetch.RequestPaused)
	go p.intercept(paused)
	go p.collectExceptions(chromedp.Events(ctx, runtime.ExceptionThrown))

	step, cancelStep := context.WithTimeout(ctx, timeout)
	defer cancelStep()
	err = chromedp.Do(step,
		call(fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*"}}}),
		call(runtime.Enable, cdp.Empty{}),
		chromedp.Navigate("file://"+abs),
	)
	if err != nil {
		t.Fatalf("open %s in chromium: %v", abs, err)
	}
	return p
}

// call is the action of one DevTools command whose result is not read.
func call[P, R any](c cdp.Command[P, R], params P) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, c, params)
		return chromedp.Void{}, err
	}
}

// local reports whether a URL stays on the machine without a network:
// the file itself, and what the page builds in memory.
func local(url string) bool {
	for _, scheme := range []string{"file:", "data:", "blob:", "about:"} {
		if strings.HasPrefix(url, scheme) {
			return true
		}
	}
	return false
}

// intercept lets local requests go on and fails every other one, keeping
// its URL, until the tab closes.
func (p *Page) intercept(events iter.Seq2[fetch.EventRequestPaused, error]) {
	for ev, err := range events {
		if err != nil {
			return
		}
		var action chromedp.Action[chromedp.Void]
		if local(ev.Request.URL) {
			action = call(fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
		} else {
			p.mu.Lock()
			p.blocked = append(p.blocked, ev.Request.URL)
			p.mu.Unlock()
			action = call(fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonInternetDisconnected})
		}
		// An error here means the tab is closing.
		_ = chromedp.Do(p.ctx, action)
	}
}

// collectExceptions keeps the page's uncaught exceptions.
func (p *Page) collectExceptions(events iter.Seq2[runtime.EventExceptionThrown, error]) {
	for ev, err := range events {
		if err != nil {
			return
		}
		text := ev.ExceptionDetails.Text
		if ex := ev.ExceptionDetails.Exception; ex != nil && ex.Description != "" {
			text += " " + ex.Description
		}
		p.mu.Lock()
		p.exceptions = append(p.exceptions, text)
		p.mu.Unlock()
	}
}

// Blocked returns the URLs the page asked for that the harness refused
// (none for a page that opens offline).
func (p *Page) Blocked() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.blocked...)
}

// Exceptions returns the uncaught exceptions the page's scripts threw.
func (p *Page) Exceptions() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.exceptions...)
}

// run runs actions on the tab within timeout, failing the test on error.
func run[T any](p *Page, what string, a chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// Eval evaluates a JavaScript expression on the page and decodes its value
// (JSON-serialisable) into a T; a promise is awaited.
func Eval[T any](p *Page, expression string) T {
	p.t.Helper()
	return run(p, "evaluate "+expression, chromedp.Evaluate[T](expression, chromedp.EvalAwaitPromise))
}

// Text returns the text content of the first element selector matches,
// or "" when none does.
func (p *Page) Text(selector string) string {
	p.t.Helper()
	return Eval[string](p, fmt.Sprintf(`(document.querySelector(%s) || {textContent: ""}).textContent`, strconv.Quote(selector)))
}

// Count returns how many elements selector matches.
func (p *Page) Count(selector string) int {
	p.t.Helper()
	return Eval[int](p, fmt.Sprintf(`document.querySelectorAll(%s).length`, strconv.Quote(selector)))
}

// Click clicks the first element selector matches, as a user does (a
// pointer event), and fails the test when none does.
func (p *Page) Click(selector string) {
	p.t.Helper()
	ok := Eval[bool](p, fmt.Sprintf(`(() => { const e = document.querySelector(%s); if (!e) return false;
		e.dispatchEvent(new MouseEvent("click", {bubbles: true, cancelable: true, view: window})); return true })()`, strconv.Quote(selector)))
	if !ok {
		p.t.Fatalf("click %s: no such element", selector)
	}
}

// Screenshot writes a PNG of the whole page (beyond the window's height)
// to path.
func (p *Page) Screenshot(path string) {
	p.t.Helper()
	b := run(p, "screenshot", func(ctx context.Context, t *chromedp.Target) ([]byte, error) {
		r, err := cdp.Call(ctx, t, page.CaptureScreenshot, page.CaptureScreenshotParams{
			Format:                page.CaptureScreenshotFormatPng,
			CaptureBeyondViewport: ptr(true),
			FromSurface:           ptr(true),
		})
		if err != nil {
			return nil, err
		}
		return decodeImage(r.Data)
	})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		p.t.Fatal(err)
	}
}

// decodeImage returns an image's bytes from how the protocol's result
// holds them (already decoded, or base64).
func decodeImage(b []byte) ([]byte, error) {
	if len(b) >= 8 && string(b[1:4]) == "PNG" {
		return b, nil
	}
	out, err := base64.StdEncoding.DecodeString(string(b))
	if err != nil {
		return nil, fmt.Errorf("decode screenshot: %w", err)
	}
	return out, nil
}

func ptr[T any](v T) *T { return &v }

// A Chart is a chart as the page rendered it: a figure.chart element.
type Chart struct {
	ID, Kind string // the element's id and data-kind
	Title    string // its figcaption's text
	Data     []Datum
	// CSV is the chart's data as its CSV link gives it ("" without one).
	CSV string
}

// A Datum is one bar or point of a chart: an element of class datum.
type Datum struct {
	Label, Series string // data-label, data-series
	Value         float64
	Raw           string // data-value as written
	Title         string // its SVG <title>: the hover tooltip
}

// chartsJS reads every figure.chart of the page.
const chartsJS = `Array.from(document.querySelectorAll("figure.chart")).map(f => ({
	id: f.id, kind: f.dataset.kind || "",
	title: ((f.querySelector("figcaption") || {}).textContent || "").trim(),
	csv: (Array.from(f.querySelectorAll("a[href^='data:text/csv']")).map(a => a.getAttribute("href"))[0]) || "",
	data: Array.from(f.querySelectorAll(".datum")).map(d => ({
		label: d.getAttribute("data-label") || "", value: d.getAttribute("data-value") || "",
		series: d.getAttribute("data-series") || "",
		title: (Array.from(d.children).find(c => c.tagName.toLowerCase() === "title") || {}).textContent || "",
	})),
}))`

// Charts returns the charts of the page in document order. A datum whose
// data-value is no number fails the test.
func (p *Page) Charts() []Chart {
	p.t.Helper()
	type datum struct{ Label, Value, Series, Title string }
	type chart struct {
		ID, Kind, Title, CSV string
		Data                 []datum
	}
	raw := Eval[[]chart](p, chartsJS)
	out := make([]Chart, len(raw))
	for i, c := range raw {
		out[i] = Chart{ID: c.ID, Kind: c.Kind, Title: c.Title}
		if c.CSV != "" {
			csv, err := dataURIText(c.CSV)
			if err != nil {
				p.t.Errorf("chart %s: CSV link: %v", c.ID, err)
			}
			out[i].CSV = csv
		}
		for _, d := range c.Data {
			v, err := strconv.ParseFloat(d.Value, 64)
			if err != nil {
				p.t.Errorf("chart %s: datum %q of series %q: data-value %q is no number", c.ID, d.Label, d.Series, d.Value)
			}
			out[i].Data = append(out[i].Data, Datum{Label: d.Label, Series: d.Series, Value: v, Raw: d.Value, Title: d.Title})
		}
	}
	return out
}

// Chart returns the chart of id, failing the test when there is none.
func (p *Page) Chart(id string) Chart {
	p.t.Helper()
	for _, c := range p.Charts() {
		if c.ID == id {
			return c
		}
	}
	p.t.Fatalf("no chart %q on the page", id)
	return Chart{}
}

// dataURIText returns the text a data: URI holds, percent-encoded or
// base64.
func dataURIText(uri string) (string, error) {
	header, data, ok := strings.Cut(strings.TrimPrefix(uri, "data:"), ",")
	if !ok {
		return "", fmt.Errorf("%.40q is no data URI", uri)
	}
	if strings.HasSuffix(header, ";base64") {
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return "", fmt.Errorf("data URI %.40q: %w", uri, err)
		}
		return string(b), nil
	}
	text, err := url.PathUnescape(data)
	if err != nil {
		return "", fmt.Errorf("data URI %.40q: %w", uri, err)
	}
	return text, nil
}

// Series returns the names of the chart's series in the order their
// first datum comes.
func (c Chart) Series() []string {
	var out []string
	for _, d := range c.Data {
		if !slices.Contains(out, d.Series) {
			out = append(out, d.Series)
		}
	}
	return out
}

// Values returns the data of one series by label (a bar's label, a
// point's or a bin's), to compare with what the SQL views answer.
func (c Chart) Values(series string) map[string]float64 {
	out := map[string]float64{}
	for _, d := range c.Data {
		if d.Series == series {
			out[d.Label] = d.Value
		}
	}
	return out
}
