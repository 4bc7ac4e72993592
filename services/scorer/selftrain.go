package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/datamill/datamill/services/scorer/internal/model"
)

// selfTrainer trains a dataset's declared model by itself: once no model
// is applied and the dataset's table holds the declared min_rows labelled
// rows, then whenever the current model is older than the declared
// retrain period. A new model is promoted — written into the model
// directory, where the scorer swaps it in — only if, on its own held-out
// split, it scores no worse than the current model does on that split
// (ROC-AUC for a logistic model, RMSE for a ridge one). Every model it
// trains is recorded in scorer_models. One scorer trains a dataset at a
// time (a PostgreSQL advisory lock).
type selfTrainer struct {
	dataset, key string
	decl         *model.Decl
	pool         *pgxpool.Pool
	models       *models
	dir          string
	log          *zap.Logger
	now          func() time.Time
	// last is when this trainer last trained; promoted, the version it
	// last promoted, until the scorer applies it.
	last     time.Time
	promoted string
	// labelled is how many labelled rows the table held at the last
	// check; -1 before the first.
	labelled atomic.Int64
}

// newSelfTrainer is the self-trainer of a dataset's declared model,
// whose artefacts ms applies.
func newSelfTrainer(d *dataset, pool *pgxpool.Pool, ms *models, dir string, log *zap.Logger) *selfTrainer {
	t := &selfTrainer{dataset: d.name, key: d.key, decl: d.decl, pool: pool, models: ms, dir: dir, log: log, now: time.Now}
	t.labelled.Store(-1)
	ms.waiting = t.waiting
	return t
}

// waiting says how many labelled rows the table holds and how many
// training needs, as of the last check.
func (t *selfTrainer) waiting() string {
	n := t.labelled.Load()
	if n < 0 {
		return fmt.Sprintf("self-training once the %s table holds %d labelled rows", t.dataset, t.decl.Train.MinRows)
	}
	return fmt.Sprintf("self-training once the %s table holds %d labelled rows; it holds %d", t.dataset, t.decl.Train.MinRows, n)
}

