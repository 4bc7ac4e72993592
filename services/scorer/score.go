package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/services/scorer/internal/model"
)

// models keeps the newest valid artefact of a directory, swapping it in
// when a newer one appears.
type models struct {
	// dataset is the dataset whose model this is.
	dataset   string
	dir, name string
	// waiting, when set, says what the model waits for besides scorer
	// train: the self-trainer's labelled rows.
	waiting func() string
	log     *zap.Logger
	current atomic.Pointer[model.Model]
	path    string // of the current model
	info    *prometheus.GaugeVec
}

// poll loads the newest artefact when it is not the current one. A newer
// artefact that does not load is reported and skipped; the current model
// stays.
func (m *models) poll() error {
	path, err := model.Latest(m.dir, m.name)
	if err != nil || path == "" || path == m.path {
		return err
	}
	loaded, err := model.Load(path)
	if err != nil {
		m.path = path // reported once, not at every poll
		return err
	}
	if old := m.current.Swap(loaded); old != nil {
		m.info.WithLabelValues(m.dataset, old.Version).Set(0)
		m.log.Info("model swapped", zap.String("dataset", m.dataset), zap.String("from", old.Version), zap.String("to", loaded.Version))
	} else {
		m.log.Info("model loaded", zap.String("dataset", m.dataset), zap.String("version", loaded.Version), zap.String("path", path),
			zap.Float64("test_roc_auc", loaded.Test.AUC))
	}
	m.info.WithLabelValues(m.dataset, loaded.Version).Set(1)
	m.path = path
	return nil
}

// watch polls every interval until ctx ends.
func (m *models) watch(ctx context.Context, every time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		if err := m.poll(); err != nil {
			m.log.Error("model artefact refused; keeping the current model", zap.Error(err))
		}
	}
}

// await polls until a model is loaded or ctx ends.
func (m *models) await(ctx context.Context, every time.Duration, waiting func(string)) error {
	for {
		err := m.poll()
		if m.current.Load() != nil {
			return nil
		}
		reason := fmt.Sprintf("waiting for a model %s-*.json in %s (run scorer train --dataset %s", m.name, m.dir, m.dataset)
		if m.waiting != nil {
			reason += ", or " + m.waiting()
		}
		reason += ")"
		if err != nil {
			reason += ": " + err.Error()
		}
		waiting(reason)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

// scoring is the scorer's step for a dataset: every persisted event gets
// one row of its predictions table and one scored record.
type scoring struct {
	dataset *dataset
	pool    *pgxpool.Pool
	models  *models
	risk    prometheus.Observer
	// drift, when set, hears of every record scored.
	drift *drift
}

// handler scores a batch with one model (the current one when the batch
// starts), writes the predictions in one database transaction, idempotent
// by event id, with the batch's datamill_batches rows (pg.AuditBatch), and returns the scored records as the table holds them: a
// replayed event gets back the prediction it was first given, model
// version included, whatever model is current now.
func (s *scoring) handler(ctx context.Context, batch []stage.Message[persisted]) (stage.Result[scored], error) {
	m := s.models.current.Load()
	d := s.dataset
	preds := make([]prediction, len(batch))
	records := make([]model.Record, len(batch))
	for i := range batch {
		c := cleanOf(batch[i].Value)
		records[i] = d.record(c)
		preds[i] = predict(m, records[i], d.keyOf(c), c.Field(d.eventIDField).String())
		preds[i].stated = d.stated(records[i])
	}
	s.drift.observe(m, records)
	var stored map[string]scored
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if stored, _, err = d.writePredictions(ctx, tx, preds); err != nil {
			return err
		}
		return pg.AuditBatch(ctx, tx, pg.Batches("scorer", len(batch), func(i int) (string, int32, int64) {
			o := batch[i].Origin
			return o.Topic, o.Partition, o.Offset
		})...)
	})
	if err != nil {
		return stage.Result[scored]{}, fmt.Errorf("write %d predictions of %s: %w", len(preds), d.name, err)
	}
	var res stage.Result[scored]
	for _, p := range preds {
		sc, ok := stored[p.eventID]
		if !ok {
			return stage.Result[scored]{}, fmt.Errorf("prediction of event %s neither written nor found", p.eventID)
		}
		s.risk.Observe(sc.Probability)
		res.Outputs = append(res.Outputs, stage.Output[scored]{Key: recordKey(p.key), Value: sc})
	}
	return res, nil
}

// prediction is what a model says of one event, before it is stored.
type prediction struct {
	eventID string
	// key is the row's key: an int64 or a string.
	key         any
	label       int32
	probability float64
	version     string
	// stated says whether the record had its own value of a ridge
	// model's label (dataset.stated).
	stated bool
}

