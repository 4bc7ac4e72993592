// Package eco estimates the energy and CO2e of what a process used: CPU
// seconds, memory reserved over wall time, bytes moved by network scope and
// bytes stored by media, with the Green Algorithms model and Cloud Carbon
// Footprint coefficients (the README's "How the eco meter estimates
// energy" lists them with their sources). No energy counter is readable on
// the machines datamill runs on, so these are estimates: every figure comes
// as low, central and high, and absolute values carry about ±40 %
// uncertainty; comparisons between runs on the same machine profile are
// far more reliable, since the constants cancel.
//
// It also samples the process itself (Sampler, which every service runs
// through package service): CPU time from getrusage, memory and vCPUs
// reserved from the process's cgroup v2 or, without limits, its peak
// resident set and GOMAXPROCS, and the record and byte counts from the
// process's own Prometheus counters. Report and LoadRun turn what the
// ecometer stored into the report of a run.
package eco

import "fmt"

// Usage is what was used over a window; quantities are deltas.
type Usage struct {
	CPUSeconds  float64
	WallSeconds float64
	MemGB       float64 // reserved over the window
	// NetGB are the gigabytes moved, by scope (ScopeSameHost, …).
	NetGB map[string]float64
	// StorageTBHours are terabyte-hours stored, by media (MediaSSD, …).
	StorageTBHours map[string]float64
}

// Network scopes and storage media.
const (
	ScopeSameHost    = "same_host"
	ScopeSameSite    = "same_site"
	ScopeCrossRegion = "cross_region"
	ScopeInternet    = "internet"
	MediaSSD         = "ssd"
	MediaHDD         = "hdd"
)

// Constants are the coefficients of the model.
type Constants struct {
	// WattsPerCPU is the power of one busy logical CPU.
	WattsPerCPU float64 `json:"watts_per_cpu"`
	// WattsPerGB is the power of one GB of memory reserved.
	WattsPerGB float64 `json:"watts_per_gb"`
	// KWhPerGB is the network energy per GB, by scope.
	KWhPerGB map[string]float64 `json:"kwh_per_gb"`
	// WhPerTBHour is the storage energy per TB·hour, by media.
	WhPerTBHour map[string]float64 `json:"wh_per_tb_hour"`
	// PUE is the data centre's power usage effectiveness.
	PUE float64 `json:"pue"`
}

// Energy is an estimate in watt-hours, by component.
type Energy struct {
	// Before PUE.
	CPU     float64 `json:"cpu"`
	Memory  float64 `json:"memory"`
	Network float64 `json:"network"`
	Storage float64 `json:"storage"`
	// After PUE.
	Total float64 `json:"total"`
}

// Estimate applies the model: CPU seconds × W per CPU, wall time × GB
// reserved × W per GB, GB moved × kWh/GB by scope, TB·hours × Wh/TB·h by
// media, the sum times PUE.
func Estimate(u Usage, c Constants) Energy {
	e := Energy{
		CPU:    u.CPUSeconds / 3600 * c.WattsPerCPU,
		Memory: u.WallSeconds / 3600 * u.MemGB * c.WattsPerGB,
	}
	for scope, gb := range u.NetGB {
		e.Network += 1000 * gb * c.KWhPerGB[scope]
	}
	for media, tbh := range u.StorageTBHours {
		e.Storage += tbh * c.WhPerTBHour[media]
	}
	e.Total = (e.CPU + e.Memory + e.Network + e.Storage) * c.PUE
	return e
}

// GramsCO2e is the CO2e of wh watt-hours on a grid of intensity gPerKWh.
func GramsCO2e(wh, gPerKWh float64) float64 { return wh / 1000 * gPerKWh }

// PerMillion scales a quantity for records to a million records.
func PerMillion(v float64, records int64) float64 {
	if records <= 0 {
		return 0
	}
	return v / float64(records) * 1e6
}

// Grids are the carbon intensities (gCO2e/kWh) of the grids reports use:
// Ember's 2024 yearly averages.
var Grids = map[string]float64{"FR": 44.18, "DE": 342.06, "US": 383.55, "WORLD": 472.94}

// Grid returns the intensity of a named grid.
func Grid(name string) (float64, error) {
	g, ok := Grids[name]
	if !ok {
		return 0, fmt.Errorf("grid %q: want FR, DE, US or WORLD", name)
	}
	return g, nil
}

// Bound names a set of constants.
type Bound string

// The bounds of every estimate.
const (
	Low     Bound = "low"
	Central Bound = "central"
	High    Bound = "high"
)

// Defaults returns the constants of a bound for a machine whose CPU power
// is wattsPerCPU per logical CPU (0: unknown, 6 W central), on a developer
// machine (PUE 1) or in an unknown data centre (PUE 1.56 central).
func Defaults(b Bound, wattsPerCPU float64, dataCentre bool) Constants {
	c := Constants{
		WattsPerCPU: wattsPerCPU, WattsPerGB: 0.3725, PUE: 1,
		KWhPerGB:    map[string]float64{ScopeSameHost: 0, ScopeSameSite: 0, ScopeCrossRegion: 0.001, ScopeInternet: 0.059},
		WhPerTBHour: map[string]float64{MediaSSD: 1.2, MediaHDD: 0.65},
	}
	if c.WattsPerCPU == 0 {
		c.WattsPerCPU = 6.0
	}
	if dataCentre {
		c.PUE = 1.56
	}
	switch b {
	case Low:
		c.WattsPerCPU, c.WattsPerGB = 3.5, 0.08
		c.KWhPerGB[ScopeInternet] = 0.0065
		if dataCentre {
			c.PUE = 1.0
		}
	case High:
		c.WattsPerCPU, c.WattsPerGB = 12.0, 0.392
		if dataCentre {
			c.PUE = 1.67
		}
	}
	return c
}

// Sources name where the constants come from, for reports.
var Sources = []string{
	"CPU and memory power: Green Algorithms (Lannelongue et al. 2021, TDP per core, 0.3725 W/GB); Cloud Carbon Footprint (max W per vCPU, 0.392 W/GB)",
	"Network: Cloud Carbon Footprint (0.001 kWh/GB between regions); Sustainable Web Design v4 (internet)",
	"Storage: Cloud Carbon Footprint (SSD 1.2, HDD 0.65 Wh per TB·hour)",
	"PUE: Green Algorithms v3 (Uptime Institute 2024); 1.0 on a developer machine",
	"Grid intensity: Ember 2024 yearly averages (FR 44.18, DE 342.06, US 383.55, World 472.94 gCO2e/kWh)",
}

// Uncertainty is the statement every report carries.
const Uncertainty = "These are estimates: no energy counter is readable on this machine, so energy is modelled from measured CPU time, memory and bytes with published coefficients; absolute figures carry about ±40 % uncertainty. Comparisons between runs on the same machine are far more reliable, because the constants cancel."

// CloudComputeWh is Cloud Carbon Footprint's compute estimate for billed
// vCPU hours: (min W + utilisation × (max W − min W)) × vCPU hours × PUE ×
// replication, utilisation in [0, 1]. It cross-checks the measured model
// where a cloud bills reservations rather than use.
func CloudComputeWh(minW, maxW, utilisation, vcpuHours, pue, replication float64) float64 {
	return (minW + utilisation*(maxW-minW)) * vcpuHours * pue * replication
}

// EmbodiedGrams is the Software Carbon Intensity share of a machine's
// embodied emissions: totalKg spread over its lifetime, for the hours used
// and the share of the machine reserved.
func EmbodiedGrams(totalKg, lifetimeHours, hours, share float64) float64 {
	return totalKg * 1000 * hours / lifetimeHours * share
}