// run trains whenever it is due,
// checking every interval until ctx ends; a cycle that fails is logged and
// tried again at the next.
func (t *selfTrainer) run(ctx context.Context, every time.Duration) {
	for {
		if _, err := t.cycle(ctx); err != nil && ctx.Err() == nil {
			t.log.Warn("self-training failed; trying again at the next check", zap.String("dataset", t.dataset), zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// due says whether it is time to train, given the current model.
func (t *selfTrainer) due(ctx context.Context, cur *model.Model) (bool, error) {
	if cur == nil {
		if t.promoted != "" {
			return false, nil // the scorer has yet to load it
		}
		// An artefact in the directory is the model the scorer is about
		// to apply (a scorer restarting, or a model trained by hand).
		if path, err := model.Latest(t.dir, t.models.name); err != nil || path != "" {
			return false, err
		}
		var n int
		err := t.pool.QueryRow(ctx, fmt.Sprintf("select count(*) from %s where %s is not null",
			pgx.Identifier{t.dataset}.Sanitize(), pgx.Identifier{t.decl.Label.Column}.Sanitize())).Scan(&n)
		if err != nil {
			return false, fmt.Errorf("count the labelled rows of %s: %w", t.dataset, err)
		}
		t.labelled.Store(int64(n))
		return n >= t.decl.Train.MinRows, nil
	}
	if t.decl.Train.Retrain <= 0 {
		return false, nil
	}
	since := cur.Created
	if t.last.After(since) {
		since = t.last
	}
	return t.now().Sub(since) >= t.decl.Train.Retrain, nil
}

// cycle trains once if it is due and returns the registry's record of it,
// nil when nothing was due.
func (t *selfTrainer) cycle(ctx context.Context) (*registration, error) {
	cur := t.models.current.Load()
	if cur != nil && cur.Version == t.promoted {
		t.promoted = ""
	}
	if ok, err := t.due(ctx, cur); !ok || err != nil {
		return nil, err
	}
	conn, err := t.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	lock := "datamill.scorer.train." + t.dataset
	var locked bool
	if err := conn.QueryRow(ctx, `select pg_try_advisory_lock(hashtext($1))`, lock).Scan(&locked); err != nil || !locked {
		return nil, err // another scorer is training
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `select pg_advisory_unlock(hashtext($1))`, lock); err != nil {
			// The session keeps the lock: leave it to end with the
			// connection.
			_ = conn.Conn().PgConn().Close(context.WithoutCancel(ctx))
		}
	}()

	records, err := readLabelled(ctx, conn, t.dataset, t.key, t.decl)
	if err != nil {
		return nil, err
	}
	m, split, err := model.TrainModel(records, model.Config{Dataset: t.dataset, Decl: t.decl})
	t.last = t.now()
	if err != nil {
		return nil, fmt.Errorf("train %s: %w", t.dataset, err)
	}
	if cur != nil {
		m.Version = model.VersionAfter(cur.Version, m.Created) // the scorer applies the newest
	}
	reg := judge(m, cur, split)
	if reg.Promoted {
		if reg.Artefact, err = m.Save(t.dir); err != nil {
			return nil, fmt.Errorf("save the model of %s: %w", t.dataset, err)
		}
		t.promoted = m.Version
	}
	if err := reg.record(ctx, t.pool, t.dataset, m); err != nil {
		return nil, err
	}
	t.log.Info("self-trained a model", zap.String("dataset", t.dataset), zap.String("version", m.Version),
		zap.Int("rows", m.Training.Rows), zap.Bool("promoted", reg.Promoted), zap.String("reason", reg.Reason))
	return &reg, nil
}

// registration is what the registry keeps of a model beside the model's
// own metrics: whether it was promoted, why, and what it was compared with.
type registration struct {
	Promoted        bool
	Reason          string
	BaselineVersion string
	Baseline        *model.Metrics
	Artefact        string
}

// judge decides whether candidate replaces current: it does when there is
// no current model, when the current one is of another kind, or when on
// the candidate's held-out split the candidate scores no worse.
func judge(candidate, current *model.Model, split *model.Split) registration {
	if current == nil {
		return registration{Promoted: true, Reason: "first model"}
	}
	r := registration{BaselineVersion: current.Version}
	if current.Kind != candidate.Kind {
		r.Promoted, r.Reason = true, fmt.Sprintf("the declaration changed the kind from %s", current.Kind)
		return r
	}
	base := current.EvaluateOn(split.TestRows, split.TestY)
	r.Baseline = &base
	if candidate.Kind == model.Ridge {
		r.Promoted = candidate.Test.RMSE <= base.RMSE
		r.Reason = fmt.Sprintf("held-out RMSE %.6g, current model %.6g", candidate.Test.RMSE, base.RMSE)
	} else {
		r.Promoted = candidate.Test.AUC >= base.AUC
		r.Reason = fmt.Sprintf("held-out ROC-AUC %.6f, current model %.6f", candidate.Test.AUC, base.AUC)
	}
	return r
}

// record inserts the registration of m.
func (r registration) record(ctx context.Context, pool *pgxpool.Pool, dataset string, m *model.Model) error {
	test, err := json.Marshal(m.Test)
	if err != nil {
		return err
	}
	var baseline, version, artefact any
	if r.Baseline != nil {
		b, err := json.Marshal(r.Baseline)
		if err != nil {
			return err
		}
		baseline = string(b)
	}
	if r.BaselineVersion != "" {
		version = r.BaselineVersion
	}
	if r.Artefact != "" {
		artefact = r.Artefact
	}
	_, err = pool.Exec(ctx, `insert into scorer_models (dataset, name, version, kind, trained_at, rows, data_fingerprint,
		test_metrics, baseline_version, baseline_metrics, promoted, reason, artefact)
		values ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10::jsonb, $11, $12, $13)`,
		dataset, m.Name, m.Version, m.Kind, m.Created, m.Training.Rows, m.Training.Fingerprint,
		string(test), version, baseline, r.Promoted, r.Reason, artefact)
	if err != nil {
		return fmt.Errorf("record model %s %s: %w", m.Name, m.Version, err)
	}
	return nil
}
