package eco

import (
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// StageTotals is what one stage of a run used, summed over its samples.
type StageTotals struct {
	Stage                   string
	Samples                 int64
	CPUSeconds, WallSeconds float64
	// MemGBSeconds is Σ wall seconds × GB reserved.
	MemGBSeconds                      float64
	StoredTBHours                     map[string]float64 // by media
	NetGB                             map[string]float64 // moved, by scope
	RecordsIn, RecordsOut, Dead, Dups int64
	First, Last                       time.Time
}

// Usage is the totals as the model reads them.
func (s StageTotals) Usage() Usage {
	return Usage{CPUSeconds: s.CPUSeconds, WallSeconds: s.MemGBSeconds, MemGB: 1, NetGB: s.NetGB, StorageTBHours: s.StoredTBHours}
}

// Records is what the stage handled: the larger of its inputs and outputs
// (a source has only outputs).
func (s StageTotals) Records() int64 { return max(s.RecordsIn, s.RecordsOut) }

// LoadRun reads the stage totals of a run from the ecometer's tables.
func LoadRun(ctx context.Context, conn *pgx.Conn, run string) ([]StageTotals, error) {
	rows, err := conn.Query(ctx, `select stage, samples, cpu_s, wall_s, mem_gb_s, records_in, records_out,
		records_dead_lettered, records_duplicates, first_at, last_at, stored_ssd_tb_h, stored_hdd_tb_h,
		net_same_host_gb, net_same_site_gb, net_cross_region_gb, net_internet_gb
		from eco_stage_totals where run_id = $1 order by stage`, run)
	if err != nil {
		return nil, fmt.Errorf("read the eco totals of run %q: %w", run, err)
	}
	var out []StageTotals
	var s StageTotals
	var ssd, hdd, host, site, region, internet float64
	_, err = pgx.ForEachRow(rows, []any{
		&s.Stage, &s.Samples, &s.CPUSeconds, &s.WallSeconds, &s.MemGBSeconds,
		&s.RecordsIn, &s.RecordsOut, &s.Dead, &s.Dups, &s.First, &s.Last, &ssd, &hdd,
		&host, &site, &region, &internet,
	}, func() error {
		s.StoredTBHours = map[string]float64{MediaSSD: ssd, MediaHDD: hdd}
		s.NetGB = map[string]float64{ScopeSameHost: host, ScopeSameSite: site, ScopeCrossRegion: region, ScopeInternet: internet}
		out = append(out, s)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the eco totals of run %q: %w", run, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no eco samples for run %q", run)
	}
	return out, nil
}

// LatestRun is the run whose samples came last.
func LatestRun(ctx context.Context, conn *pgx.Conn) (string, error) {
	var run string
	err := conn.QueryRow(ctx, `select run_id from eco_stage_totals order by last_at desc limit 1`).Scan(&run)
	if err != nil {
		return "", fmt.Errorf("no eco samples yet: %w", err)
	}
	return run, nil
}

// Figure is one estimate with its bounds.
type Figure struct {
	Low     float64 `json:"low"`
	Central float64 `json:"central"`
	High    float64 `json:"high"`
}

// StageReport is one stage's estimate.
type StageReport struct {
	Stage              string  `json:"stage"`
	CPUSeconds         float64 `json:"cpu_s"`
	Records            int64   `json:"records"`
	Wh                 Figure  `json:"wh"`
	GramsCO2e          Figure  `json:"gco2e"`
	GramsPerMillion    Figure  `json:"gco2e_per_million_records"`
	Share              float64 `json:"share_of_total"`
	EnergyByComponentJ Energy  `json:"-"`
}

// Report is a run's estimate on one grid.
type Report struct {
	Run       string        `json:"run"`
	Grid      string        `json:"grid"`
	Intensity float64       `json:"grid_gco2e_per_kwh"`
	Stages    []StageReport `json:"stages"`
	// The central estimates, then each with its bounds.
	Wh         float64             `json:"total_wh"`
	GramsCO2e  float64             `json:"total_gco2e"`
	PerMillion float64             `json:"gco2e_per_million_records"`
	TotalWh    Figure              `json:"total_wh_range"`
	TotalCO2e  Figure              `json:"total_gco2e_range"`
	PerMil     Figure              `json:"gco2e_per_million_records_range"`
	Records    int64               `json:"records"`
	OnGrids    map[string]float64  `json:"total_gco2e_by_grid"`
	Constants  map[Bound]Constants `json:"-"`
	Sources    []string            `json:"sources"`
	Caveat     string              `json:"uncertainty"`
}

// NewReport estimates a run's totals with the constants of each bound.
// Records of the run are those of its first stage in the pipeline (the
// records that entered it): the largest count of any stage.
func NewReport(run, grid string, totals []StageTotals, constants map[Bound]Constants) (*Report, error) {
	intensity, err := Grid(grid)
	if err != nil {
		return nil, err
	}
	r := &Report{Run: run, Grid: grid, Intensity: intensity, OnGrids: map[string]float64{}, Constants: constants, Sources: Sources, Caveat: Uncertainty}
	for _, t := range totals {
		r.Records = max(r.Records, t.Records())
	}
	for _, t := range totals {
		s := StageReport{Stage: t.Stage, CPUSeconds: t.CPUSeconds, Records: t.Records()}
		for b, f := range map[Bound]*float64{Low: &s.Wh.Low, Central: &s.Wh.Central, High: &s.Wh.High} {
			*f = Estimate(t.Usage(), constants[b]).Total
		}
		s.EnergyByComponentJ = Estimate(t.Usage(), constants[Central])
		s.GramsCO2e = Figure{GramsCO2e(s.Wh.Low, intensity), GramsCO2e(s.Wh.Central, intensity), GramsCO2e(s.Wh.High, intensity)}
		s.GramsPerMillion = Figure{PerMillion(s.GramsCO2e.Low, s.Records), PerMillion(s.GramsCO2e.Central, s.Records), PerMillion(s.GramsCO2e.High, s.Records)}
		r.TotalWh = Figure{r.TotalWh.Low + s.Wh.Low, r.TotalWh.Central + s.Wh.Central, r.TotalWh.High + s.Wh.High}
		r.Stages = append(r.Stages, s)
	}
	for i := range r.Stages {
		if r.TotalWh.Central > 0 {
			r.Stages[i].Share = r.Stages[i].Wh.Central / r.TotalWh.Central
		}
	}
	slices.SortFunc(r.Stages, func(a, b StageReport) int { return stageOrder(a.Stage) - stageOrder(b.Stage) })
	r.TotalCO2e = Figure{GramsCO2e(r.TotalWh.Low, intensity), GramsCO2e(r.TotalWh.Central, intensity), GramsCO2e(r.TotalWh.High, intensity)}
	r.PerMil = Figure{PerMillion(r.TotalCO2e.Low, r.Records), PerMillion(r.TotalCO2e.Central, r.Records), PerMillion(r.TotalCO2e.High, r.Records)}
	for name, g := range Grids {
		r.OnGrids[name] = GramsCO2e(r.TotalWh.Central, g)
	}
	r.Wh, r.GramsCO2e, r.PerMillion = r.TotalWh.Central, r.TotalCO2e.Central, r.PerMil.Central
	return r, nil
}

// stageOrder sorts stages in pipeline order.
func stageOrder(stage string) int {
	order := []string{"extractor", "cleaner", "loader", "scorer", "train", "ecometer"}
	if i := slices.Index(order, stage); i >= 0 {
		return i
	}
	return len(order)
}

// LoadReport reads a saved report: the JSON of `datamill eco report
// --json` ({"report": …}) or of `datamill demo --json` ({"eco": …}).
func LoadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var saved struct {
		Report *Report `json:"report"`
		Eco    *Report `json:"eco"`
	}
	if err := json.Unmarshal(b, &saved); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r := cmp.Or(saved.Report, saved.Eco)
	if r == nil || len(r.Stages) == 0 {
		return nil, fmt.Errorf("%s holds no eco report (want the JSON of datamill eco report --json or datamill demo --json)", path)
	}
	return r, nil
}

