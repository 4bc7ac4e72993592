package eco

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func bounds(dataCentre bool) map[Bound]Constants {
	c := map[Bound]Constants{}
	for _, b := range []Bound{Low, Central, High} {
		c[b] = Defaults(b, 0, dataCentre)
	}
	return c
}

// Sensitivity: the stages of real runs rank the same by energy with the
// low and the high constants, on a developer machine and in a data
// centre. The runs are what the ecometer measured in two `datamill demo`
// runs (--rows 8000 and the default 20000), saved with `datamill demo
// --json`. CPU and memory do not scale alike between the bounds (×3.4 and
// ×4.9), so two stages close in energy whose shares of CPU and memory
// differ can trade places; the report names them. Here the four stages
// that handle every record (extractor, cleaner, loader, scorer) must keep
// their order, and any pair that trades places must be within 10 % of
// each other; in the 20,000-user run no pair may.
func TestSensitivityOfRecordedRuns(t *testing.T) {
	pipeline := []string{"extractor", "cleaner", "loader", "scorer"}
	for _, tc := range []struct {
		file         string
		swapsAllowed bool
	}{
		{"demo-8000-users.json", true},
		{"demo-20000-users.json", false},
	} {
		for _, dc := range []bool{false, true} {
			r, err := LoadReport(filepath.Join("testdata", tc.file), "WORLD", bounds(dc))
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Stages) < 6 {
				t.Fatalf("%s: %d stages, want the pipeline's, train and ecometer", tc.file, len(r.Stages))
			}
			for _, s := range r.Swaps {
				t.Logf("%s (data centre %v): %s and %s trade places, %.1f %% apart", tc.file, dc, s.Stages[0], s.Stages[1], 100*s.Gap)
				if slices.Contains(pipeline, s.Stages[0]) && slices.Contains(pipeline, s.Stages[1]) {
					t.Errorf("%s: the pipeline's stages %s and %s rank differently with the low and the high constants", tc.file, s.Stages[0], s.Stages[1])
				}
				if s.Gap >= 0.10 {
					t.Errorf("%s: %s and %s, %.0f %% apart, trade places between the low and the high constants", tc.file, s.Stages[0], s.Stages[1], 100*s.Gap)
				}
			}
			if !tc.swapsAllowed && !r.RankingHolds {
				t.Errorf("%s (data centre %v): the ranking of the stages changes between the low and the high constants: %+v", tc.file, dc, r.Swaps)
			}
		}
	}
}

// Swaps finds stages that trade places: a CPU-bound stage and one that
// mostly holds memory, close in energy.
func TestSwapsNamesStagesThatTradePlaces(t *testing.T) {
	totals := []StageTotals{
		{Stage: "cleaner", CPUSeconds: 10, RecordsIn: 1000},                    // 35 Ws low, 120 Ws high
		{Stage: "scorer", CPUSeconds: 0.1, MemGBSeconds: 400, RecordsIn: 1000}, // 32.35 Ws low, 158 Ws high
		{Stage: "loader", CPUSeconds: 100, RecordsIn: 1000},
	}
	r, err := NewReport("r", "WORLD", totals, bounds(false))
	if err != nil {
		t.Fatal(err)
	}
	if r.RankingHolds || len(r.Swaps) != 1 || r.Swaps[0].Stages != [2]string{"cleaner", "scorer"} {
		t.Fatalf("swaps %+v, want cleaner and scorer only", r.Swaps)
	}
	// Central: 60 Ws against 0.6 + 149 Ws.
	if want := (149.6 - 60) / 149.6; math.Abs(r.Swaps[0].Gap-want) > 1e-9 {
		t.Errorf("gap %v, want %v", r.Swaps[0].Gap, want)
	}
	var out strings.Builder
	r.Print(&out)
	if !strings.Contains(out.String(), "but for cleaner and scorer (60 % apart), which trade places") {
		t.Errorf("the report does not name the stages that trade places:\n%s", out.String())
	}
}

// A saved report holds its totals, so it is estimated again with the
// grid and the constants asked for; small runs print in milli units.
func TestSavedReportIsEstimatedAgain(t *testing.T) {
	path := filepath.Join("testdata", "demo-20000-users.json")
	world, err := LoadReport(path, "WORLD", bounds(false))
	if err != nil {
		t.Fatal(err)
	}
	fr, err := LoadReport(path, "FR", bounds(true))
	if err != nil {
		t.Fatal(err)
	}
	if fr.Grid != "FR" || math.Abs(fr.Wh-1.56*world.Wh) > 1e-12 || math.Abs(fr.GramsCO2e-fr.Wh/1000*44.18) > 1e-12 {
		t.Errorf("FR in a data centre: %v Wh, %v g; WORLD on a developer machine: %v Wh", fr.Wh, fr.GramsCO2e, world.Wh)
	}
	var out strings.Builder
	world.Print(&out)
	for _, want := range []string{"low bound: 3.50 W per CPU, 0.0800 W/GB, internet 0.0065 kWh/GB, PUE 1.00", "high bound: 12.00 W per CPU, 0.3920 W/GB"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(out.String(), "mWh") || !strings.Contains(out.String(), "mgCO2e") {
		t.Errorf("a run of %v Wh is not printed in milli units:\n%s", world.Wh, out.String())
	}
}

func TestUnits(t *testing.T) {
	for v, want := range map[float64]string{0: "0 Wh", 2.5: "2.50 Wh", 1234: "1234 Wh", 0.0123: "12.3 mWh", 0.000061: "61.0 µWh"} {
		if got := amount(v, "Wh"); got != want {
			t.Errorf("amount(%v) = %q, want %q", v, got, want)
		}
	}
}
