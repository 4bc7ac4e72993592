package main

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/schemas/users"
	"github.com/datamill/datamill/services/scorer/internal/model"
)

// loaded inserts users [from, to) as the loader does, applied age ago, and
// returns the clean records they hold: rows whose persisted records the
// scorer never saw, as a crash between the loader's database commit and its
// Kafka commit leaves them when the Kafka that would replay the batch is
// gone.
func (s *scorerStack) loaded(t *testing.T, from, to int, age time.Duration) map[string]users.Clean {
	t.Helper()
	ref := time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)
	out := map[string]users.Clean{}
	for id := from; id < to; id++ {
		signup, login := ref.AddDate(0, 0, -400-id%300), ref.AddDate(0, 0, -(id%200))
		c := users.Clean{
			ID: int64(id), Age: new(int32(20 + id%50)), Gender: new([]string{"female", "male", "other"}[id%3]),
			Country: new([]string{"FR", "DE", "IT"}[id%3]), SignupDate: &signup, LastLogin: &login,
			EventID: fmt.Sprintf("ev-%d", id),
		}
		if id%5 != 0 { // some without a spend
			c.MonthlySpend = new(big.NewRat(int64(1000+id%7000), 100))
		}
		var spend *string
		if c.MonthlySpend != nil {
			spend = new((*c.MonthlySpend).FloatString(2))
		}
		if _, err := s.db.Exec(t.Context(), `insert into users (id, age, gender, country, signup_date, last_login, monthly_spend,
			event_id, ingested_at, content_hash, created_event_id, updated_at)
			values ($1, $2, $3, $4, $5, $6, $7::numeric, $8, $9, 'h', $8, now() - make_interval(secs => $10))`,
			c.ID, c.Age, c.Gender, c.Country, c.SignupDate, c.LastLogin, spend, c.EventID, ref, age.Seconds()); err != nil {
			t.Fatal(err)
		}
		out[c.EventID] = c
	}
	return out
}

// streamPrediction is the prediction the stream makes of clean record c
// of users with model m.
func streamPrediction(t testing.TB, m *model.Model, c users.Clean) prediction {
	t.Helper()
	d := usersDataset(t)
	clean := cleanOf(persistedBatch(t, d, c)[0].Value)
	return predict(m, d.record(clean), d.keyOf(clean), c.EventID)
}

