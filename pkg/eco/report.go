package eco

import (
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// StageTotals is what one stage of a run used, summed over its samples.
type StageTotals struct {
	Stage       string  `json:"stage"`
	Samples     int64   `json:"samples"`
	CPUSeconds  float64 `json:"cpu_s"`
	WallSeconds float64 `json:"wall_s"`
	// MemGBSeconds is Σ wall seconds × GB reserved.
	MemGBSeconds  float64            `json:"mem_gb_s"`
	StoredTBHours map[string]float64 `json:"stored_tb_h"` // by media
	NetGB         map[string]float64 `json:"net_gb"`      // moved, by scope
	RecordsIn     int64              `json:"records_in"`
	RecordsOut    int64              `json:"records_out"`
	Dead          int64              `json:"records_dead_lettered"`
	Dups          int64              `json:"records_duplicates"`
	Iterations    int64              `json:"training_iterations,omitempty"`
	First         time.Time          `json:"first_at"`
	Last          time.Time          `json:"last_at"`
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
		net_same_host_gb, net_same_site_gb, net_cross_region_gb, net_internet_gb, training_iterations
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
		&host, &site, &region, &internet, &s.Iterations,
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
	Stage           string  `json:"stage"`
	CPUSeconds      float64 `json:"cpu_s"`
	Records         int64   `json:"records"`
	Wh              Figure  `json:"wh"`
	GramsCO2e       Figure  `json:"gco2e"`
	GramsPerMillion Figure  `json:"gco2e_per_million_records"`
	Share           float64 `json:"share_of_total"`
	// Iterations are the training iterations of the stage, if it trains.
	Iterations        int64  `json:"training_iterations,omitempty"`
	EnergyByComponent Energy `json:"wh_by_component"` // central constants
}

// Report is a run's estimate on one grid.
type Report struct {
	Run       string        `json:"run"`
	Grid      string        `json:"grid"`
	Intensity float64       `json:"grid_gco2e_per_kwh"`
	Stages    []StageReport `json:"stages"`
	// The central estimates, then each with its bounds.
	Wh         float64            `json:"total_wh"`
	GramsCO2e  float64            `json:"total_gco2e"`
	PerMillion float64            `json:"gco2e_per_million_records"`
	TotalWh    Figure             `json:"total_wh_range"`
	TotalCO2e  Figure             `json:"total_gco2e_range"`
	PerMil     Figure             `json:"gco2e_per_million_records_range"`
	Records    int64              `json:"records"`
	OnGrids    map[string]float64 `json:"total_gco2e_by_grid"`
	// RankingHolds says whether the stages rank the same by energy with
	// the low and the high constants; Swaps are the pairs that do not.
	RankingHolds bool                `json:"ranking_holds_between_bounds"`
	Swaps        []Swap              `json:"ranking_swaps_between_bounds,omitempty"`
	Constants    map[Bound]Constants `json:"constants"`
	Sources      []string            `json:"sources"`
	Caveat       string              `json:"uncertainty"`
	// Totals are the measurements estimated, so that a saved report can
	// be estimated again with other constants or another grid.
	Totals []StageTotals `json:"totals,omitempty"`
}

// NewReport estimates a run's totals with the constants of each bound.
// Records of the run are those of its first stage in the pipeline (the
// records that entered it): the largest count of any stage.
func NewReport(run, grid string, totals []StageTotals, constants map[Bound]Constants) (*Report, error) {
	intensity, err := Grid(grid)
	if err != nil {
		return nil, err
	}
	r := &Report{Run: run, Grid: grid, Intensity: intensity, OnGrids: map[string]float64{}, Constants: constants, Sources: Sources, Caveat: Uncertainty, Totals: totals}
	for _, t := range totals {
		r.Records = max(r.Records, t.Records())
	}
	for _, t := range totals {
		s := StageReport{Stage: t.Stage, CPUSeconds: t.CPUSeconds, Records: t.Records(), Iterations: t.Iterations}
		for b, f := range map[Bound]*float64{Low: &s.Wh.Low, Central: &s.Wh.Central, High: &s.Wh.High} {
			*f = Estimate(t.Usage(), constants[b]).Total
		}
		s.EnergyByComponent = Estimate(t.Usage(), constants[Central])
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
	r.Swaps = Swaps(r.Stages)
	r.RankingHolds = len(r.Swaps) == 0
	return r, nil
}

// Swap is two stages that rank in one order by energy with the low
// constants and in the other with the high ones: CPU and memory do not
// scale alike between the bounds (×3.4 and ×4.9), so stages close in
// energy whose shares of CPU and memory differ can trade places.
type Swap struct {
	// Stages are the two, the first ranking higher with the low constants.
	Stages [2]string `json:"stages"`
	// Gap is how far apart their central energies are, as a share of the
	// larger one.
	Gap float64 `json:"central_gap"`
}

// Swaps are the pairs of stages whose order by energy differs between
// the low and the high constants.
func Swaps(stages []StageReport) []Swap {
	var out []Swap
	for i, a := range stages {
		for _, b := range stages[i+1:] {
			if cmp.Compare(a.Wh.Low, b.Wh.Low) == cmp.Compare(a.Wh.High, b.Wh.High) {
				continue
			}
			if a.Wh.Low < b.Wh.Low {
				a, b = b, a
			}
			gap := 0.0
			if top := max(a.Wh.Central, b.Wh.Central); top > 0 {
				gap = math.Abs(a.Wh.Central-b.Wh.Central) / top
			}
			out = append(out, Swap{Stages: [2]string{a.Stage, b.Stage}, Gap: gap})
		}
	}
	return out
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
// --json` ({"report": …}) or of `datamill demo --json` ({"eco": …}). When
// it holds its totals, it is estimated again on grid with constants;
// otherwise it is returned as saved.
func LoadReport(path, grid string, constants map[Bound]Constants) (*Report, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- a report path the operator gives
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
	if r == nil || len(r.Stages) == 0 && len(r.Totals) == 0 {
		return nil, fmt.Errorf("%s holds no eco report (want the JSON of datamill eco report --json or datamill demo --json)", path)
	}
	if len(r.Totals) > 0 {
		return NewReport(r.Run, grid, r.Totals, constants)
	}
	return r, nil
}

// Print writes the report as a table. Small runs are in milli or micro
// units, chosen from the total, so that their figures keep their digits.
func (r *Report) Print(w io.Writer) {
	wh, g, pm := unitFor(r.TotalWh.Central), unitFor(r.TotalCO2e.Central), unitFor(r.PerMil.Central)
	fmt.Fprintf(w, "eco report — run %s, %d records, %s grid (%.2f gCO2e/kWh)\n\n", r.Run, r.Records, r.Grid, r.Intensity)
	fmt.Fprintf(w, "  %-10s %9s %12s %12s %16s %7s\n", "stage", "CPU s", wh.prefix+"Wh", g.prefix+"gCO2e", pm.prefix+"gCO2e per 1M", "share")
	for _, s := range r.Stages {
		fmt.Fprintf(w, "  %-10s %9.3f %12.3f %12.3f %16.3f %6.1f%%\n", s.Stage, s.CPUSeconds, s.Wh.Central*wh.factor, s.GramsCO2e.Central*g.factor,
			s.GramsPerMillion.Central*pm.factor, 100*s.Share)
	}
	fmt.Fprintf(w, "  %-10s %9s %12.3f %12.3f %16.3f\n", "total", "", r.TotalWh.Central*wh.factor, r.TotalCO2e.Central*g.factor, r.PerMil.Central*pm.factor)
	for _, s := range r.Stages {
		if s.Iterations > 0 {
			n := float64(s.Iterations)
			fmt.Fprintf(w, "  %s: %d iterations, %.4f CPU s and %s each\n", s.Stage, s.Iterations, s.CPUSeconds/n, amount(s.Wh.Central/n, "Wh"))
		}
	}
	fmt.Fprintf(w, "\n  low … high: %s … %s, %s … %s\n", amount(r.TotalWh.Low, "Wh"), amount(r.TotalWh.High, "Wh"), amount(r.TotalCO2e.Low, "gCO2e"), amount(r.TotalCO2e.High, "gCO2e"))
	if r.RankingHolds {
		fmt.Fprintf(w, "  the stages rank the same by energy with the low and the high constants\n")
	} else {
		swaps := make([]string, len(r.Swaps))
		for i, s := range r.Swaps {
			swaps[i] = fmt.Sprintf("%s and %s (%.0f %% apart)", s.Stages[0], s.Stages[1], 100*s.Gap)
		}
		fmt.Fprintf(w, "  the stages rank the same by energy with the low and the high constants, but for %s, which trade places: their order is uncertain\n",
			strings.Join(swaps, ", "))
	}
	grids := []string{"FR", "DE", "US", "WORLD"}
	for i, grid := range grids {
		grids[i] = grid + " " + amount(r.OnGrids[grid], "gCO2e")
	}
	fmt.Fprintf(w, "  the same energy on other grids: %s\n", strings.Join(grids, ", "))
	c := r.Constants[Central]
	fmt.Fprintf(w, "\n  method: E = (CPU s × %.2f W + wall s × GB reserved × %.4f W/GB + network + storage) × PUE %.2f; CO2e = E × grid intensity\n", c.WattsPerCPU, c.WattsPerGB, c.PUE)
	for _, b := range []Bound{Low, High} {
		c := r.Constants[b]
		fmt.Fprintf(w, "  %s bound: %.2f W per CPU, %.4f W/GB, internet %.4f kWh/GB, PUE %.2f\n", b, c.WattsPerCPU, c.WattsPerGB, c.KWhPerGB[ScopeInternet], c.PUE)
	}
	for _, s := range r.Sources {
		fmt.Fprintf(w, "  - %s\n", s)
	}
	fmt.Fprintf(w, "  %s\n", r.Caveat)
}

// Compare writes an A/B comparison of r against a reference run.
func (r *Report) Compare(w io.Writer, ref *Report) {
	wh, pm := unitFor(max(r.TotalWh.Central, ref.TotalWh.Central)), unitFor(max(r.PerMil.Central, ref.PerMil.Central))
	fmt.Fprintf(w, "A/B: A = run %s (%d records) against B = run %s (%d records), with the same constants: their uncertainty largely cancels\n",
		r.Run, r.Records, ref.Run, ref.Records)
	fmt.Fprintf(w, "  %-10s %12s %12s %9s %16s %16s  %s\n", "stage", wh.prefix+"Wh A", wh.prefix+"Wh B", "change", pm.prefix+"gCO2e/1M A", pm.prefix+"gCO2e/1M B", "low/high")
	byStage := map[string]StageReport{}
	for _, s := range ref.Stages {
		byStage[s.Stage] = s
	}
	for _, s := range r.Stages {
		b := byStage[s.Stage]
		fmt.Fprintf(w, "  %-10s %12.3f %12.3f %9s %16.3f %16.3f  %s\n", s.Stage, s.Wh.Central*wh.factor, b.Wh.Central*wh.factor, change(s.Wh.Central, b.Wh.Central),
			s.GramsPerMillion.Central*pm.factor, b.GramsPerMillion.Central*pm.factor, sameSign(s.Wh, b.Wh))
	}
	fmt.Fprintf(w, "  %-10s %12.3f %12.3f %9s %16.3f %16.3f  %s\n", "total", r.TotalWh.Central*wh.factor, ref.TotalWh.Central*wh.factor, change(r.TotalWh.Central, ref.TotalWh.Central),
		r.PerMil.Central*pm.factor, ref.PerMil.Central*pm.factor, sameSign(r.TotalWh, ref.TotalWh))
	fmt.Fprintf(w, "  change: A against B; low/high: whether it has the same sign with the low and the high constants\n\n")
}

// unit is a metric prefix and what a figure is multiplied by in it.
type unit struct {
	prefix string
	factor float64
}

// unitFor is the unit of figures up to about v: none from 1, milli from
// 0.001, micro below.
func unitFor(v float64) unit {
	switch v = math.Abs(v); {
	case v >= 1 || v == 0:
		return unit{"", 1}
	case v >= 1e-3:
		return unit{"m", 1e3}
	default:
		return unit{"µ", 1e6}
	}
}

// amount is v of symbol in its unit, with three significant digits or
// more.
func amount(v float64, symbol string) string {
	u := unitFor(v)
	x, decimals := v*u.factor, 0
	if x != 0 {
		decimals = max(0, 2-int(math.Floor(math.Log10(math.Abs(x)))))
	}
	return fmt.Sprintf("%.*f %s%s", decimals, x, u.prefix, symbol)
}

// sameSign says whether a − b has the same sign with the low and the high
// constants.
func sameSign(a, b Figure) string {
	if cmp.Compare(a.Low, b.Low) == cmp.Compare(a.High, b.High) {
		return "same sign"
	}
	return "sign differs"
}

func change(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%+.1f%%", 100*(a-b)/b)
}

// WriteEmissionsCSV writes the run as CodeCarbon's emissions.csv (one row
// per stage, process tracking): kg, kWh and W.
func (r *Report) WriteEmissionsCSV(w io.Writer) error {
	if len(r.Totals) == 0 {
		return errors.New("emissions.csv: the report holds no totals (saved by an older datamill)")
	}
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{
		"timestamp", "project_name", "run_id", "duration", "emissions", "emissions_rate", "cpu_power", "gpu_power", "ram_power",
		"cpu_energy", "gpu_energy", "ram_energy", "energy_consumed", "country_iso_code", "tracking_mode", "pue",
	})
	byStage := map[string]StageTotals{}
	for _, t := range r.Totals {
		byStage[t.Stage] = t
	}
	c := r.Constants[Central]
	for _, s := range r.Stages {
		t := byStage[s.Stage]
		duration := t.Last.Sub(t.First).Seconds()
		kg := s.GramsCO2e.Central / 1000
		e := s.EnergyByComponent
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
