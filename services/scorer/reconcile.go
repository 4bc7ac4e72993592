package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/services/scorer/internal/model"
)

// reconciler scores the rows of a dataset's table whose latest event (the
// row's event_id) has no prediction: rows the stream never saw, as when
// the loader committed a row and its persisted record was lost (a Kafka
// that forgot its topics, `datamill dev` restarted on its data directory).
//
// A pass reads the table in key order, a page at a time, each row's
// prediction looked up by index. Each page's missing predictions are
// written in a database transaction that stays open while their scored
// records are published, and is committed once the broker has them all: a
// crash before the commit leaves the rows without a prediction, so the
// next pass scores and publishes them again. What a crash can cost is
// therefore a duplicate scored record, never a missing prediction or a
// missing scored record.
//
// Rows applied less than age ago are left to the stream, which will score
// them from their persisted records: reconciling them would publish their
// scored records twice. One scorer reconciles a table at a time (a
// PostgreSQL advisory lock); the others skip the pass.
type reconciler struct {
	dataset *dataset
	pool    *pgxpool.Pool
	models  *models
	log     *zap.Logger
	// topic is the dataset's scored topic.
	topic   string
	encoder stage.Encoder[scored]
	keys    interface{ Append(dst, key []byte) []byte }
	// produce publishes records and returns once the broker has them all.
	produce func(context.Context, ...*kgo.Record) error
	age     time.Duration
	page    int
	// reconciled counts the rows given a prediction.
	reconciled prometheus.Counter
	// drift, when set, hears of every row scored.
	drift *drift
}

// rowsSelect reads the rows of a dataset's table the model needs: the
// key, the event id, then the columns the model's features read. %[1]s is
// the table, %[2]s its key, %[3]s the feature columns, %[4]s the
// predictions table. $1 says the page is the first, $2 is the key after
// which the page starts otherwise, $3 the page size, $4 the age in seconds
// below which rows are left to the stream. A row's prediction is a scalar
// subquery, looked up by index for each row: as an anti-join the planner
// may hash the whole predictions table for every page.
const rowsSelect = `
select u.%[2]s, u.event_id%[3]s
from %[1]s u
where ($1 or u.%[2]s > $2)
  and u.updated_at < now() - make_interval(secs => $4)
  and (select true from %[4]s p where p.event_id = u.event_id) is null
order by u.%[2]s
limit $3`

// row is a row of rowsSelect: its key, its event id and what the model
// reads of it.
type row struct {
	key     any
	eventID string
	record  model.Map
}

// selectRows is the rowsSelect of the dataset and the columns it reads,
// in order: the label's for a ridge model (whether the row stated its
// own), then the features'.
func (d *dataset) selectRows() (string, []string) {
	var cols []string
	if d.ridge() {
		cols = append(cols, d.decl.Label.Column)
	}
	var b strings.Builder
	for _, f := range d.decl.Features {
		if !slices.Contains(cols, f.Column) {
			cols = append(cols, f.Column)
		}
	}
	for _, c := range cols {
		b.WriteString(", u.")
		b.WriteString(ident(c))
	}
	return fmt.Sprintf(rowsSelect, ident(d.table), ident(d.key), b.String(), ident(d.predictions)), cols
}

// scanRow reads a row of rowsSelect whose feature columns are cols.
func (d *dataset) scanRow(rows pgx.Rows, cols []string) (row, error) {
	values, err := rows.Values()
	if err != nil {
		return row{}, err
	}
	r := row{key: values[0], record: make(model.Map, len(cols))}
	if k, ok := r.key.(int32); ok {
		r.key = int64(k)
	}
	r.eventID, _ = values[1].(string)
	for i, c := range cols {
		v := values[i+2]
		if n, ok := v.(pgtype.Numeric); ok {
			f, err := n.Float64Value()
			if err != nil {
				return r, fmt.Errorf("row %v: column %s: %w", r.key, c, err)
			}
			v = nil
			if f.Valid {
				v = f.Float64
			}
		}
		r.record[c] = v
	}
	return r, nil
}

