package report

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datamill/datamill/pkg/eco"
)

// ecoGrid is the grid the report prices CO2e on, as `datamill eco report`
// does by default.
const ecoGrid = "WORLD"

// maxRuns is how many of the latest runs the per-run chart shows.
const maxRuns = 20

// Pipeline is the section of the pipeline and its footprint, from the
// ecometer's tables: the records each stage of the latest run read, wrote,
// dead-lettered and dropped as duplicates; its Wh, gCO2e and gCO2e per
// million records per stage, with the low–high band in the tables; and
// the gCO2e of each of the latest runs. Dead letters by reason and lag are
// in no table: a note says where to look. Without the ecometer's tables
// the section is notes alone, never an error.
func Pipeline(ctx context.Context, db *pgx.Conn) (Section, error) {
	s := Section{ID: "pipeline", Title: "Pipeline and its footprint"}
	s.Notes = append(s.Notes,
		"Dead letters by reason are kept on each dataset's dead-letter topic, not in a table: `datamill tail dlq --dataset DS` prints them with their stage, reasons and origin. Consumer lag is a metric of each service (/metrics, and Grafana's pipeline dashboard under compose).")
	ok, err := tableExists(ctx, db, "eco_stage_totals")
	if err != nil {
		return s, err
	}
	if !ok {
		s.Notes = append(s.Notes, "No eco_stage_totals table in this database: the ecometer did not run here, so there are no records per stage nor energy figures (datamill demo runs it).")
		return s, nil
	}
	runs, err := latestRuns(ctx, db)
	if err != nil {
		return s, err
	}
	if len(runs) == 0 {
		s.Notes = append(s.Notes, "The ecometer's tables are empty: no run has published eco samples yet.")
		return s, nil
	}
	constants := map[eco.Bound]eco.Constants{}
	for _, b := range []eco.Bound{eco.Low, eco.Central, eco.High} {
		constants[b] = eco.Defaults(b, 0, false)
	}
	reports := make([]*eco.Report, len(runs))
	for i, run := range runs {
		totals, err := eco.LoadRun(ctx, db, run)
		if err != nil {
			return s, err
		}
		if reports[i], err = eco.NewReport(run, ecoGrid, totals, constants); err != nil {
			return s, err
		}
	}
	latest := reports[len(reports)-1]
	s.Charts = append(s.Charts, recordsPerStage(latest))
	s.Charts = append(s.Charts, perStage(latest, "eco-wh-stage", "Energy per stage", "Wh", func(r eco.StageReport) eco.Figure { return r.Wh }),
		perStage(latest, "eco-co2e-stage", "Emissions per stage", "gCO2e", func(r eco.StageReport) eco.Figure { return r.GramsCO2e }),
		perStage(latest, "eco-co2e-million", "Emissions per million records, by stage", "gCO2e per million records",
			func(r eco.StageReport) eco.Figure { return r.GramsPerMillion }))
	s.Charts = append(s.Charts, perRun(reports))
	s.Tables = append(s.Tables, stageTable(latest), runTable(reports))
	s.Notes = append(s.Notes,
		fmt.Sprintf("Energy and emissions of run %s (the latest) on the %s grid (%s gCO2e/kWh), with the constants of a developer machine (PUE 1, 6 W per busy CPU centrally, 3.5–12 W for the band); the bars are the central estimates, the tables give the low–high band. %s",
			latest.Run, ecoGrid, strconv.FormatFloat(latest.Intensity, 'f', -1, 64), latest.Caveat),
		"Sources of the constants: "+strings.Join(latest.Sources, "; ")+".")
	return s, nil
}

// latestRuns are the runs of the ecometer's tables, the latest maxRuns,
// oldest first.
func latestRuns(ctx context.Context, db *pgx.Conn) ([]string, error) {
	rows, err := db.Query(ctx, `select run_id from (
		select run_id, max(last_at) as last_at from eco_stage_totals group by run_id order by last_at desc, run_id limit $1
	) r order by last_at, run_id`, maxRuns)
	if err != nil {
		return nil, fmt.Errorf("list the eco runs: %w", err)
	}
	runs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list the eco runs: %w", err)
	}
	return runs, nil
}

