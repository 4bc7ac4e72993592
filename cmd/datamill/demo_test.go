package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/datamill/datamill/cmd/datamill/internal/report/browser"
)

func TestDemoReconciles(t *testing.T) {
	var out strings.Builder
	environ := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "GOCACHE=" + os.Getenv("GOCACHE"), "GOPATH=" + os.Getenv("GOPATH"), "GOFLAGS=" + os.Getenv("GOFLAGS")}
	if err := run(t.Context(), []string{"demo", "--rows", "2000", "--seed", "5", "--dirty", "0.2", "--json", "--report", filepath.Join(t.TempDir(), "report.html")}, environ, &out, io.Discard); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	var s struct {
		Counts struct {
			Raw, Clean, DLQ, Duplicates, Persisted, Unchanged, Scored int
		}
		Tables struct{ Users, Predictions int }
		Model  struct {
			Version string
			AUC     float64
		}
		Eco struct {
			Wh     float64 `json:"total_wh"`
			Stages []struct{ Stage string }
		}
		DistinctValidIDs int     `json:"distinct_valid_ids"`
		Elapsed          float64 `json:"elapsed_seconds"`
		Reconciled       bool
		Report           string
	}
	if err := json.Unmarshal([]byte(out.String()), &s); err != nil {
		t.Fatalf("demo --json printed %q: %v", out.String(), err)
	}
	if !s.Reconciled || s.Counts.Raw < 2000 || s.Tables.Users != s.DistinctValidIDs || s.DistinctValidIDs > 2000 || s.Counts.DLQ == 0 ||
		s.Counts.Raw != s.Counts.Clean+s.Counts.DLQ+s.Counts.Duplicates || s.Counts.Persisted+s.Counts.Unchanged != s.Counts.Clean || s.Elapsed <= 0 ||
		s.Counts.Scored != s.Counts.Persisted || s.Tables.Predictions != s.Counts.Persisted || s.Model.Version == "" || s.Model.AUC < 0.6 ||
		s.Eco.Wh <= 0 || len(s.Eco.Stages) < 4 {
		t.Errorf("summary %+v", s)
	}
	if page := readPage(t, s.Report); !strings.Contains(page, `<section id="users">`) || !strings.Contains(page, `<section id="pipeline">`) {
		t.Errorf("the demo's report %s lacks the users or pipeline section", s.Report)
	}
	// The page in headless Chromium, the network cut: every chart drawn
	// with a shape per row of its data, and the predicted probabilities'
	// histogram counting each user of the table once.
	t.Run("chromium", func(t *testing.T) {
		p := browser.Open(t, s.Report)
		p.Screenshot(filepath.Join(t.TempDir(), "report.png"))
		charts := everyChart(t, p, "users-churn-country", "users-churn-tenure", "users-probability", "users-roc", "users-calibration",
			"pipeline-records", "eco-wh-stage", "eco-co2e-stage", "eco-co2e-million", "eco-co2e-run",
			"streams-lag", "streams-dead-letters-users", "users-drift")
		var users float64
		for _, d := range charts["users-probability"].Data {
			users += d.Value
		}
		if int(users) != s.Tables.Users {
			t.Errorf("the probability histogram counts %v users, the users table holds %d", users, s.Tables.Users)
		}
	})
}

// everyChart checks every chart of a report as the browser rendered it: a
// shape per row of the chart's own CSV, with its series, label and value,
// and the charts named in ids among them. It returns the charts by id.
func everyChart(t *testing.T, p *browser.Page, ids ...string) map[string]browser.Chart {
	t.Helper()
	charts := map[string]browser.Chart{}
	for _, c := range p.Charts() {
		charts[c.ID] = c
		if c.CSV == "" && len(c.Data) == 0 {
			continue // an empty chart (no family in the middle band) links no data
		}
		rows, err := csv.NewReader(strings.NewReader(c.CSV)).ReadAll()
		if err != nil || len(rows) == 0 || strings.Join(rows[0], ",") != "series,label,x,y,link" {
			t.Errorf("chart %s: CSV %q (%v), want a header series,label,x,y,link", c.ID, c.CSV, err)
			continue
		}
		want := map[string]string{}
		for _, r := range rows[1:] {
			want[r[0]+"\x00"+r[1]] = r[3]
		}
		got := map[string]string{}
		for _, d := range c.Data {
			got[d.Series+"\x00"+d.Label] = d.Raw
		}
		if len(c.Data) != len(rows)-1 || !maps.Equal(got, want) {
			t.Errorf("chart %s draws %d shapes %v, its data has %d rows %v", c.ID, len(c.Data), got, len(rows)-1, want)
		}
	}
	for _, id := range ids {
		if c, ok := charts[id]; !ok || len(c.Data) == 0 {
			t.Errorf("the report has no chart %s with data (charts: %v)", id, slices.Sorted(maps.Keys(charts)))
		}
	}
	if b, e := p.Blocked(), p.Exceptions(); len(b) > 0 || len(e) > 0 {
		t.Errorf("the page asked for %v and threw %v", b, e)
	}
	return charts
}