// run reconciles at once, then every interval until ctx ends; a pass
// that fails is logged and tried again at the next.
func (r *reconciler) run(ctx context.Context, every time.Duration) {
	for {
		if n, err := r.pass(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("reconciliation pass failed; trying again at the next", zap.String("dataset", r.dataset.name),
				zap.Int("rows", n), zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// pass reconciles the whole table once and returns how many rows it gave
// a prediction.
func (r *reconciler) pass(ctx context.Context) (int, error) {
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("reconcile %s: %w", r.dataset.table, err)
	}
	defer conn.Release()
	lock := "datamill.scorer.reconcile." + r.dataset.table
	var locked bool
	if err := conn.QueryRow(ctx, `select pg_try_advisory_lock(hashtext($1))`, lock).Scan(&locked); err != nil {
		return 0, fmt.Errorf("reconcile %s: lock: %w", r.dataset.table, err)
	}
	if !locked {
		return 0, nil // another scorer is reconciling
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `select pg_advisory_unlock(hashtext($1))`, lock); err != nil {
			// The session keeps the lock: leave it to end with the
			// connection.
			_ = conn.Conn().PgConn().Close(context.WithoutCancel(ctx))
		}
	}()

	m := r.models.current.Load()
	query, cols := r.dataset.selectRows()
	total := 0
	var after any
	for first := true; ; first = false {
		rows, err := conn.Query(ctx, query, first, after, r.page, r.age.Seconds())
		if err != nil {
			return total, fmt.Errorf("reconcile %s: read rows after %v: %w", r.dataset.table, after, err)
		}
		var page []row
		for rows.Next() {
			rw, err := r.dataset.scanRow(rows, cols)
			if err != nil {
				rows.Close()
				return total, fmt.Errorf("reconcile %s: %w", r.dataset.table, err)
			}
			page = append(page, rw)
		}
		if err := rows.Err(); err != nil {
			return total, fmt.Errorf("reconcile %s: read rows after %v: %w", r.dataset.table, after, err)
		}
		if len(page) == 0 {
			break
		}
		n, err := r.score(ctx, conn.Conn(), m, page)
		total += n
		if err != nil {
			return total, err
		}
		after = page[len(page)-1].key
		if len(page) < r.page {
			break
		}
	}
	if total > 0 {
		r.log.Info("reconciled rows without a prediction", zap.String("dataset", r.dataset.name), zap.Int("rows", total),
			zap.String("model_version", m.Version))
	}
	return total, nil
}

// score writes the predictions of page with model m in a transaction that
// commits only once their scored records are published, and returns how
// many predictions it wrote.
func (r *reconciler) score(ctx context.Context, conn *pgx.Conn, m *model.Model, page []row) (int, error) {
	preds := make([]prediction, len(page))
	records := make([]model.Record, len(page))
	for i, rw := range page {
		records[i] = rw.record
		preds[i] = predict(m, rw.record, rw.key, rw.eventID)
		preds[i].stated = r.dataset.stated(rw.record)
	}
	r.drift.observe(m, records)
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("reconcile %s: begin transaction: %w", r.dataset.table, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	stored, written, err := r.dataset.writePredictions(ctx, tx, preds)
	if err != nil {
		return 0, fmt.Errorf("reconcile %s: write %d predictions: %w", r.dataset.table, len(page), err)
	}
	// A prediction found rather than written was committed by the stream
	// since the page was read: the stream publishes its scored record.
	recs := make([]*kgo.Record, 0, len(written))
	for _, p := range preds {
		if !written[p.eventID] {
			continue
		}
		sc := stored[p.eventID]
		b, err := r.encoder.AppendEncode(nil, &sc)
		if err != nil {
			return 0, fmt.Errorf("reconcile %s: encode scored record of event %s: %w", r.dataset.table, p.eventID, err)
		}
		recs = append(recs, &kgo.Record{Topic: r.topic, Key: r.keys.Append(nil, recordKey(sc.Key)), Value: b})
	}
	if err := r.produce(ctx, recs...); err != nil {
		return 0, fmt.Errorf("reconcile %s: publish %d scored records to %s: %w", r.dataset.table, len(recs), r.topic, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("reconcile %s: commit %d predictions: %w", r.dataset.table, len(preds), err)
	}
	r.reconciled.Add(float64(len(written)))
	return len(written), nil
}

// produceSync is reconciler.produce for a client.
func produceSync(cl *kgo.Client) func(context.Context, ...*kgo.Record) error {
	return func(ctx context.Context, recs ...*kgo.Record) error {
		return cl.ProduceSync(ctx, recs...).FirstErr()
	}
}
