package stage

import (
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
	m := &Metrics{
		in: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datamill_stage_records_in_total", Help: "Records consumed and committed by the stage.",
		}, labels),
		out: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datamill_stage_records_out_total", Help: "Records produced to the stage's output topic and committed.",
		}, labels),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datamill_stage_records_duplicates_total", Help: "Records dropped as duplicates of content already seen.",
		}, labels),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datamill_stage_bytes_in_total", Help: "Bytes of the records consumed and committed (keys and values).",
		}, labels),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datamill_stage_bytes_out_total", Help: "Bytes of the records produced and committed, dead letters included.",
		}, labels),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datamill_stage_records_dead_lettered_total", Help: "Records sent to the dead-letter topic, by the first reason's code.",
		}, append(labels, "reason")),
		txns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datamill_stage_transactions_total", Help: "Batch transactions, by outcome (committed, aborted).",
		}, append(labels, "outcome")),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "datamill_stage_batch_records", Help: "Records per polled batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}, labels),
		batchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "datamill_stage_batch_seconds", Help: "Time from poll to committed transaction, per batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, labels),
		phaseSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datamill_stage_phase_seconds_total", Help: "Wall time spent in each phase of the batch cycle (poll, decode, handle, produce, commit).",
		}, append(labels, "phase")),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "datamill_stage_consumer_lag_records", Help: "Committed records not yet consumed, per input partition.",
		}, append(labels, "partition")),
		flood: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "datamill_stage_dlq_flood", Help: "1 while the dead-letter rate is above STAGE_DLQ_MAX_RATE (a dead-letter flood), else 0.",
		}, labels),
		floods: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datamill_stage_dlq_floods_total", Help: "Dead-letter floods started (the rate went above STAGE_DLQ_MAX_RATE).",
		}, labels),
		stopped: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "datamill_stage_stopped", Help: "1 while the stage is stopped on a dead-letter flood (STAGE_DLQ_ON_FLOOD=stop) until `datamill resume`, else 0.",
		}, labels),
	}
	reg.MustRegister(m.in, m.out, m.duplicates, m.bytesIn, m.bytesOut, m.dead, m.txns, m.batchSize, m.batchSeconds, m.phaseSeconds, m.lag,
		m.flood, m.floods, m.stopped)
	return m
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
