package eco

import (
	"math"
	"strings"
	"testing"
)

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// Green Algorithms' worked example: 12 cores at 12 W and 64 GB at
// 0.3725 W/GB for 12 hours, PUE 1.67, 475 gCO2e/kWh.
func TestGreenAlgorithmsGoldenVector(t *testing.T) {
	u := Usage{CPUSeconds: 12 * 12 * 3600, WallSeconds: 12 * 3600, MemGB: 64}
	c := Constants{WattsPerCPU: 12, WattsPerGB: 0.3725, PUE: 1.67}
	e := Estimate(u, c)
	if w := round(e.Total/12, 2); w != 280.29 {
		t.Errorf("power %v W, want 280.29", w)
	}
	if kwh := round(e.Total/1000, 4); kwh != 3.3635 {
		t.Errorf("energy %v kWh, want 3.3635", kwh)
	}
	if g := round(GramsCO2e(e.Total, 475), 1); g != 1597.7 {
		t.Errorf("%v gCO2e, want 1597.7", g)
	}
	c.PUE = 1.56
	e = Estimate(u, c)
	if kwh, g := round(e.Total/1000, 4), round(GramsCO2e(e.Total, 475), 1); kwh != 3.1420 || g != 1492.4 {
		t.Errorf("with PUE 1.56: %v kWh, %v g; want 3.1420 kWh, 1492.4 g", kwh, g)
	}
}

// Cloud Carbon Footprint's compute example: one vCPU hour at 1 %
// utilisation between 0.71 and 3.46 W, PUE 1.135, replicated twice.
func TestCloudCarbonFootprintGoldenVector(t *testing.T) {
	kwh := CloudComputeWh(0.71, 3.46, 0.01, 1, 1.135, 2) / 1000
	if math.Abs(kwh-0.001674125) > 1e-15 {
		t.Errorf("%v kWh, want 0.001674125", kwh)
	}
}

// The Software Carbon Intensity specification's embodied example: 1000 kg
// over 4 years, 1 hour of the whole machine.
func TestSCIEmbodiedGoldenVector(t *testing.T) {
	if g := round(EmbodiedGrams(1000, 4*8760, 1, 1), 2); g != 28.54 {
		t.Errorf("%v g, want 28.54", g)
	}
}

func TestEstimateComponents(t *testing.T) {
	c := Defaults(Central, 0, true)
	u := Usage{
		CPUSeconds: 7200, WallSeconds: 3600, MemGB: 2,
		NetGB:          map[string]float64{ScopeSameHost: 100, ScopeInternet: 1},
		StorageTBHours: map[string]float64{MediaSSD: 10},
	}
	e := Estimate(u, c)
	want := Energy{CPU: 12, Memory: 0.745, Network: 59, Storage: 12}
	want.Total = (want.CPU + want.Memory + want.Network + want.Storage) * 1.56
	for name, got := range map[string][2]float64{
		"cpu": {e.CPU, want.CPU}, "memory": {e.Memory, want.Memory}, "network": {e.Network, want.Network},
		"storage": {e.Storage, want.Storage}, "total": {e.Total, want.Total},
	} {
		if math.Abs(got[0]-got[1]) > 1e-9 {
			t.Errorf("%s = %v Wh, want %v", name, got[0], got[1])
		}
	}
	// Loopback traffic is free: its energy is in the CPU seconds.
	if Estimate(Usage{NetGB: map[string]float64{ScopeSameHost: 1e6}}, c).Total != 0 {
		t.Error("same-host bytes cost energy")
	}
	if _, err := Grid("MARS"); err == nil {
		t.Error("unknown grid accepted")
	}
	if g, _ := Grid("FR"); g != 44.18 {
		t.Errorf("FR grid %v", g)
	}
	if PerMillion(2, 500_000) != 4 || PerMillion(1, 0) != 0 {
		t.Error("PerMillion")
	}
}

// The ranking of two workloads does not change between the low and the
// high constants.
func TestBoundsKeepTheRanking(t *testing.T) {
	heavyCPU := Usage{CPUSeconds: 100, WallSeconds: 60, MemGB: 0.2}
	heavyMem := Usage{CPUSeconds: 10, WallSeconds: 60, MemGB: 4}
	for _, b := range []Bound{Low, Central, High} {
		c := Defaults(b, 0, false)
		if Estimate(heavyCPU, c).Total <= Estimate(heavyMem, c).Total {
			t.Errorf("%s constants rank the memory-heavy workload first", b)
		}
	}
	lo, hi := Defaults(Low, 0, true), Defaults(High, 0, true)
	if Estimate(heavyCPU, lo).Total >= Estimate(heavyCPU, hi).Total {
		t.Error("low constants estimate more than high ones")
	}
}

// The sign of an A/B delta per stage does not change between the low and
// the high constants.
func TestBoundsKeepTheSignOfAB(t *testing.T) {
	a := []StageTotals{{Stage: "cleaner", CPUSeconds: 10, MemGBSeconds: 100, RecordsIn: 1000}, {Stage: "loader", CPUSeconds: 30, MemGBSeconds: 50, RecordsIn: 1000}}
	b := []StageTotals{{Stage: "cleaner", CPUSeconds: 14, MemGBSeconds: 90, RecordsIn: 1000}, {Stage: "loader", CPUSeconds: 20, MemGBSeconds: 80, RecordsIn: 1000}}
	for _, dc := range []bool{false, true} {
		signs := map[string][]bool{}
		for _, bound := range []Bound{Low, High} {
			c := map[Bound]Constants{Low: Defaults(bound, 0, dc), Central: Defaults(bound, 0, dc), High: Defaults(bound, 0, dc)}
			ra, err := NewReport("a", "WORLD", a, c)
			if err != nil {
				t.Fatal(err)
			}
			rb, _ := NewReport("b", "WORLD", b, c)
			for i := range ra.Stages {
				signs[ra.Stages[i].Stage] = append(signs[ra.Stages[i].Stage], rb.Stages[i].Wh.Central > ra.Stages[i].Wh.Central)
			}
		}
		for stage, s := range signs {
			if s[0] != s[1] {
				t.Errorf("stage %s: the A/B delta changes sign between the low and high constants (data centre %v)", stage, dc)
			}
		}
	}
}

func TestScopeOf(t *testing.T) {
	for addrs, want := range map[string]string{
		"127.0.0.1:9092":              ScopeSameHost,
		"localhost:9092,[::1]:9092":   ScopeSameHost,
		"127.0.0.1:9092,kafka-1:9092": ScopeSameSite,
		"10.0.0.7:9092":               ScopeSameSite,
	} {
		if got := ScopeOf(strings.Split(addrs, ",")); got != want {
			t.Errorf("ScopeOf(%s) = %s, want %s", addrs, got, want)
		}
	}
}
