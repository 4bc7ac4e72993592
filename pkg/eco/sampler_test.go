package eco

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/telemetry"
	"github.com/datamill/datamill/pkg/testkit"
)

// benchSampler is a sampler over a registry like a service's: the Go and
// process collectors of the telemetry server and a stage's counters.
func benchSampler(b *testing.B) *Sampler {
	reg := telemetry.New(telemetry.Options{}).Registry()
	for _, name := range []string{"in", "out", "dead_lettered", "duplicates"} {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "datamill_stage_records_" + name + "_total"}, []string{"stage", "dataset"})
		reg.MustRegister(c)
		c.WithLabelValues("cleaner", "users").Add(1)
	}
	s := &Sampler{RunID: "bench", Service: "cleaner", Instance: "bench:1", Every: time.Hour, Metrics: reg, Log: zap.NewNop()}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	return s
}

// reportCPU reports the process's CPU time per operation, and what share
// of one CPU that is at one operation per default ECO_SAMPLE_INTERVAL (5 s).
func reportCPU(b *testing.B, before Reading) {
	after, err := Read()
	if err != nil {
		b.Fatal(err)
	}
	perOp := (after.CPUSeconds - before.CPUSeconds) / float64(b.N)
	b.ReportMetric(perOp*1e6, "cpu-µs/op")
	b.ReportMetric(perOp/5*100, "%CPU@5s")
}

// BenchmarkSample is the cost of closing a window: a reading of the
// process and a gather of its record counters.
func BenchmarkSample(b *testing.B) {
	s := benchSampler(b)
	before, _ := Read()
	for b.Loop() {
		if _, err := s.Sample(); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, before)
}

// BenchmarkSampleAndPublish is a whole window's cost: the sample, its Avro
// encoding and its synchronous produce to eco.samples. The broker runs in
// this process, so its work counts too: an upper bound.
func BenchmarkSampleAndPublish(b *testing.B) {
	kcfg := testkit.Kafka(b)
	kcfg.Partitions = 1
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: testkit.Registry(b)})
	if err != nil {
		b.Fatal(err)
	}
	publish, closePublisher, err := NewPublisher(b.Context(), kcfg, reg, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	defer closePublisher()
	s := benchSampler(b)
	before, _ := Read()
	for b.Loop() {
		sample, err := s.Sample()
		if err != nil {
			b.Fatal(err)
		}
		if err := publish(b.Context(), sample); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, before)
}