// predict applies m to a clean record: the one feature path of the
// stream and of the reconciliation.
func predict(m *model.Model, r model.Record, key any, eventID string) prediction {
	p := m.Score(r)
	return prediction{eventID: eventID, key: key, label: int32(m.Predict(p)), probability: p, version: m.Version} // #nosec G115 -- Predict returns 0 or 1
}

// writePredictions inserts preds in tx, idempotent by event id, and returns
// the predictions the table holds for their events, written now or
// before, and the events whose predictions it wrote. A ridge model's
// table also keeps each prediction as its estimate and whether the
// record stated its own label.
//
// The statement that inserts also reads the predictions already there,
// by index, but only as they were when it began: an insert that waited for
// another transaction writing the same events (the stream and the
// reconciliation, or two scorers) finds them committed once it goes on,
// and its statement does not see them. Those are read again in a
// statement of its own.
func (d *dataset) writePredictions(ctx context.Context, tx pgx.Tx, preds []prediction) (map[string]scored, map[string]bool, error) {
	n := len(preds)
	eventIDs, labels, probs, versions, stated := make([]string, n), make([]int32, n), make([]float64, n), make([]string, n), make([]bool, n)
	var keys any
	keyType := "bigint"
	if d.textKey {
		k := make([]string, n)
		for i, p := range preds {
			k[i], _ = p.key.(string)
		}
		keys, keyType = k, "text"
	} else {
		k := make([]int64, n)
		for i, p := range preds {
			k[i], _ = p.key.(int64)
		}
		keys = k
	}
	for i, p := range preds {
		eventIDs[i], labels[i], probs[i], versions[i], stated[i] = p.eventID, p.label, p.probability, p.version, p.stated
	}
	// A ridge model's rows also hold the estimate (its prediction, the
	// probability column's value) and whether the record stated its own.
	var in, cols, extra string
	insertCols := "event_id, %[2]s, prediction, probability, model_version"
	selectCols := "event_id, key, prediction, probability, model_version"
	args := []any{eventIDs, keys, labels, probs, versions}
	if d.ridge() {
		in, cols, extra = ", $6::bool[]", ", stated", ", estimate, stated"
		insertCols += ", estimate, stated"
		selectCols += ", probability, stated"
		args = append(args, stated)
	}
	table, key := ident(d.predictions), ident(d.keyColumn)
	rows, err := tx.Query(ctx, fmt.Sprintf(`
with input as (
    select * from unnest($1::text[], $2::%[3]s[], $3::int[], $4::float8[], $5::text[]`+in+`)
        as t(event_id, key, prediction, probability, model_version`+cols+`)
), inserted as (
    insert into %[1]s (`+insertCols+`)
    select `+selectCols+` from input
    on conflict (event_id) do nothing
    returning event_id, %[2]s, prediction, probability, model_version, created_at`+extra+`
)
select *, true from inserted
union all
select event_id, %[2]s, prediction, probability, model_version, created_at`+extra+`, false
from %[1]s
where event_id = any (array(select event_id from input except all select event_id from inserted))`, table, key, keyType),
		args...)
	if err != nil {
		return nil, nil, err
	}
	stored, written := make(map[string]scored, n), map[string]bool{}
	var sc scored
	var inserted bool
	var statedCol *bool
	dest := func(tail ...any) []any {
		dst := []any{&sc.EventID, &sc.Key, &sc.PredictedLabel, &sc.Probability, &sc.ModelVersion, &sc.ScoredAt}
		if d.ridge() {
			dst = append(dst, &sc.Estimate, &statedCol)
		}
		return append(dst, tail...)
	}
	keep := func() {
		sc.ScoredAt = sc.ScoredAt.UTC().Truncate(time.Microsecond)
		sc.Stated = statedCol != nil && *statedCol
		stored[sc.EventID] = sc
		sc.Estimate, statedCol = nil, nil // each row's own
	}
	_, err = pgx.ForEachRow(rows, dest(&inserted), func() error {
		keep()
		if inserted {
			written[sc.EventID] = true
		}
		return nil
	})
	if err != nil || len(stored) == n {
		return stored, written, err
	}
	var missing []string
	for _, id := range eventIDs {
		if _, ok := stored[id]; !ok {
			missing = append(missing, id)
		}
	}
	rows, err = tx.Query(ctx, fmt.Sprintf(`select event_id, %[2]s, prediction, probability, model_version, created_at`+extra+`
		from %[1]s where event_id = any ($1::text[])`, table, key), missing)
	if err != nil {
		return nil, nil, err
	}
	_, err = pgx.ForEachRow(rows, dest(), func() error {
		keep()
		return nil
	})
	return stored, written, err
}
