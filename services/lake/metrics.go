package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/datamill/datamill/pkg/stage"
)

// stageName is the stage label of the sink's series in the stage family.
const stageName = "lake"

// metrics are the sink's series: the stage family (records and bytes
// archived, consumer lag), so that bench and chaos read the sink like any
// stage, and the lake's own.
type metrics struct {
	stage    *stage.Metrics
	objects  *prometheus.CounterVec // dataset, outcome
	bytes    *prometheus.CounterVec // dataset
	skipped  *prometheus.CounterVec // dataset, reason
	buffered *prometheus.GaugeVec   // dataset
	upload   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		stage: stage.NewMetrics(reg),
		objects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datamill_lake_objects_total",
			Help: "Lake objects recorded in the manifest, by outcome: written by this process, or adopted (found already stored under their key).",
		}, []string{"dataset", "outcome"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datamill_lake_object_bytes_total",
			Help: "Bytes of the lake objects this process wrote.",
		}, []string{"dataset"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datamill_lake_records_skipped_total",
			Help: "Raw records left out of their object, by reason (undecodable: the value does not decode with the raw schema).",
		}, []string{"dataset", "reason"}),
		buffered: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "datamill_lake_buffered_bytes",
			Help: "Bytes the records buffered, not yet in an object, take in memory (what LAKE_MAX_BUFFER caps).",
		}, []string{"dataset"}),
		upload: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "datamill_lake_upload_seconds",
			Help:    "Time to upload one lake object, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12),
		}),
	}
	reg.MustRegister(m.objects, m.bytes, m.skipped, m.buffered, m.upload)
	return m
}
