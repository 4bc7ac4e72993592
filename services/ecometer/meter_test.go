package main

import (
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/eco"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
)

// The ecometer stores each sample once, however often it is delivered,
// sums them per run and stage, and prices them on /metrics.
func TestMeterStoresSamplesOnceAndSumsThem(t *testing.T) {
	env := testkit.Stack(t, true)
	m := config.ToMap(env)
	kcfg := testkit.KafkaConfig(t, m, 1)
	svc := testkit.Serve(t, run, testkit.As(env, "ecometer"))

	reg, err := serde.NewRegistry(serde.Config{RegistryURL: m["SCHEMA_REGISTRY_URL"]})
	if err != nil {
		t.Fatal(err)
	}
	codec, err := serde.NewCodec[schemas.EcoSample](t.Context(), reg, kafka.EcoSamples, schemas.MustSchema("ecosample"))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kafka.NewClient(kcfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sample := func(stage string, i int, cpu float64, in int64, out map[string]int64) *kgo.Record {
		s := schemas.EcoSample{
			RunID: "r1", Service: stage, Stage: stage, Instance: stage + "-1",
			WindowStart: t0.Add(time.Duration(i) * 5 * time.Second), WindowEnd: t0.Add(time.Duration(i+1) * 5 * time.Second),
			WallS: 5, CPUS: cpu, MemReservedBytes: 2e9, MemSource: "vmhwm", Vcpus: 2, RecordsIn: in, RecordsOut: in,
			BytesIn: map[string]int64{}, BytesOut: out, StoredBytes: map[string]int64{eco.MediaSSD: 1e12}, CPUSPerEpoch: []float64{},
		}
		b, err := codec.Encode(&s)
		if err != nil {
			t.Fatal(err)
		}
		return &kgo.Record{Topic: kafka.EcoSamples, Value: b}
	}
	none := map[string]int64{}
	loaderOut := map[string]int64{eco.ScopeSameHost: 5e9, eco.ScopeInternet: 2e9}
	iterations := int64(3)
	train := schemas.EcoSample{
		RunID: "r1", Service: "scorer", Stage: "train", Instance: "train-1", WindowStart: t0, WindowEnd: t0.Add(time.Second),
		WallS: 1, CPUS: 0.6, MemReservedBytes: 1e9, MemSource: "vmhwm", Vcpus: 2, RecordsIn: 500,
		BytesIn: none, BytesOut: none, StoredBytes: none, TrainingIterations: &iterations, CPUSPerEpoch: []float64{0.25, 0.2, 0.15},
	}
	trainValue, err := codec.Encode(&train)
	if err != nil {
		t.Fatal(err)
	}
	recs := []*kgo.Record{
		sample("cleaner", 0, 1.5, 1000, none), sample("cleaner", 1, 2.5, 3000, none), sample("cleaner", 1, 2.5, 3000, none), sample("loader", 0, 4, 4000, loaderOut),
		{Topic: kafka.EcoSamples, Value: trainValue},
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// The training sample came last: once it counts, all do.
	testkit.WaitMetric(t, svc.Addr, `ecometer_stage_cpu_seconds_total{stage="train"}`, "0.6")
	testkit.WaitMetric(t, svc.Addr, `ecometer_stage_cpu_seconds_total{stage="cleaner"}`, "4")
	conn, err := pgx.Connect(t.Context(), m["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	totals, err := eco.LoadRun(t.Context(), conn, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(totals) != 3 {
		t.Fatalf("totals %+v, want cleaner, loader and train", totals)
	}
	// Every batch stored is audited in its transaction: the five samples
	// produced here at least (the services' own come too), from offset 0.
	var audited, first int64
	if err := conn.QueryRow(t.Context(), `select coalesce(sum(rows), 0), coalesce(min(first_offset), -1) from datamill_batches
		where stage = 'ecometer' and topic = $1`, kafka.EcoSamples).Scan(&audited, &first); err != nil || audited < 5 || first != 0 {
		t.Errorf("datamill_batches of the ecometer: %d rows from offset %d (%v), want at least 5 from 0", audited, first, err)
	}
	var perEpoch []float64
	if err := conn.QueryRow(t.Context(), `select cpu_s_per_epoch from eco_samples where instance = 'train-1'`).Scan(&perEpoch); err != nil {
		t.Fatal(err)
	}
	if tr := totals[2]; tr.Stage != "train" || tr.Iterations != 3 || tr.CPUSeconds != 0.6 || len(perEpoch) != 3 || perEpoch[0] != 0.25 {
		t.Errorf("train totals %+v, CPU s per epoch %v: want 3 iterations, 0.6 CPU s, [0.25 0.2 0.15]", tr, perEpoch)
	}
	report, err := eco.NewReport("r1", "WORLD", totals, map[eco.Bound]eco.Constants{
		eco.Low: eco.Defaults(eco.Low, 0, false), eco.Central: eco.Defaults(eco.Central, 0, false), eco.High: eco.Defaults(eco.High, 0, false),
	})
	if err != nil {
		t.Fatal(err)
	}
	var printed strings.Builder
	report.Print(&printed)
	if !strings.Contains(printed.String(), "train: 3 iterations, 0.2000 CPU s and ") {
		t.Errorf("the report does not show the training iterations:\n%s", printed.String())
	}
	c := totals[0]
	if c.Stage != "cleaner" || c.Samples != 2 || c.CPUSeconds != 4 || c.WallSeconds != 10 || c.MemGBSeconds != 20 || c.RecordsIn != 4000 ||
		math.Abs(c.StoredTBHours[eco.MediaSSD]-10.0/3600) > 1e-12 {
		t.Errorf("cleaner totals %+v: want the two distinct samples summed", c)
	}
	// The report prices the bytes the loader moved as the metrics do: 2 GB
	// to the internet at 0.059 kWh/GB; the 5 GB on the same host are free.
	l := totals[1]
	if l.NetGB[eco.ScopeSameHost] != 5 || l.NetGB[eco.ScopeInternet] != 2 || l.NetGB[eco.ScopeSameSite] != 0 {
		t.Errorf("loader moved %v GB, want 5 on the same host and 2 to the internet", l.NetGB)
	}
	if wh := eco.Estimate(l.Usage(), eco.Defaults(eco.Central, 0, false)).Network; math.Abs(wh-118) > 1e-9 {
		t.Errorf("the report's network energy of the loader = %v Wh, want 118", wh)
	}
	testkit.WaitMetric(t, svc.Addr, `ecometer_stage_energy_joules_total{component="network",stage="loader"}`, "424800")
	// 4 CPU s at 6 W and 20 GB·s at 0.3725 W/GB on a developer machine.
	wantJ := 4*6.0 + 20*0.3725 + 10*1.2 // and 1 TB stored for 10 s at 1.2 Wh per TB·hour
	testkit.WaitMetric(t, svc.Addr, `ecometer_stage_energy_joules_total{component="cpu",stage="cleaner"}`, "24")
	grams := wantJ / 3600 / 1000 * 472.94
	perMil := grams / 4000 * 1e6
	if got := metricValue(t, svc.Addr, `ecometer_co2e_grams_per_million_records{stage="cleaner"}`); math.Abs(got-perMil) > 1e-9*perMil {
		t.Errorf("gCO2e per million records of the cleaner = %v, want %v", got, perMil)
	}
}

// metricValue reads one series of a /metrics page.
func metricValue(t *testing.T, addr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no series %s on /metrics", series)
	return 0
}
