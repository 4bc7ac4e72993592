package report

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/datamill/datamill/pkg/eco"
	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/services/ecometer/migrations"
)

// ecoDB is a new database with the ecometer's tables, as its migrations
// create them.
func ecoDB(t testing.TB) *pgx.Conn {
	t.Helper()
	url := testkit.Postgres(t)
	pool, err := pg.Open(t.Context(), pg.Config{URL: url, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pg.Migrate(t.Context(), pool, "ecometer", migrations.FS); err != nil {
		t.Fatal(err)
	}
	db, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(t.Context()) })
	return db
}

// stageRow is one row of eco_stage_totals.
type stageRow struct {
	run, stage          string
	cpu, memGBs         float64
	in, out, dead, dups int64
	lastAt              string
}

// seedEco writes the stage totals of two demo-like runs: "b-old", whose
// samples came first, and "a-new", the latest, whose cleaner
// dead-lettered and whose loader dropped duplicates.
func seedEco(t testing.TB, db *pgx.Conn) []stageRow {
	t.Helper()
	rows := []stageRow{
		{"b-old", "extractor", 1.5, 40, 0, 10000, 0, 0, "2026-06-01T10:00:00Z"},
		{"b-old", "cleaner", 3.2, 60, 10000, 9900, 100, 0, "2026-06-01T10:01:00Z"},
		{"b-old", "loader", 6.1, 90, 9900, 9900, 0, 0, "2026-06-01T10:02:00Z"},
		{"a-new", "scorer", 4.4, 70, 19500, 19500, 0, 0, "2026-06-02T10:03:00Z"},
		{"a-new", "loader", 12.3, 180, 19800, 19500, 0, 300, "2026-06-02T10:02:00Z"},
		{"a-new", "cleaner", 6.5, 120, 20000, 19800, 200, 0, "2026-06-02T10:01:00Z"},
		{"a-new", "extractor", 2.9, 80, 0, 20000, 0, 0, "2026-06-02T10:00:00Z"},
	}
	for _, r := range rows {
		if _, err := db.Exec(t.Context(), `insert into eco_stage_totals (run_id, stage, samples, cpu_s, wall_s, mem_gb_s,
			records_in, records_out, records_dead_lettered, records_duplicates, first_at, last_at)
			values ($1, $2, 12, $3, 60, $4, $5, $6, $7, $8, $9::timestamptz - interval '1 minute', $9::timestamptz)`,
			r.run, r.stage, r.cpu, r.memGBs, r.in, r.out, r.dead, r.dups, r.lastAt); err != nil {
			t.Fatal(err)
		}
	}
	return rows
}

func TestPipelineRecordsAndFootprint(t *testing.T) {
	db := ecoDB(t)
	seeded := seedEco(t, db)
	s, err := Pipeline(t.Context(), db)
	if err != nil {
		t.Fatalf("Pipeline: %v", err)
	}

	// Records per stage: the latest run's, in pipeline order.
	order := []string{"extractor", "cleaner", "loader", "scorer"}
	byStage := map[string]stageRow{}
	for _, r := range seeded {
		if r.run == "a-new" {
			byStage[r.stage] = r
		}
	}
	records := chartOf(t, s, "pipeline-records")
	if len(records.Series) != 4 {
		t.Fatalf("records chart has %d series; want in, out, dead-lettered, duplicates", len(records.Series))
	}
	for i, series := range records.Series {
		if len(series.Points) != len(order) {
			t.Fatalf("series %s has %d bars; want %d", series.Name, len(series.Points), len(order))
		}
		for j, p := range series.Points {
			r := byStage[order[j]]
			want := []int64{r.in, r.out, r.dead, r.dups}[i]
			if p.Label != order[j] || p.Y != float64(want) {
				t.Errorf("%s bar %d: %s %v; want %s %d", series.Name, j, p.Label, p.Y, order[j], want)
			}
		}
	}

	// Energy and emissions per stage: the estimates of the latest run.
	totals, err := eco.LoadRun(t.Context(), db, "a-new")
	if err != nil {
		t.Fatal(err)
	}
	constants := map[eco.Bound]eco.Constants{}
	for _, b := range []eco.Bound{eco.Low, eco.Central, eco.High} {
		constants[b] = eco.Defaults(b, 0, false)
	}
	want, err := eco.NewReport("a-new", "WORLD", totals, constants)
	if err != nil {
		t.Fatal(err)
	}
	for id, figure := range map[string]func(eco.StageReport) eco.Figure{
		"eco-wh-stage":     func(r eco.StageReport) eco.Figure { return r.Wh },
		"eco-co2e-stage":   func(r eco.StageReport) eco.Figure { return r.GramsCO2e },
		"eco-co2e-million": func(r eco.StageReport) eco.Figure { return r.GramsPerMillion },
	} {
		c := chartOf(t, s, id)
		pts := c.Series[0].Points
		if len(pts) != len(order) {
			t.Fatalf("%s has %d bars; want %d", id, len(pts), len(order))
		}
		for i, p := range pts {
			if w := figure(want.Stages[i]).Central; p.Label != want.Stages[i].Stage || p.Y != w || w <= 0 {
				t.Errorf("%s bar %d: %s %v; want %s %v (> 0)", id, i, p.Label, p.Y, want.Stages[i].Stage, w)
			}
		}
	}
	stages := tableOf(t, s, "pipeline-stages")
	if got := stages.Rows[2]; got[0] != "loader" || got[4] != "300" || got[6] != band(want.Stages[2].Wh) || !strings.Contains(got[6], "–") {
		t.Errorf("loader row %v; want 300 duplicates and Wh %s", got, band(want.Stages[2].Wh))
	}

	// Per run: both, the older first, each its total.
	runs := chartOf(t, s, "eco-co2e-run").Series[0].Points
	if len(runs) != 2 || runs[0].Label != "b-old" || runs[1].Label != "a-new" || runs[1].Y != want.TotalCO2e.Central || runs[0].Y >= runs[1].Y {
		t.Errorf("per run: %+v; want b-old then a-new at %v", runs, want.TotalCO2e.Central)
	}
	notes := strings.Join(s.Notes, "\n")
	for _, w := range []string{"datamill tail dlq", "run a-new", "WORLD", "±40 %"} {
		if !strings.Contains(notes, w) {
			t.Errorf("notes lack %q:\n%s", w, notes)
		}
	}
}

func TestPipelineWithoutEco(t *testing.T) {
	tests := map[string]struct {
		db   func(testing.TB) *pgx.Conn
		want string
	}{
		"no eco tables":    {db: func(t testing.TB) *pgx.Conn { return connect(t) }, want: "No eco_stage_totals table"},
		"empty eco tables": {db: ecoDB, want: "no run has published eco samples"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := Pipeline(t.Context(), tc.db(t))
			if err != nil {
				t.Fatalf("Pipeline: %v", err)
			}
			if notes := strings.Join(s.Notes, "\n"); !strings.Contains(notes, tc.want) || !strings.Contains(notes, "datamill tail dlq") {
				t.Errorf("notes lack %q or the dead letters' note:\n%s", tc.want, notes)
			}
			if len(s.Charts) != 0 || len(s.Tables) != 0 {
				t.Errorf("charts %v and %d tables without data", chartIDs(s), len(s.Tables))
			}
		})
	}
}
