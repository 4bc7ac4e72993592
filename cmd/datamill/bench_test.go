package main

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/datamill/datamill/pkg/stage"
)

// TestBenchFollowsEveryEventToScored runs a small bench, with two cleaners
// and two loaders, and checks that its report accounts for every event at
// every stage, summed over a stage's processes, with latencies, resources
// (of every process) and the COPY baseline measured.
func TestBenchFollowsEveryEventToScored(t *testing.T) {
	var out bytes.Buffer
	err := run(t.Context(), []string{"bench", "--events", "5000", "--partitions", "3", "--scale", "cleaner=2,loader=2", "--json", "--profile", t.TempDir()},
		toolchainEnv(), &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var r benchReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, out.String())
	}
	if r.Events != 5000 || r.EndToEnd.Scored != 5000 || r.Copy.Rows != 5000 {
		t.Errorf("events %d, scored %d, copied %d: want 5000 each", r.Events, r.EndToEnd.Scored, r.Copy.Rows)
	}
	for _, s := range r.Stages {
		if s.Records != 5000 || s.RecordsPerSecond <= 0 {
			t.Errorf("stage %s: %d records at %.0f/s, want 5000 at a measured rate", s.Name, s.Records, s.RecordsPerSecond)
		}
		if s.Name != "lake" && (s.PhaseSeconds[stage.PhaseHandle] <= 0 || s.PhaseSeconds[stage.PhaseCommit] <= 0) {
			t.Errorf("stage %s: wall time by phase %v: want its handling and commits timed", s.Name, s.PhaseSeconds)
		}
	}
	if !(r.Latency.P50 > 0 && r.Latency.P50 <= r.Latency.P95 && r.Latency.P95 <= r.Latency.P99 && r.Latency.P99 <= r.Latency.Max) {
		t.Errorf("latency quantiles %+v are not ordered and positive", r.Latency)
	}
	if r.EndToEnd.EventsPerSecond <= 0 || r.Copy.RowsPerSecond <= 0 || r.Copy.LoaderShare <= 0 || r.Copy.EndToEndShare <= 0 {
		t.Errorf("throughputs end to end %.0f/s, COPY %.0f/s, loader share %.2f: want all measured", r.EndToEnd.EventsPerSecond, r.Copy.RowsPerSecond, r.Copy.LoaderShare)
	}
	if r.Postgres.WALBytesPerEvent < 100 {
		t.Errorf("PostgreSQL wrote %.0f bytes of WAL an event: want a row, its indexes and a prediction's measured", r.Postgres.WALBytesPerEvent)
	}
	for _, st := range []string{"loader", "scorer"} {
		cpu := 0.0
		for role, s := range r.Postgres.CPUSecondsByRole {
			if strings.Contains(role, st) {
				cpu += s
			}
		}
		if cpu <= 0 {
			t.Errorf("PostgreSQL's CPU by role %v: want the %s's backends' share measured", r.Postgres.CPUSecondsByRole, st)
		}
	}
	if !slices.ContainsFunc(r.Stages, func(s benchStage) bool { return s.Name == "lake" }) {
		t.Errorf("stages %+v: want the lake sink's among them", r.Stages)
	}
	var names []string
	for _, p := range r.Processes {
		names = append(names, p.Name)
		if strings.HasPrefix(p.Name, "postgresql") {
			if p.CPUSeconds <= 0 {
				t.Errorf("PostgreSQL's server and backends used %.2f CPU s: want them counted", p.CPUSeconds)
			}
			continue
		}
		if p.PeakRSSMiB <= 0 || p.SteadyRSSMiB <= 0 {
			t.Errorf("process %s: RSS %.1f MiB steady, %.1f peak: want both measured", p.Name, p.SteadyRSSMiB, p.PeakRSSMiB)
		}
	}
	for _, s := range append(serviceNames(), "postgresql (server and backends)", "cleaner-2", "loader-2") {
		if !slices.Contains(names, s) {
			t.Errorf("no figures for %s", s)
		}
	}
	if want := map[string]int{"cleaner": 2, "loader": 2, "scorer": 1, "lake": 1}; !maps.Equal(r.Scale, want) {
		t.Errorf("scale %v, want %v", r.Scale, want)
	}
	rss := 0
	for _, tg := range r.Targets {
		if strings.HasSuffix(tg.Name, " steady RSS") {
			rss++
		}
	}
	if rss != len(serviceNames())+2 {
		t.Errorf("%d steady RSS targets: want one for every service process, the second cleaner and loader too", rss)
	}
	if len(r.Lag) == 0 || len(r.Targets) < 3 {
		t.Errorf("%d lag points and %d targets: want both", len(r.Lag), len(r.Targets))
	}
	if len(r.Profiles) != 2*len(profiledStages()) {
		t.Errorf("profiles %v: want a CPU and a heap profile of each of %v", r.Profiles, profiledStages())
	}
}
