package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/pg"
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
//
// Each export is also a measurement that a driftRecorder takes to the
// scorer_drift table: the last one of every window that ended (full, or
// left for a new model version), and the last one of the current window.
type drift struct {
	dataset string
	window  int
	psi     *prometheus.GaugeVec
	now     func() time.Time // nil: time.Now

	mu      sync.Mutex
	version string
	counts  [][]int // per feature, per bin
	n       int
	ended   []measurement // the last measurement of each window ended since the last take
	latest  *measurement  // the current window's last measurement, nil once taken
}

// measurement is the PSI of each drifting feature of a model over a window
// of records, as exported at one time.
type measurement struct {
	dataset, version string
	records          int
	at               time.Time
	features         []string
	psi              []float64
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
		d.endWindow()
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
	at := time.Now
	if d.now != nil {
		at = d.now
	}
	ms := &measurement{dataset: d.dataset, version: d.version, records: d.n, at: at()}
	for i, f := range p.Features {
		if p.Drifts(i) {
			v := model.PSI(f.Shares, d.counts[i])
			d.psi.WithLabelValues(d.dataset, f.Name).Set(v)
			ms.features, ms.psi = append(ms.features, f.Name), append(ms.psi, v)
		}
	}
	d.latest = ms
	if d.n >= d.window {
		d.endWindow()
		d.n = 0
		for _, c := range d.counts {
			clear(c)
		}
	}
}

// maxPendingDrift is how many measurements a drift or its recorder keeps
// while the database refuses them; older ones are dropped.
const maxPendingDrift = 1000

// endWindow keeps the current window's last measurement as an ended
// window's. The caller holds d.mu.
func (d *drift) endWindow() {
	if d.latest == nil {
		return
	}
	d.ended = append(d.ended, *d.latest)
	if len(d.ended) > maxPendingDrift {
		d.ended = d.ended[len(d.ended)-maxPendingDrift:]
	}
	d.latest = nil
}

// take returns the measurements not taken yet: the last of each window
// ended since the last take, then the current window's last one if it was
// measured since.
func (d *drift) take() []measurement {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.ended
	d.ended = nil
	if d.latest != nil {
		out = append(out, *d.latest)
		d.latest = nil
	}
	return out
}

// driftRecorder writes the drift measurements of the datasets it was given
// into scorer_drift, every interval and once more when it stops: off the
// scoring path, which only updates the windows in memory. A write that
// fails is logged and its measurements are tried again on the next tick.
type driftRecorder struct {
	pool *pgxpool.Pool
	log  *zap.Logger

	mu     sync.Mutex // guards drifts only, so that a slow write delays no stage's start
	drifts []*drift

	writing sync.Mutex
	pending []measurement // taken, not written yet
}

// add makes the recorder record d's measurements.
func (r *driftRecorder) add(d *drift) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.drifts = append(r.drifts, d)
}

// run records every interval until ctx ends, then records once more,
// within a few seconds, what the windows measured since.
func (r *driftRecorder) run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			last, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			r.logged(last)
			return
		case <-tick.C:
			r.logged(ctx)
		}
	}
}

// logged records and logs a failure.
func (r *driftRecorder) logged(ctx context.Context) {
	if n, err := r.record(ctx); err != nil {
		r.log.Warn("drift not recorded; retrying on the next tick", zap.Int("measurements", n), zap.Error(err))
	}
}

// record writes the measurements taken since the last write and returns
// how many there were; on an error they stay pending.
func (r *driftRecorder) record(ctx context.Context) (int, error) {
	r.mu.Lock()
	drifts := slices.Clone(r.drifts)
	r.mu.Unlock()
	r.writing.Lock()
	defer r.writing.Unlock()
	for _, d := range drifts {
		r.pending = append(r.pending, d.take()...)
	}
	if len(r.pending) > maxPendingDrift {
		r.pending = r.pending[len(r.pending)-maxPendingDrift:]
	}
	if len(r.pending) == 0 {
		return 0, nil
	}
	var rows [][]any
	for _, m := range r.pending {
		for i, f := range m.features {
			rows = append(rows, []any{m.dataset, m.version, f, m.psi[i], m.records, m.at})
		}
	}
	err := pg.InTx(ctx, r.pool, func(tx pgx.Tx) error {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"scorer_drift"},
			[]string{"dataset", "model_version", "feature", "psi", "records", "measured_at"}, pgx.CopyFromRows(rows))
		return err
	})
	n := len(r.pending)
	if err != nil {
		return n, fmt.Errorf("write %d drift measurements: %w", n, err)
	}
	r.pending = nil
	return n, nil
}
