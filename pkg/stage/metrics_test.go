package stage

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// Every metric a runner reports is registered, with its type, help and
// labels.
func TestMetricsAreRegisteredWithTheirLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.committed("tester", "items", count{in: 1, out: 1, deadReasons: []string{"payload: bad"}})
	m.batchSize.WithLabelValues("tester", "items").Observe(1)
	m.batchSeconds.WithLabelValues("tester", "items").Observe(1)
	(&stopwatch{m: m, stage: "tester", dataset: "items", last: time.Now()}).lap(PhasePoll)
	m.setLag("tester", "items", 0, 1)
	m.flood.WithLabelValues("tester", "items").Set(0)
	m.floods.WithLabelValues("tester", "items").Add(0)
	m.stopped.WithLabelValues("tester", "items").Set(0)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range families {
		var labels []string
		for _, l := range f.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		line := fmt.Sprintf("%s %s [%s] %s", f.GetName(), f.GetType(), strings.Join(labels, " "), f.GetHelp())
		if h := f.GetMetric()[0].GetHistogram(); h != nil {
			b := h.GetBucket()
			line += fmt.Sprintf(" (%d buckets, %.15g to %.15g)", len(b), b[0].GetUpperBound(), b[len(b)-1].GetUpperBound())
		}
		got = append(got, line)
	}
	want := []string{
		"datamill_stage_batch_records HISTOGRAM [dataset stage] Records per polled batch. (8 buckets, 1 to 16384)",
		"datamill_stage_batch_seconds HISTOGRAM [dataset stage] Time from poll to committed transaction, per batch. (12 buckets, 0.001 to 23.8418579101562)",
		"datamill_stage_bytes_in_total COUNTER [dataset stage] Bytes of the records consumed and committed (keys and values).",
		"datamill_stage_bytes_out_total COUNTER [dataset stage] Bytes of the records produced and committed, dead letters included.",
		"datamill_stage_consumer_lag_records GAUGE [dataset partition stage] Committed records not yet consumed, per input partition.",
		"datamill_stage_dlq_flood GAUGE [dataset stage] 1 while the dead-letter rate is above STAGE_DLQ_MAX_RATE (a dead-letter flood), else 0.",
		"datamill_stage_dlq_floods_total COUNTER [dataset stage] Dead-letter floods started (the rate went above STAGE_DLQ_MAX_RATE).",
		"datamill_stage_phase_seconds_total COUNTER [dataset phase stage] Wall time spent in each phase of the batch cycle (poll, decode, handle, produce, commit).",
		"datamill_stage_records_dead_lettered_total COUNTER [dataset reason stage] Records sent to the dead-letter topic, by the first reason's code.",
		"datamill_stage_records_duplicates_total COUNTER [dataset stage] Records dropped as duplicates of content already seen.",
		"datamill_stage_records_in_total COUNTER [dataset stage] Records consumed and committed by the stage.",
		"datamill_stage_records_out_total COUNTER [dataset stage] Records produced to the stage's output topic and committed.",
		"datamill_stage_stopped GAUGE [dataset stage] 1 while the stage is stopped on a dead-letter flood (STAGE_DLQ_ON_FLOOD=stop) until `datamill resume`, else 0.",
		"datamill_stage_transactions_total COUNTER [dataset outcome stage] Batch transactions, by outcome (committed, aborted).",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
}
