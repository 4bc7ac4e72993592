package browser

import (
	"bytes"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestChartsOfAHandWrittenPage(t *testing.T) {
	p := Open(t, filepath.Join("testdata", "charts.html"))

	got := p.Charts()
	want := []Chart{
		{
			ID: "titles", Kind: "hbar", Title: "Most demanded titles",
			CSV: "series,label,value\noffers,data engineer,40\noffers,analyst,30\noffers,go developer,30\n",
			Data: []Datum{
				{Label: "data engineer", Series: "offers", Value: 40, Raw: "40", Title: "data engineer: 40 offers"},
				{Label: "analyst", Series: "offers", Value: 30, Raw: "30", Title: "analyst: 30 offers"},
				{Label: "go developer", Series: "offers", Value: 30, Raw: "30", Title: "go developer: 30 offers"},
			},
		},
		{
			ID: "salary", Kind: "bar", Title: "Median salary by family",
			Data: []Datum{
				{Label: "data", Series: "stated", Value: 61000.5, Raw: "61000.5", Title: "data: 61000.5 EUR"},
				{Label: "software", Series: "stated", Value: 58000, Raw: "58000", Title: "software: 58000 EUR"},
				{Label: "data", Series: "estimated", Value: 59000, Raw: "59000", Title: "data: 59000 EUR"},
				{Label: "software", Series: "estimated", Value: -1000, Raw: "-1e3", Title: "software: -1000 EUR"},
			},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("charts of testdata/charts.html (-want +got):\n%s", diff)
	}
	salary := p.Chart("salary")
	if got, want := salary.Series(), []string{"stated", "estimated"}; !slices.Equal(got, want) {
		t.Errorf("series of the salary chart: %v, want %v", got, want)
	}
	if diff := cmp.Diff(map[string]float64{"data": 59000, "software": -1000}, salary.Values("estimated")); diff != "" {
		t.Errorf("estimated salaries (-want +got):\n%s", diff)
	}
	if got := p.Text("h1"); got != "Two charts" {
		t.Errorf("Text(h1) = %q, want %q", got, "Two charts")
	}

	// The legend's script runs: a click hides the series' shapes.
	visible := `Array.from(document.querySelectorAll(".datum")).filter(d => d.getBoundingClientRect().width > 0).length`
	if n := Eval[int](p, visible); n != 7 {
		t.Fatalf("%d data shown before the click, want 7", n)
	}
	p.Click(`[data-toggle="estimated"]`)
	if n := Eval[int](p, visible); n != 5 {
		t.Errorf("%d data shown after hiding the estimated series, want 5", n)
	}

	if b := p.Blocked(); len(b) > 0 {
		t.Errorf("a page with nothing to fetch had requests refused: %v", b)
	}
	if e := p.Exceptions(); len(e) > 0 {
		t.Errorf("the page's script threw: %v", e)
	}

	shot := filepath.Join(t.TempDir(), "page.png")
	p.Screenshot(shot)
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot %s is no PNG: %v", shot, err)
	}
	if cfg.Width != 1280 || cfg.Height < 400 {
		t.Errorf("screenshot is %d×%d px, want 1280 wide and the page's height (≥ 400)", cfg.Width, cfg.Height)
	}
}

// TestNetworkIsDisabled opens a page that asks a live HTTP server on
// loopback for an image, a script and a fetch: none reaches the server.
func TestNetworkIsDisabled(t *testing.T) {
	Need(t)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Access-Control-Allow-Origin", "*")
		fmt.Fprint(w, "window.scriptRan = true")
	}))
	t.Cleanup(srv.Close)
	page := fmt.Sprintf(`<!doctype html><html><head><meta charset="utf-8">
<script src="%[1]s/script.js"></script></head>
<body><img id="img" src="%[1]s/image.png" alt="remote">
<script>window.fetched = fetch("%[1]s/data.json").then(() => "loaded", () => "failed")</script>
</body></html>`, srv.URL)
	file := filepath.Join(t.TempDir(), "remote.html")
	if err := os.WriteFile(file, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}

	p := Open(t, file)
	if got := Eval[string](p, "window.fetched"); got != "failed" {
		t.Errorf("fetch of %s/data.json: %s, want failed", srv.URL, got)
	}
	if Eval[bool](p, "window.scriptRan === true") {
		t.Errorf("the script of %s/script.js ran", srv.URL)
	}
	if w := Eval[int](p, `document.getElementById("img").naturalWidth`); w != 0 {
		t.Errorf("the image of %s/image.png loaded, %d px wide", srv.URL, w)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the server got %d requests, want none", n)
	}
	blocked := p.Blocked()
	for _, path := range []string{"/script.js", "/image.png", "/data.json"} {
		if !slices.Contains(blocked, srv.URL+path) {
			t.Errorf("%s not among the refused requests %v", srv.URL+path, blocked)
		}
	}
}