// newReconciler is the scorer's reconciliation of the users table with
// the model of dir, publishing through produce (nil: to the stack's
// broker).
func (s *scorerStack) newReconciler(t *testing.T, dir string, produce func(context.Context, ...*kgo.Record) error) *reconciler {
	t.Helper()
	pool, err := migrated(t, config.ToMap(s.env)["DATABASE_URL"], 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ms := &models{dataset: "users", dir: dir, name: "churn", log: zap.NewNop(), info: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x"}, []string{"dataset", "version"})}
	if err := ms.poll(); err != nil {
		t.Fatal(err)
	}
	d := usersDataset(t)
	enc, err := d.codecs(t.Context(), s.reg)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := serde.NewKeyCodec(t.Context(), s.reg, "scored.users")
	if err != nil {
		t.Fatal(err)
	}
	if produce == nil {
		cl, err := kafka.NewClient(s.kcfg, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		if err := kafka.EnsureTopics(t.Context(), cl, s.kcfg, "scored.users"); err != nil {
			t.Fatal(err)
		}
		produce = produceSync(cl)
	}
	return &reconciler{
		dataset: d, pool: pool, models: ms, log: zap.NewNop(), topic: "scored.users", encoder: enc, keys: keys,
		produce: produce, age: time.Minute, page: reconcilePage,
		reconciled: prometheus.NewCounter(prometheus.CounterOpts{Name: "z"}),
	}
}

// TestReconcileScoresRowsWithoutAPrediction: rows whose latest event has
// no prediction end with exactly one prediction and one scored record
// each, made by the current model through the stream's feature path; a
// second pass does nothing; rows that had their prediction, and rows
// applied too recently (left to the stream), are untouched.
func TestReconcileScoresRowsWithoutAPrediction(t *testing.T) {
	s := newScorerStack(t)
	dir := t.TempDir()
	m := trainModel(t, dir)
	const n = 2500 // more than two pages
	lost := s.loaded(t, 1, n+1, time.Hour)
	recent := s.loaded(t, n+1, n+11, 0)
	// Users 1-100 were scored by the stream; user 200's prediction is of
	// an older event than the one its row holds.
	if _, err := s.db.Exec(t.Context(), `insert into predictions (event_id, user_id, prediction, probability, model_version)
		select 'ev-' || g, g, 1, 0.75, 'v0' from generate_series(1, 100) g
		union all select 'ev-old-200', 200, 1, 0.75, 'v0'`); err != nil {
		t.Fatal(err)
	}
	r := s.newReconciler(t, dir, nil)

	got, err := r.pass(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	const want = n - 100
	if got != want || testutil.ToFloat64(r.reconciled) != want {
		t.Errorf("pass reconciled %d rows (metric %v), want %d", got, testutil.ToFloat64(r.reconciled), want)
	}

	rows, err := s.db.Query(t.Context(), `select event_id, user_id, prediction, probability, model_version from predictions`)
	if err != nil {
		t.Fatal(err)
	}
	byEvent := map[string]prediction{}
	var p prediction
	_, err = pgx.ForEachRow(rows, []any{&p.eventID, &p.key, &p.label, &p.probability, &p.version}, func() error {
		if _, dup := byEvent[p.eventID]; dup {
			t.Errorf("event %s has two predictions", p.eventID)
		}
		byEvent[p.eventID] = p
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, c := range lost {
		got, ok := byEvent[id]
		switch {
		case !ok:
			t.Errorf("event %s (user %d) has no prediction", id, c.ID)
		case c.ID <= 100:
			if got.version != "v0" || got.probability != 0.75 {
				t.Errorf("the stream's prediction of event %s was changed: %+v", id, got)
			}
		case got != streamPrediction(t, m, c):
			t.Errorf("event %s: prediction %+v, want the stream's for the same record, %+v", id, got, streamPrediction(t, m, c))
		}
	}
	for id := range recent {
		if _, ok := byEvent[id]; ok {
			t.Errorf("event %s, applied just now, was reconciled: the stream would score it again", id)
		}
	}
	if len(byEvent) != n+1 {
		t.Errorf("%d predictions, want %d", len(byEvent), n+1)
	}

	codec, err := serde.NewCodec[users.Scored](t.Context(), s.reg, "scored.users", schemas.MustSchema("users/scored"))
	if err != nil {
		t.Fatal(err)
	}
	checkScored := func() {
		t.Helper()
		seen := map[string]bool{}
		for _, rec := range testkit.Consume(t, s.kcfg, "scored.users", want) {
			var sc users.Scored
			if err := codec.Decode(rec.Value, &sc); err != nil {
				t.Fatal(err)
			}
			p := byEvent[sc.EventID]
			if seen[sc.EventID] || p.key != any(sc.ID) || sc.Probability != p.probability || sc.PredictedLabel != p.label || sc.ModelVersion != p.version {
				t.Errorf("scored record %+v: twice (%v) or not the stored prediction %+v", sc, seen[sc.EventID], p)
			}
			if want := fmt.Sprintf("%d", sc.ID); !strings.HasSuffix(string(rec.Key), want) {
				t.Errorf("scored record of user %d has key %q", sc.ID, rec.Key)
			}
			seen[sc.EventID] = true
		}
	}
	checkScored()

	// A second pass finds nothing.
	if got, err := r.pass(t.Context()); got != 0 || err != nil {
		t.Errorf("second pass reconciled %d rows (%v), want none", got, err)
	}
	checkScored()
}

// TestReconcileCommitsOnlyWhatWasPublished: when the scored records of a
// page cannot be published, its predictions are not committed either, so
// that the rows are found and scored again at the next pass; a row never
// keeps a prediction whose scored record is missing.
func TestReconcileCommitsOnlyWhatWasPublished(t *testing.T) {
	s := newScorerStack(t)
	dir := t.TempDir()
	trainModel(t, dir)
	s.loaded(t, 1, 1501, time.Hour)
	down := errors.New("broker unreachable")
	r := s.newReconciler(t, dir, func(context.Context, ...*kgo.Record) error { return down })
	if got, err := r.pass(t.Context()); !errors.Is(err, down) || got != 0 {
		t.Fatalf("pass with the broker down = %d, %v; want 0 rows and its error", got, err)
	}
	var count int
	if err := s.db.QueryRow(t.Context(), `select count(*) from predictions`).Scan(&count); err != nil || count != 0 {
		t.Fatalf("%d predictions (%v) committed without their scored records", count, err)
	}
	r = s.newReconciler(t, dir, nil)
	if got, err := r.pass(t.Context()); got != 1500 || err != nil {
		t.Fatalf("pass with the broker back = %d, %v; want 1500 rows", got, err)
	}
	testkit.Consume(t, s.kcfg, "scored.users", 1500)
}

// TestReconcileReadsPredictionsByIndexOnly checks that a pass looks each
// row's prediction up by index instead of scanning the predictions table
// for every page.
func TestReconcileReadsPredictionsByIndexOnly(t *testing.T) {
	s := newScorerStack(t)
	dir := t.TempDir()
	trainModel(t, dir)
	s.loaded(t, 1, 2001, time.Hour)
	if _, err := s.db.Exec(t.Context(), `insert into predictions (event_id, user_id, prediction, probability, model_version)
		select 'old-' || g, 1 + g % 2000, 0, 0.5, 'v0' from generate_series(1, 20000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(t.Context(), `analyze predictions; analyze users`); err != nil {
		t.Fatal(err)
	}
	r := s.newReconciler(t, dir, nil)
	// One connection, so that the statistics flushes below are its own.
	pool, err := migrated(t, config.ToMap(s.env)["DATABASE_URL"], 1)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	r.pool = pool
	scanned := func() int64 {
		t.Helper()
		// The flush happens once the backend is idle after this statement.
		if _, err := pool.Exec(t.Context(), `select pg_stat_force_next_flush()`); err != nil {
			t.Fatal(err)
		}
		var n int64
		if err := pool.QueryRow(t.Context(), `select seq_tup_read from pg_stat_user_tables where relname = 'predictions'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := scanned()
	if got, err := r.pass(t.Context()); got != 2000 || err != nil {
		t.Fatalf("pass = %d, %v; want 2000 rows", got, err)
	}
	if n := scanned() - before; n != 0 {
		t.Errorf("a pass read %d predictions rows by scanning: want index lookups only", n)
	}
}

// TestAWriteWaitingOnAnotherGetsItsPrediction: predictions of the same
// events written at once by the stream and the reconciliation (or two
// scorers): the write that waited for the other's transaction returns the
// prediction that transaction committed, instead of failing the batch
// because its statement's snapshot predates it.
func TestAWriteWaitingOnAnotherGetsItsPrediction(t *testing.T) {
	s := newScorerStack(t)
	s.loaded(t, 1, 3, time.Hour)
	pool, err := migrated(t, config.ToMap(s.env)["DATABASE_URL"], 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	d := usersDataset(t)
	first := []prediction{{eventID: "ev-1", key: int64(1), label: 1, probability: 0.9, version: "first"}}
	second := append([]prediction{{eventID: "ev-1", key: int64(1), label: 0, probability: 0.1, version: "second"}},
		prediction{eventID: "ev-2", key: int64(2), label: 0, probability: 0.2, version: "second"})

	tx, err := pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(t.Context())) }()
	if _, w, err := d.writePredictions(t.Context(), tx, first); err != nil || !w["ev-1"] {
		t.Fatalf("first write = %v, %v", w, err)
	}
	var pid int
	if err := tx.QueryRow(t.Context(), `select pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		stored  map[string]scored
		written map[string]bool
		err     error
	}
	done := make(chan outcome, 1)
	go func() {
		var o outcome
		o.err = pg.InTx(t.Context(), pool, func(tx pgx.Tx) error {
			var err error
			o.stored, o.written, err = d.writePredictions(t.Context(), tx, second)
			return err
		})
		done <- o
	}()
	deadline := time.Now().Add(30 * time.Second)
	for blocked := false; !blocked; {
		if err := s.db.QueryRow(t.Context(), `select exists (select 1 from pg_stat_activity where $1 = any (pg_blocking_pids(pid)))`, pid).Scan(&blocked); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the second write was not blocked by the first within 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	var got outcome
	select {
	case got = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the second write did not end within 30 s of the first's commit")
	}
	if got.err != nil {
		t.Fatal(got.err)
	}
	if len(got.written) != 1 || !got.written["ev-2"] || got.stored["ev-1"].ModelVersion != "first" || got.stored["ev-2"].ModelVersion != "second" {
		t.Errorf("second write wrote %v and returned %+v; want ev-1 as the first write committed it and ev-2 written", got.written, got.stored)
	}
}
