package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/services/ecometer/migrations"
)

func TestEcoReportComparesRuns(t *testing.T) {
	url := testkit.Postgres(t)
	pool, err := pg.Open(t.Context(), pg.Config{URL: url, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pg.Migrate(t.Context(), pool, "ecometer", migrations.FS); err != nil {
		t.Fatal(err)
	}
	seed := func(pool *pgxpool.Pool, run string, scale float64, at string) {
		for stage, cpu := range map[string]float64{"cleaner": 2, "loader": 6} {
			if _, err := pool.Exec(t.Context(), `insert into eco_stage_totals values ($1, $2, 3, $3, 30, 60, $4, $4, 0, 0, $5::timestamptz - interval '30 seconds', $5::timestamptz)`,
				run, stage, cpu*scale, int64(100000*scale), at); err != nil {
				t.Fatal(err)
			}
		}
	}
	seed(pool, "small", 1, "2026-01-01T00:00:00Z")
	seed(pool, "big", 2, "2026-01-02T00:00:00Z")
	env := []string{"DATABASE_URL=" + url}
	csvPath := filepath.Join(t.TempDir(), "emissions.csv")

	var out strings.Builder
	if err := run(t.Context(), []string{"eco", "report", "--vs", "small", "--grid", "FR", "--emissions", csvPath}, env, &out, &out); err != nil {
		t.Fatalf("eco report: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{"run big, 200000 records, FR grid (44.18", "cleaner", "loader", "A/B: A = run big (200000 records) against B = run small (100000 records)", "±40 %", "Green Algorithms", "+51.8%"} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != 3 || rows[0][4] != "emissions" || rows[1][14] != "process" {
		t.Errorf("emissions.csv: %v (%v)", rows, err)
	}

	out.Reset()
	if err := run(t.Context(), []string{"eco", "report", "--json", "--run", "small"}, env, &out, &out); err != nil {
		t.Fatal(err)
	}
	var j struct {
		Report struct {
			Run    string  `json:"run"`
			Wh     float64 `json:"total_wh"`
			Stages []struct {
				Stage string  `json:"stage"`
				Share float64 `json:"share_of_total"`
			} `json:"stages"`
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(out.String()), &j); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	// 8 CPU s at 6 W plus 2 × 60 GB·s at 0.3725 W/GB, in Wh.
	want := (8*6.0 + 120*0.3725) / 3600
	if j.Report.Run != "small" || len(j.Report.Stages) != 2 || j.Report.Wh < want*0.999 || j.Report.Wh > want*1.001 {
		t.Errorf("json report %+v, want %f Wh", j.Report, want)
	}
	// Saved, the report is estimated again on another grid and writes
	// emissions.csv without the database.
	saved := filepath.Join(t.TempDir(), "small.json")
	if err := os.WriteFile(saved, []byte(out.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	savedCSV := filepath.Join(t.TempDir(), "emissions.csv")
	if err := run(t.Context(), []string{"eco", "report", "--from", saved, "--grid", "DE", "--emissions", savedCSV}, nil, &out, &out); err != nil {
		t.Fatalf("eco report --from: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "run small, 100000 records, DE grid (342.06") {
		t.Errorf("saved report on the DE grid:\n%s", out.String())
	}
	if b, err := os.ReadFile(savedCSV); err != nil || strings.Count(string(b), "\n") != 3 || !strings.Contains(string(b), ",DE,process,") {
		t.Errorf("emissions.csv of a saved report: %q (%v)", b, err)
	}
	if err := run(t.Context(), []string{"eco", "report", "--run", "nope"}, env, &out, &out); err == nil || !strings.Contains(err.Error(), `no eco samples for run "nope"`) {
		t.Errorf("unknown run: %v", err)
	}
}
