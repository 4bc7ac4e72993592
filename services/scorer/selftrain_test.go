package main

import (
	"encoding/csv"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/services/scorer/internal/model"
)

// labelledUsers creates a users table with the columns training reads and
// returns a pool on its database and a function that loads n generated
// labelled users into it.
func labelledUsers(t *testing.T) (*pgxpool.Pool, func(n int)) {
	t.Helper()
	pool, err := migrated(t, testkit.Postgres(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(t.Context(), `create table users (id bigint primary key, age integer, gender text, country text,
		signup_date date, last_login date, account_status text, monthly_spend numeric(12, 2))`); err != nil {
		t.Fatal(err)
	}
	return pool, func(n int) {
		t.Helper()
		f, err := os.Open(usersCSV(t, n))
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs[1:] {
			if _, err := pool.Exec(t.Context(), `insert into users values ($1, nullif($2, '')::integer, $3, $4, $5, $6, $7, $8)
				on conflict (id) do nothing`, r[0], r[1], r[2], r[3], r[5], r[6], r[7], r[8]); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// registered is a row of the model registry.
type registered struct {
	version, reason string
	baseline        *string
	promoted        bool
	rows            int
	auc             float64
}

func registry(t *testing.T, pool *pgxpool.Pool) []registered {
	t.Helper()
	rows, err := pool.Query(t.Context(), `select version, reason, baseline_version, promoted, rows, (test_metrics->>'roc_auc')::float8
		from scorer_models order by id`)
	if err != nil {
		t.Fatal(err)
	}
	var out []registered
	var r registered
	if _, err := pgx.ForEachRow(rows, []any{&r.version, &r.reason, &r.baseline, &r.promoted, &r.rows, &r.auc}, func() error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// Without a model the scorer trains one once the table holds the declared
// number of labelled rows, promotes it and records it; it trains again
// once the model is older than the retrain period, and the new model,
// no worse on its held-out split, is promoted after the first.
func TestSelfTrainingTrainsOnceDueAndRecordsEveryModel(t *testing.T) {
	pool, load := labelledUsers(t)
	dir := t.TempDir()
	ms := &models{dataset: "users", dir: dir, name: "churn", log: zap.NewNop(), info: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x"}, []string{"dataset", "version"})}
	tr := newSelfTrainer(usersDataset(t), pool, ms, dir, zap.NewNop())
	// The clock starts now: a model's age counts from when it was made,
	// by the wall clock.
	clock := time.Now().UTC()
	tr.now = func() time.Time { return clock }

	load(150) // fewer than the declared min_rows, 200
	if reg, err := tr.cycle(t.Context()); err != nil || reg != nil {
		t.Fatalf("150 labelled users: trained %+v (%v), want nothing before 200", reg, err)
	}
	if path, _ := model.Latest(dir, "churn"); path != "" {
		t.Fatalf("an artefact %s before the table held enough rows", path)
	}
	load(1000)
	reg, err := tr.cycle(t.Context())
	if err != nil || reg == nil || !reg.Promoted || reg.Reason != "first model" {
		t.Fatalf("1000 labelled users: %+v, %v; want a first model, promoted", reg, err)
	}
	if err := ms.poll(); err != nil || ms.current.Load() == nil {
		t.Fatalf("the scorer loads no promoted model (%v)", err)
	}
	first := ms.current.Load()
	if first.Training.Rows != 1000 || first.Dataset != "users" {
		t.Errorf("first model trained on %d rows of %s", first.Training.Rows, first.Dataset)
	}
	if reg, err := tr.cycle(t.Context()); err != nil || reg != nil {
		t.Fatalf("a fresh model: trained again %+v (%v)", reg, err)
	}

	clock = time.Now().UTC().Add(24*time.Hour + time.Second) // the declared retrain period after the model was made
	reg, err = tr.cycle(t.Context())
	if err != nil || reg == nil {
		t.Fatalf("a day later: %+v, %v; want a retrained model", reg, err)
	}
	if !reg.Promoted || reg.BaselineVersion != first.Version || reg.Baseline == nil || !strings.Contains(reg.Reason, "held-out ROC-AUC") {
		t.Errorf("retrained on the same rows: %+v; want it promoted over %s, no worse", reg, first.Version)
	}
	if err := ms.poll(); err != nil || ms.current.Load().Version <= first.Version {
		t.Errorf("the retrained model is not the one applied (%v)", err)
	}
	got := registry(t, pool)
	if len(got) != 2 || got[0].version != first.Version || !got[0].promoted || got[0].rows != 1000 || got[0].auc != first.Test.AUC ||
		got[1].baseline == nil || *got[1].baseline != first.Version || got[1].version != ms.current.Load().Version {
		t.Errorf("registry %+v", got)
	}
}

// A scorer that starts with an artefact in its directory, which it has yet
// to load, does not train one of its own over it, however many labelled
// rows the table holds: the artefact is the model it applies.
func TestSelfTrainingLeavesAnArtefactToTheScorer(t *testing.T) {
	pool, load := labelledUsers(t)
	dir := t.TempDir()
	given := trainModel(t, dir)
	load(500)
	ms := &models{dataset: "users", dir: dir, name: "churn", log: zap.NewNop(), info: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x"}, []string{"dataset", "version"})}
	tr := newSelfTrainer(usersDataset(t), pool, ms, dir, zap.NewNop())
	if reg, err := tr.cycle(t.Context()); err != nil || reg != nil {
		t.Fatalf("an artefact not loaded yet: trained %+v (%v), want nothing", reg, err)
	}
	if err := ms.poll(); err != nil || ms.current.Load().Version != given.Version {
		t.Errorf("the scorer applies %+v (%v), want the artefact given, %s", ms.current.Load(), err, given.Version)
	}
}

// A candidate replaces the current model only if it scores no worse on
// the candidate's held-out split.
func TestJudgeComparesOnTheHeldOutSplit(t *testing.T) {
	records, err := readCSV(usersCSV(t, 2000), mustDecl(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	good, split, err := model.TrainModel(records, model.Config{Dataset: "users", Decl: mustDecl(t)})
	if err != nil {
		t.Fatal(err)
	}
	blind := *good // the same model with no weights: every user scores the same
	blind.Weights, blind.Version = make([]float64, len(good.Weights)), "20000101T000000Z"
	blindCandidate := blind
	blindCandidate.Test = blind.EvaluateOn(split.TestRows, split.TestY)
	ridge := *good
	ridge.Kind = model.Ridge
	for name, c := range map[string]struct {
		candidate, current *model.Model
		promoted           bool
	}{
		"no current model":      {good, nil, true},
		"better than current":   {good, &blind, true},
		"worse than current":    {&blindCandidate, good, false},
		"the same as current":   {good, good, true},
		"another kind of model": {good, &ridge, true},
	} {
		if r := judge(c.candidate, c.current, split); r.Promoted != c.promoted {
			t.Errorf("%s: promoted %v (%s), want %v", name, r.Promoted, r.Reason, c.promoted)
		}
	}
}

func mustDecl(t *testing.T) *model.Decl {
	t.Helper()
	d, _, _, _, err := declaration("", "users", trainSettings{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// By default the scorer needs no `scorer train`: while the users table
// holds fewer labelled rows than the declared min_rows it waits, not
// ready, saying how many it holds and needs; once it holds them, it trains
// the declared model, loads it and becomes ready.
func TestSelfTrainingMakesTheScorerReady(t *testing.T) {
	s := newScorerStack(t)
	f, err := os.Open(usersCSV(t, 500))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	// The rows of one call commit together: training sees all or none.
	insert := func(rows [][]string) {
		t.Helper()
		tx, err := s.db.Begin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(t.Context()) }()
		for _, r := range rows {
			if _, err := tx.Exec(t.Context(), `insert into users (id, age, gender, country, signup_date, last_login, account_status, monthly_spend,
				event_id, ingested_at, content_hash, created_event_id)
				values ($1::bigint + 1, nullif($2, '')::integer, $3, $4, $5, $6, $7, $8, 'ev-' || $1, now(), 'h', 'ev-' || $1)`,
				r[0], r[1], r[2], r[3], r[5], r[6], r[7], r[8]); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	insert(recs[1:151])
	dir := t.TempDir()
	svc := testkit.Start(t, run, append(s.env, "SCORER_MODEL_DIR="+dir, "SCORER_MODEL_POLL=50ms", "SCORER_SELF_TRAIN_INTERVAL=100ms"))
	waiting := "self-training once the users table holds 200 labelled rows; it holds 150"
	for deadline := time.Now().Add(30 * time.Second); ; {
		ready, body := svc.Ready(t)
		if strings.Contains(body, waiting) {
			if ready {
				t.Fatalf("with 150 labelled rows: ready, %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with 150 labelled rows: %s, want it to say %q", body, waiting)
		}
		time.Sleep(20 * time.Millisecond)
	}
	insert(recs[151:])
	for deadline := time.Now().Add(time.Minute); ; {
		ready, body := svc.Ready(t)
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with 500 labelled rows: not ready within a minute: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	path, err := model.Latest(dir, "churn")
	if err != nil || path == "" {
		t.Fatalf("no self-trained artefact in %s (%v)", dir, err)
	}
	// The artefact is saved before its registry row is written: the
	// scorer may take the model, and be ready, a moment before the row
	// is there.
	var promoted int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		err := s.db.QueryRow(t.Context(), `select count(*) from scorer_models where promoted and rows = 500`).Scan(&promoted)
		if err == nil && promoted == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d promoted models of 500 rows in the registry (%v), want 1", promoted, err)
		}
	}
}