// recordsPerStage is what each stage of a run read, wrote, dead-lettered
// and dropped as duplicates, a series each.
func recordsPerStage(r *eco.Report) Chart {
	series := []Series{{Name: "in"}, {Name: "out"}, {Name: "dead-lettered"}, {Name: "duplicates"}}
	for _, st := range stageTotals(r) {
		for i, n := range []int64{st.RecordsIn, st.RecordsOut, st.Dead, st.Dups} {
			series[i].Points = append(series[i].Points, Point{Label: st.Stage, Y: float64(n)})
		}
	}
	return Chart{
		ID: "pipeline-records", Title: "Records per stage (run " + r.Run + ")", XLabel: "stage", YLabel: "records",
		Unit: "records", Kind: Bar, Series: series,
	}
}

// stageTotals are the measurements of a report's stages, in its stages'
// (pipeline) order.
func stageTotals(r *eco.Report) []eco.StageTotals {
	out := make([]eco.StageTotals, 0, len(r.Stages))
	for _, st := range r.Stages {
		for _, t := range r.Totals {
			if t.Stage == st.Stage {
				out = append(out, t)
			}
		}
	}
	return out
}

// perStage is a bar per stage of a run: the central estimate of figure.
func perStage(r *eco.Report, id, title, unit string, figure func(eco.StageReport) eco.Figure) Chart {
	series := Series{Name: "central estimate"}
	for _, st := range r.Stages {
		series.Points = append(series.Points, Point{Label: st.Stage, Y: figure(st).Central})
	}
	return Chart{ID: id, Title: title + " (run " + r.Run + ")", XLabel: "stage", YLabel: unit, Unit: unit, Kind: Bar, Series: []Series{series}}
}

// perRun is a bar per run: its total gCO2e, central.
func perRun(reports []*eco.Report) Chart {
	series := Series{Name: "central estimate"}
	for _, r := range reports {
		series.Points = append(series.Points, Point{Label: r.Run, Y: r.TotalCO2e.Central})
	}
	return Chart{ID: "eco-co2e-run", Title: "Emissions per run", XLabel: "run", YLabel: "gCO2e", Unit: "gCO2e", Kind: Bar, Series: []Series{series}}
}

// stageTable is a run's stages with their counts and their estimates'
// bands.
func stageTable(r *eco.Report) Table {
	t := Table{
		ID: "pipeline-stages", Title: "Stages of run " + r.Run,
		Columns: []string{"stage", "records in", "records out", "dead-lettered", "duplicates", "CPU s", "Wh (low–high)", "gCO2e (low–high)", "gCO2e per million records (low–high)", "share of energy"},
	}
	totals := stageTotals(r)
	for i, st := range r.Stages {
		tt := totals[i]
		t.Rows = append(t.Rows, []string{
			st.Stage, itoa(tt.RecordsIn), itoa(tt.RecordsOut), itoa(tt.Dead), itoa(tt.Dups),
			sig(st.CPUSeconds), band(st.Wh), band(st.GramsCO2e), band(st.GramsPerMillion), percent(st.Share),
		})
	}
	t.Rows = append(t.Rows, []string{"total", "", "", "", "", "", band(r.TotalWh), band(r.TotalCO2e), band(r.PerMil), percent(1)})
	return t
}

// runTable is each run's totals with their bands.
func runTable(reports []*eco.Report) Table {
	t := Table{ID: "eco-runs", Title: "Runs", Columns: []string{"run", "from", "to", "records", "Wh (low–high)", "gCO2e (low–high)", "gCO2e per million records (low–high)"}}
	for _, r := range reports {
		var first, last time.Time
		for _, tt := range r.Totals {
			if first.IsZero() || tt.First.Before(first) {
				first = tt.First
			}
			if tt.Last.After(last) {
				last = tt.Last
			}
		}
		t.Rows = append(t.Rows, []string{
			r.Run, first.UTC().Format(time.RFC3339), last.UTC().Format(time.RFC3339), itoa(r.Records),
			band(r.TotalWh), band(r.TotalCO2e), band(r.PerMil),
		})
	}
	return t
}

// band writes a figure as "central (low–high)".
func band(f eco.Figure) string {
	return sig(f.Central) + " (" + sig(f.Low) + "–" + sig(f.High) + ")"
}

// sig writes v with 3 significant digits.
func sig(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) }
