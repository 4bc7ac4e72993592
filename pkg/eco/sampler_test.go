package eco

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// BenchmarkSample is the sampler's cost per window: a reading of the
// process and its record counters. At one sample per 5 s it is the share
// of a CPU the sampler takes.
func BenchmarkSample(b *testing.B) {
	reg := prometheus.NewRegistry()
	in := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "datamill_stage_records_in_total"}, []string{"stage", "dataset"})
	reg.MustRegister(in)
	in.WithLabelValues("cleaner", "users").Add(1)
	s := &Sampler{Every: time.Hour, Metrics: reg, Log: zap.NewNop()}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Sample(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/5*100, "%CPU@5s")
}
