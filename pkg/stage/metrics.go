package stage

import (
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the counters every runner of a process reports, labelled by
// stage and dataset.
type Metrics struct {
	in, out, duplicates *prometheus.CounterVec
	bytesIn, bytesOut   *prometheus.CounterVec
	dead                *prometheus.CounterVec // + reason
	txns                *prometheus.CounterVec // + outcome
	batchSize           *prometheus.HistogramVec
	batchSeconds        *prometheus.HistogramVec
	phaseSeconds        *prometheus.CounterVec // + phase
	lag                 *prometheus.GaugeVec   // + partition
	flood, stopped      *prometheus.GaugeVec
	floods              *prometheus.CounterVec
}

// The phases of a runner's time, in the order a batch goes through them.
const (
	// PhasePoll is waiting for input records (idle time included).
	PhasePoll = "poll"
	// PhaseDecode is decoding the batch (and loading dedupe state).
	PhaseDecode = "decode"
	// PhaseHandle is the stage's own step, database work included.
	PhaseHandle = "handle"
	// PhaseProduce is encoding and producing the outputs, dead letters
	// and state, until the broker acknowledged them.
	PhaseProduce = "produce"
	// PhaseCommit is committing the offsets and the transaction.
	PhaseCommit = "commit"
)

// Phases are the phases in the order a batch goes through them.
var Phases = []string{PhasePoll, PhaseDecode, PhaseHandle, PhaseProduce, PhaseCommit}

// NewMetrics registers the stage metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	labels := []string{"stage", "dataset"}
	counter := func(name, help string, more ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, slices.Concat(labels, more))
		reg.MustRegister(v)
		return v
	}
	gauge := func(name, help string, more ...string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, slices.Concat(labels, more))
		reg.MustRegister(v)
		return v
	}
	histogram := func(name, help string, buckets []float64) *prometheus.HistogramVec {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
		reg.MustRegister(v)
		return v
	}
	return &Metrics{
		in:         counter("datamill_stage_records_in_total", "Records consumed and committed by the stage."),
		out:        counter("datamill_stage_records_out_total", "Records produced to the stage's output topic and committed."),
		duplicates: counter("datamill_stage_records_duplicates_total", "Records dropped as duplicates of content already seen."),
		bytesIn:    counter("datamill_stage_bytes_in_total", "Bytes of the records consumed and committed (keys and values)."),
		bytesOut:   counter("datamill_stage_bytes_out_total", "Bytes of the records produced and committed, dead letters included."),
		dead: counter("datamill_stage_records_dead_lettered_total",
			"Records sent to the dead-letter topic, by the first reason's code.", "reason"),
		txns: counter("datamill_stage_transactions_total", "Batch transactions, by outcome (committed, aborted).", "outcome"),
		batchSize: histogram("datamill_stage_batch_records", "Records per polled batch.",
			prometheus.ExponentialBuckets(1, 4, 8)),
		batchSeconds: histogram("datamill_stage_batch_seconds", "Time from poll to committed transaction, per batch.",
			prometheus.ExponentialBuckets(0.001, 2.5, 12)),
		phaseSeconds: counter("datamill_stage_phase_seconds_total",
			"Wall time spent in each phase of the batch cycle (poll, decode, handle, produce, commit).", "phase"),
		lag: gauge("datamill_stage_consumer_lag_records", "Committed records not yet consumed, per input partition.", "partition"),
		flood: gauge("datamill_stage_dlq_flood",
			"1 while the dead-letter rate is above STAGE_DLQ_MAX_RATE (a dead-letter flood), else 0."),
		floods: counter("datamill_stage_dlq_floods_total",
			"Dead-letter floods started (the rate went above STAGE_DLQ_MAX_RATE)."),
		stopped: gauge("datamill_stage_stopped",
			"1 while the stage is stopped on a dead-letter flood (STAGE_DLQ_ON_FLOOD=stop) until `datamill resume`, else 0."),
	}
}

// Counts are a runner's totals since it started.
type Counts struct {
	In, Out, DeadLettered, Duplicates int64
}

// count is what one committed batch adds.
type count struct {
	in, out, duplicates int
	bytesIn, bytesOut   int
	deadReasons         []string // first reason of each dead letter
	state               changes  // Spec.Digest's state changes
}

func (m *Metrics) committed(stage, dataset string, c count) {
	m.in.WithLabelValues(stage, dataset).Add(float64(c.in))
	m.out.WithLabelValues(stage, dataset).Add(float64(c.out))
	m.duplicates.WithLabelValues(stage, dataset).Add(float64(c.duplicates))
	m.bytesIn.WithLabelValues(stage, dataset).Add(float64(c.bytesIn))
	m.bytesOut.WithLabelValues(stage, dataset).Add(float64(c.bytesOut))
	for _, r := range c.deadReasons {
		m.dead.WithLabelValues(stage, dataset, reasonCode(r)).Inc()
	}
	m.txns.WithLabelValues(stage, dataset, "committed").Inc()
}

func (m *Metrics) setLag(stage, dataset string, partition int32, lag int64) {
	m.lag.WithLabelValues(stage, dataset, strconv.Itoa(int(partition))).Set(float64(lag))
}

func (m *Metrics) dropLag(stage, dataset string, partition int32) {
	m.lag.DeleteLabelValues(stage, dataset, strconv.Itoa(int(partition)))
}

// stopwatch splits a runner's wall time into phases.
type stopwatch struct {
	m              *Metrics
	stage, dataset string
	last           time.Time
}

// lap adds the time since the previous lap to phase.
func (w *stopwatch) lap(phase string) {
	now := time.Now()
	w.m.phaseSeconds.WithLabelValues(w.stage, w.dataset, phase).Add(now.Sub(w.last).Seconds())
	w.last = now
}

// Committed adds records consumed and committed by a step that is not a
// runner (the lake sink) to the stage family, so that bench and chaos read
// it like any stage: records in and out (what it consumed is what it
// stored) and the bytes consumed.
func (m *Metrics) Committed(stage, dataset string, records, bytes int) {
	m.in.WithLabelValues(stage, dataset).Add(float64(records))
	m.out.WithLabelValues(stage, dataset).Add(float64(records))
	m.bytesIn.WithLabelValues(stage, dataset).Add(float64(bytes))
}

// Lag sets the consumer lag of a step that is not a runner for one input
// partition; a negative lag removes the partition's series (revoked).
func (m *Metrics) Lag(stage, dataset string, partition int32, lag int64) {
	if lag < 0 {
		m.dropLag(stage, dataset, partition)
		return
	}
	m.setLag(stage, dataset, partition, lag)
}