// readPage reads the report a demo wrote, at the path its summary gives.
func readPage(t testing.TB, path string) string {
	t.Helper()
	if !filepath.IsAbs(path) {
		t.Fatalf("the demo's report is at %q, want an absolute path", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the demo's report: %v", err)
	}
	return string(b)
}

// Two demo runs of different sizes, saved as JSON, compare with `datamill
// eco report --from … --vs …`: the larger run costs more energy.
func TestEcoReportComparesTwoDemoRuns(t *testing.T) {
	environ := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "GOCACHE=" + os.Getenv("GOCACHE"), "GOPATH=" + os.Getenv("GOPATH"), "GOFLAGS=" + os.Getenv("GOFLAGS")}
	dir := t.TempDir()
	files := map[string]string{}
	for _, rows := range []string{"1000", "16000"} {
		var out strings.Builder
		if err := run(t.Context(), []string{"demo", "--rows", rows, "--json", "--report", ""}, environ, &out, io.Discard); err != nil {
			t.Fatalf("demo --rows %s: %v", rows, err)
		}
		files[rows] = filepath.Join(dir, rows+".json")
		if err := os.WriteFile(files[rows], []byte(out.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	if err := run(t.Context(), []string{"eco", "report", "--from", files["16000"], "--vs", files["1000"]}, nil, &out, &out); err != nil {
		t.Fatalf("eco report: %v\n%s", err, out.String())
	}
	text := out.String()
	var total string
	for line := range strings.Lines(text) {
		if f := strings.Fields(line); len(f) > 3 && f[0] == "total" && strings.HasSuffix(f[3], "%") {
			total = f[3]
		}
	}
	if !strings.Contains(text, "A/B: A = run demo-") || !strings.HasPrefix(total, "+") {
		t.Errorf("A/B of a 16000-user run against a 1000-user one: total change %q\n%s", total, text)
	}
	// Meaningful: sixteen times the users cost well over twice the energy,
	// whichever the constants, and less per record (the services' fixed
	// costs spread over more records; the TLS and SCRAM handshakes of a
	// secure stack's connections are among them, about 50 ms of CPU per
	// service, which left eight times the users at 1.95 times the energy).
	out.Reset()
	if err := run(t.Context(), []string{"eco", "report", "--from", files["16000"], "--vs", files["1000"], "--json"}, nil, &out, &out); err != nil {
		t.Fatalf("eco report --json: %v\n%s", err, out.String())
	}
	type figure struct{ Low, Central, High float64 }
	var ab struct {
		Report, Reference struct {
			Records int64
			Wh      figure `json:"total_wh_range"`
			PerMil  figure `json:"gco2e_per_million_records_range"`
		}
	}
	if err := json.Unmarshal([]byte(out.String()), &ab); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	a, b := ab.Report, ab.Reference
	if a.Records < 15*b.Records || a.Wh.Low < 2*b.Wh.Low || a.Wh.High < 2*b.Wh.High || a.PerMil.Central >= b.PerMil.Central {
		t.Errorf("A/B of %d users against %d: %+v Wh against %+v, %+v gCO2e per 1M records against %+v", a.Records, b.Records, a.Wh, b.Wh, a.PerMil, b.PerMil)
	}
}

// The jobs demo extracts every offer of a local board through every source
// of the jobs declaration, publishes nothing on a second poll and one
// event for one changed offer.
func TestJobsDemoReconciles(t *testing.T) {
	var out strings.Builder
	environ := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "GOCACHE=" + os.Getenv("GOCACHE"), "GOPATH=" + os.Getenv("GOPATH"), "GOFLAGS=" + os.Getenv("GOFLAGS")}
	split := t.TempDir()
	if err := run(t.Context(), []string{"demo", "--dataset", "jobs", "--rows", "400", "--seed", "3", "--json", "--export-split", split, "--report", filepath.Join(t.TempDir(), "report.html")}, environ, &out, io.Discard); err != nil {
		t.Fatalf("demo --dataset jobs: %v\n%s", err, out.String())
	}
	var s struct {
		Sources map[string]struct {
			Board, Raw, Distinct, Dropped, Requests int
		}
		SecondPoll  int `json:"second_poll_published"`
		AfterChange int `json:"after_change_published"`
		Disallowed  int `json:"disallowed_requests"`
		Persisted   int
		Scored      int
		Clusters    struct{ Planted, Found, Matched int }
		Views       map[string]int
		Answers     map[string][]string
		Model       struct{ MAE, R2 float64 }
		ViewRows    map[string][]map[string]any `json:"view_rows"`
		Reconciled  bool
		Report      string
	}
	if err := json.Unmarshal([]byte(out.String()), &s); err != nil {
		t.Fatalf("demo --json printed %q: %v", out.String(), err)
	}
	if !s.Reconciled || s.SecondPoll != 0 || s.AfterChange != 1 || s.Disallowed != 0 || len(s.Sources) != 6 {
		t.Errorf("summary %+v", s)
	}
	raw := 0
	for name, c := range s.Sources {
		raw += c.Raw
		if c.Board == 0 || c.Distinct+c.Dropped != c.Board || c.Requests == 0 {
			t.Errorf("source %s: %+v, want every offer on the board extracted or left out", name, c)
		}
	}
	if s.Persisted != raw || s.Scored != raw {
		t.Errorf("%d records persisted and %d scored, want the %d extracted", s.Persisted, s.Scored, raw)
	}
	if c := s.Clusters; c.Planted < 5 || c.Found != c.Planted || c.Matched != c.Planted {
		t.Errorf("duplicate clusters %+v, want those planted found, and no others", c)
	}
	for _, v := range []string{"jobs_unique", "jobs_title_demand", "jobs_family_demand", "jobs_top_locations", "jobs_salary_by_family", "jobs_per_source_day"} {
		if s.Views[v] == 0 {
			t.Errorf("view %s holds no rows (views %v)", v, s.Views)
		}
	}
	for _, q := range []string{"most demanded titles", "least demanded titles", "top countries", "median stated salary (EUR a year) by family", "median estimated salary (EUR a year) by family"} {
		if len(s.Answers[q]) == 0 {
			t.Errorf("%s: no answer", q)
		}
	}
	if s.Model.MAE <= 0 || s.Model.R2 < 0.5 {
		t.Errorf("salary model %+v, want a test MAE and an R² of at least 0.5", s.Model)
	}
	// The report of the run, written before the stack stopped: every
	// chart of the jobs section has data, and the sources are credited.
	page := readPage(t, s.Report)
	for _, id := range []string{"jobs_title_demand-top", "jobs_family_demand-top", "jobs-top-countries", "jobs-top-regions", "jobs-salary-by-family", "jobs-per-source-day"} {
		_, fig, found := strings.Cut(page, `<figure class="chart" id="`+id+`"`)
		fig, _, _ = strings.Cut(fig, "</figure>")
		if !found || !strings.Contains(fig, `class="datum"`) {
			t.Errorf("the report's chart %s has no data", id)
		}
	}
	for name := range s.Sources {
		if !strings.Contains(page, "<td>"+name+"</td>") {
			t.Errorf("the report does not credit the source %s", name)
		}
	}
	// The page in headless Chromium, the network cut: every demand and
	// location chart shows the rows of its view, ties and all, and the page
	// asked for nothing.
	t.Run("chromium", func(t *testing.T) {
		p := browser.Open(t, s.Report)
		p.Screenshot(filepath.Join(t.TempDir(), "report.png"))
		charts := everyChart(t, p, "jobs_title_demand-top", "jobs_family_demand-top", "jobs-top-countries", "jobs-top-regions",
			"jobs-salary-by-family", "jobs-per-source-day", "streams-lag")
		salaries, days := map[string]map[string]float64{}, map[string]map[string]float64{}
		for _, r := range s.ViewRows["jobs_salary_by_family"] {
			basis, _ := r["basis"].(string)
			if salaries[basis] == nil {
				salaries[basis] = map[string]float64{}
			}
			salaries[basis][fmt.Sprint(r["family"])], _ = r["median"].(float64)
		}
		for _, r := range s.ViewRows["jobs_per_source_day"] {
			day, ok := r["day"].(string)
			if !ok {
				continue // an offer without a date is on no day
			}
			source := fmt.Sprint(r["source_name"])
			if days[source] == nil {
				days[source] = map[string]float64{}
			}
			days[source][day[:len("2006-01-02")]], _ = r["offers"].(float64)
		}
		for basis, want := range salaries {
			if got := charts["jobs-salary-by-family"].Values(basis); !maps.Equal(got, want) {
				t.Errorf("salary chart, %s: %v; its view holds %v", basis, got, want)
			}
		}
		for source, want := range days {
			if got := charts["jobs-per-source-day"].Values(source); !maps.Equal(got, want) {
				t.Errorf("per-day chart, %s: %v; its view holds %v", source, got, want)
			}
		}
		if len(salaries) == 0 || len(days) == 0 {
			t.Errorf("the salary and per-day views hold no rows: %v %v", salaries, days)
		}
		want := map[string]map[string]float64{}
		add := func(chart, label string, offers any) {
			if want[chart] == nil {
				want[chart] = map[string]float64{}
			}
			n, _ := offers.(float64)
			want[chart][label] = n
		}
		for _, view := range []string{"jobs_title_demand", "jobs_family_demand"} {
			name := map[string]string{"jobs_title_demand": "title", "jobs_family_demand": "family"}[view]
			for _, r := range s.ViewRows[view] {
				add(fmt.Sprintf("%s-%s", view, r["band"]), fmt.Sprintf("%s (#%v)", r[name], r["rank"]), r["offers"])
			}
		}
		for _, r := range s.ViewRows["jobs_top_locations"] {
			add(map[any]string{"country": "jobs-top-countries", "region": "jobs-top-regions"}[r["kind"]], fmt.Sprintf("%s (#%v)", r["code"], r["rank"]), r["offers"])
		}
		if len(want) < 6 { // title bands (3), family bands (1 with 9 families), countries, regions
			t.Fatalf("the views hold rows for %d charts only: %v", len(want), s.ViewRows)
		}
		for id, rows := range want {
			got := charts[id].Values("offers")
			if len(rows) > 40 {
				// The chart shows 40 of its view's rows and says so.
				for label, v := range got {
					if w, ok := rows[label]; !ok || w != v {
						t.Errorf("chart %s shows %s = %v, its view holds %v", id, label, v, w)
					}
				}
				if len(got) != 40 {
					t.Errorf("chart %s shows %d bars of its view's %d, want the first 40", id, len(got), len(rows))
				}
				continue
			}
			if !maps.Equal(got, rows) {
				t.Errorf("chart %s shows %v, its view holds %v", id, got, rows)
			}
		}
	})
	// scikit-learn's Ridge on the same split: the same features, a test MAE
	// within 5 % (the script fails otherwise).
	t.Run("scikit-learn", func(t *testing.T) {
		needPython(t, "sklearn, yaml", "python3-sklearn python3-yaml")
		models, _ := filepath.Glob(filepath.Join(split, "salary-*.json"))
		if len(models) != 1 {
			t.Fatalf("the split holds models %v, want the one trained", models)
		}
		cmd := exec.Command(python, filepath.Join("..", "..", "bench", "sklearn_reference.py"),
			filepath.Join("..", "..", "schemas", "avro", "jobs", "dataset.yaml"), split, models[0])
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sklearn_reference.py: %v\n%s", err, out)
		} else {
			t.Logf("%s", out)
		}
	})
}