// Print writes the report as a table.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "eco report — run %s, %d records, %s grid (%.2f gCO2e/kWh)\n\n", r.Run, r.Records, r.Grid, r.Intensity)
	fmt.Fprintf(w, "  %-10s %9s %12s %12s %14s %7s\n", "stage", "CPU s", "Wh", "gCO2e", "gCO2e per 1M", "share")
	for _, s := range r.Stages {
		fmt.Fprintf(w, "  %-10s %9.2f %12.4f %12.4f %14.3f %6.1f%%\n", s.Stage, s.CPUSeconds, s.Wh.Central, s.GramsCO2e.Central, s.GramsPerMillion.Central, 100*s.Share)
	}
	fmt.Fprintf(w, "  %-10s %9s %12.4f %12.4f %14.3f\n", "total", "", r.TotalWh.Central, r.TotalCO2e.Central, r.PerMil.Central)
	fmt.Fprintf(w, "\n  low … high: %.4f … %.4f Wh, %.4f … %.4f gCO2e\n", r.TotalWh.Low, r.TotalWh.High, r.TotalCO2e.Low, r.TotalCO2e.High)
	fmt.Fprintf(w, "  the same energy on other grids:")
	for _, g := range []string{"FR", "DE", "US", "WORLD"} {
		fmt.Fprintf(w, " %s %.4f g", g, r.OnGrids[g])
	}
	c := r.Constants[Central]
	fmt.Fprintf(w, "\n\n  method: E = (CPU s × %.2f W + wall s × GB reserved × %.4f W/GB + network + storage) × PUE %.2f; CO2e = E × grid intensity\n", c.WattsPerCPU, c.WattsPerGB, c.PUE)
	for _, s := range r.Sources {
		fmt.Fprintf(w, "  - %s\n", s)
	}
	fmt.Fprintf(w, "  %s\n", r.Caveat)
}

