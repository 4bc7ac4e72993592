package main

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/schemas/users"
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
	pool   *pgxpool.Pool
	models *models
	log    *zap.Logger
	// table is the dataset's table; topic its scored topic.
	table, topic string
	encoder      stage.Encoder[users.Scored]
	keys         interface{ Append(dst, key []byte) []byte }
	// produce publishes records and returns once the broker has them all.
	produce func(context.Context, ...*kgo.Record) error
	age     time.Duration
	page    int
	// reconciled counts the rows given a prediction.
	reconciled prometheus.Counter
	// drift, when set, hears of every row scored.
	drift *drift
}

// usersSelect reads the rows of the users table the model needs, in the
// order scanUser reads them; $1 is the key after which the page starts, $2
// the page size, $3 the age in seconds below which rows are left to the
// stream. A row's prediction is a scalar subquery, looked up by index for
// each row: as an anti-join the planner may hash the whole predictions
// table for every page.
const usersSelect = `
select u.id, u.event_id, u.age, u.gender, u.country, u.signup_date, u.last_login, u.monthly_spend::text
from %s u
where u.id > $1
  and u.updated_at < now() - make_interval(secs => $3)
  and (select true from predictions p where p.event_id = u.event_id) is null
order by u.id
limit $2`

// scanUser reads a row of usersSelect into what the stream reads of a
// clean record.
func scanUser(rows pgx.CollectableRow) (users.Clean, error) {
	var c users.Clean
	var spend *string
	if err := rows.Scan(&c.ID, &c.EventID, &c.Age, &c.Gender, &c.Country, &c.SignupDate, &c.LastLogin, &spend); err != nil {
		return c, err
	}
	if spend != nil {
		r, ok := new(big.Rat).SetString(*spend)
		if !ok {
			return c, fmt.Errorf("user %d: monthly_spend %q is no number", c.ID, *spend)
		}
		c.MonthlySpend = &r
	}
	return c, nil
}

// run reconciles at once, then every interval until ctx ends; a pass
// that fails is logged and tried again at the next.
func (r *reconciler) run(ctx context.Context, every time.Duration) {
	for {
		if n, err := r.pass(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("reconciliation pass failed; trying again at the next", zap.String("dataset", r.table),
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
		return 0, fmt.Errorf("reconcile %s: %w", r.table, err)
	}
	defer conn.Release()
	lock := "datamill.scorer.reconcile." + r.table
	var locked bool
	if err := conn.QueryRow(ctx, `select pg_try_advisory_lock(hashtext($1))`, lock).Scan(&locked); err != nil {
		return 0, fmt.Errorf("reconcile %s: lock: %w", r.table, err)
	}
	if !locked {
		return 0, nil // another scorer is reconciling
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `select pg_advisory_unlock(hashtext($1))`, lock); err != nil {
			// The session keeps the lock: leave it to end with the
			// connection.
			conn.Conn().PgConn().Close(context.WithoutCancel(ctx))
		}
	}()

	m := r.models.current.Load()
	query := fmt.Sprintf(usersSelect, pgx.Identifier{r.table}.Sanitize())
	total := 0
	for after := int64(math.MinInt64); ; {
		rows, err := conn.Query(ctx, query, after, r.page, r.age.Seconds())
		if err != nil {
			return total, fmt.Errorf("reconcile %s: read rows after %d: %w", r.table, after, err)
		}
		page, err := pgx.CollectRows(rows, scanUser)
		if err != nil {
			return total, fmt.Errorf("reconcile %s: read rows after %d: %w", r.table, after, err)
		}
		if len(page) == 0 {
			break
		}
		n, err := r.score(ctx, conn.Conn(), m, page)
		total += n
		if err != nil {
			return total, err
		}
		after = page[len(page)-1].ID
		if len(page) < r.page {
			break
		}
	}
	if total > 0 {
		r.log.Info("reconciled rows without a prediction", zap.String("dataset", r.table), zap.Int("rows", total),
			zap.String("model_version", m.Version))
	}
	return total, nil
}

// score writes the predictions of page with model m in a transaction that
// commits only once their scored records are published, and returns how
// many predictions it wrote.
func (r *reconciler) score(ctx context.Context, conn *pgx.Conn, m *model.Model, page []users.Clean) (int, error) {
	preds := make([]prediction, len(page))
	records := make([]model.Record, len(page))
	for i := range page {
		records[i] = cleanUsers.Record(&page[i])
		preds[i] = predict(m, &page[i])
	}
	r.drift.observe(m, records)
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("reconcile %s: begin transaction: %w", r.table, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	stored, written, err := writePredictions(ctx, tx, preds)
	if err != nil {
		return 0, fmt.Errorf("reconcile %s: write %d predictions: %w", r.table, len(page), err)
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
			return 0, fmt.Errorf("reconcile %s: encode scored record of event %s: %w", r.table, p.eventID, err)
		}
		recs = append(recs, &kgo.Record{Topic: r.topic, Key: r.keys.Append(nil, strconv.AppendInt(nil, sc.ID, 10)), Value: b})
	}
	if err := r.produce(ctx, recs...); err != nil {
		return 0, fmt.Errorf("reconcile %s: publish %d scored records to %s: %w", r.table, len(recs), r.topic, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("reconcile %s: commit %d predictions: %w", r.table, len(preds), err)
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
