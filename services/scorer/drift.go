package main

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/datamill/datamill/services/scorer/internal/model"
)

// minDriftRecords is how many records a window needs before its PSI is
// exported: fewer say more about chance than about drift.
const minDriftRecords = 100

// drift measures how far the records a dataset's model scores have moved
// from the model's training split: for each feature with a training
// distribution in the artefact, the population stability index (PSI)
// between it and the recent scored records, exported as
// datamill_scorer_feature_psi{dataset, feature}.
//
// Recent records are a tumbling window of `window` records: the PSI is
// exported after each batch once the window holds minDriftRecords, and the
// window starts again when full. A new model version starts it again too,
// as its features and training distribution are its own.
type drift struct {
	dataset string
	window  int
	psi     *prometheus.GaugeVec

	mu      sync.Mutex
	version string
	counts  [][]int // per feature, per bin
	n       int
}

func newDriftGauge() *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "datamill_scorer_feature_psi",
		Help: "Population stability index of each feature of a dataset's model between its training split and the recent scored records (above 0.1: a moderate shift, above 0.25: a large one).",
	}, []string{"dataset", "feature"})
}

// observe counts the records m scored and exports the window's PSI.
func (d *drift) observe(m *model.Model, records []model.Record) {
	if d == nil || len(records) == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p := m.Preprocessing
	if d.version != m.Version {
		d.version, d.n = m.Version, 0
		d.counts = make([][]int, len(p.Features))
		for i, f := range p.Features {
			d.counts[i] = make([]int, len(f.Shares))
		}
	}
	for _, r := range records {
		for i := range p.Features {
			if b := p.Bin(i, r); b >= 0 {
				d.counts[i][b]++
			}
		}
	}
	d.n += len(records)
	if d.n < min(minDriftRecords, d.window) {
		return
	}
	for i, f := range p.Features {
		if p.Drifts(i) {
			d.psi.WithLabelValues(d.dataset, f.Name).Set(model.PSI(f.Shares, d.counts[i]))
		}
	}
	if d.n >= d.window {
		d.n = 0
		for _, c := range d.counts {
			clear(c)
		}
	}
}