// Compare writes an A/B comparison of r against a reference run.
func (r *Report) Compare(w io.Writer, ref *Report) {
	fmt.Fprintf(w, "\nA/B: run %s against run %s (same constants: their uncertainty largely cancels)\n", r.Run, ref.Run)
	fmt.Fprintf(w, "  %-10s %14s %14s %9s %18s %18s\n", "stage", "Wh "+r.Run, "Wh "+ref.Run, "change", "gCO2e/1M "+r.Run, "gCO2e/1M "+ref.Run)
	byStage := map[string]StageReport{}
	for _, s := range ref.Stages {
		byStage[s.Stage] = s
	}
	for _, s := range r.Stages {
		b := byStage[s.Stage]
		fmt.Fprintf(w, "  %-10s %14.4f %14.4f %9s %18.3f %18.3f\n", s.Stage, s.Wh.Central, b.Wh.Central, change(s.Wh.Central, b.Wh.Central), s.GramsPerMillion.Central, b.GramsPerMillion.Central)
	}
	fmt.Fprintf(w, "  %-10s %14.4f %14.4f %9s %18.3f %18.3f\n", "total", r.TotalWh.Central, ref.TotalWh.Central, change(r.TotalWh.Central, ref.TotalWh.Central), r.PerMil.Central, ref.PerMil.Central)
}

func change(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%+.1f%%", 100*(a-b)/b)
}

// WriteEmissionsCSV writes the run as CodeCarbon's emissions.csv (one row
// per stage, process tracking): kg, kWh and W.
func (r *Report) WriteEmissionsCSV(w io.Writer, totals []StageTotals) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{
		"timestamp", "project_name", "run_id", "duration", "emissions", "emissions_rate", "cpu_power", "gpu_power", "ram_power",
		"cpu_energy", "gpu_energy", "ram_energy", "energy_consumed", "country_iso_code", "tracking_mode", "pue",
	})
	byStage := map[string]StageTotals{}
	for _, t := range totals {
		byStage[t.Stage] = t
	}
	c := r.Constants[Central]
	for _, s := range r.Stages {
		t := byStage[s.Stage]
		duration := t.Last.Sub(t.First).Seconds()
		kg := s.GramsCO2e.Central / 1000
		e := s.EnergyByComponentJ
		f := func(v float64) string { return strconv.FormatFloat(v, 'g', 10, 64) }
		rate, cpuW, ramW := 0.0, 0.0, 0.0
		if duration > 0 {
			rate, cpuW, ramW = kg/duration, e.CPU*3600/duration, e.Memory*3600/duration
		}
		_ = cw.Write([]string{
			t.Last.UTC().Format(time.RFC3339), "datamill/" + s.Stage, r.Run, f(duration), f(kg), f(rate), f(cpuW), "0", f(ramW),
			f(e.CPU * c.PUE / 1000), "0", f(e.Memory * c.PUE / 1000), f(s.Wh.Central / 1000), r.Grid, "process", f(c.PUE),
		})
	}
	cw.Flush()
	return cw.Error()
}
