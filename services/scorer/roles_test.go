package main

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datamill/datamill/pkg/config"

	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/testkit"
)

// The scorer runs as its own role, the migration owner creating its
// tables: its predictions land, each batch has its audit rows, and its
// role may not update the users it reads. (The reconciliation, which
// writes predictions outside any batch, is off: every prediction comes
// from a batch.)
func TestScoresAsItsOwnRoleAndAuditsEveryBatch(t *testing.T) {
	if testkit.RealBroker() {
		t.Fatal("this test uses the fixed topic names of the users dataset: run it on the embedded broker")
	}
	env := testkit.Stack(t, true)
	m := config.ToMap(env)
	superuser := m["DATABASE_URL"]
	roles := testkit.Roles(t, superuser)
	// The users table, as the loader's migration creates it.
	owner, err := pg.Open(t.Context(), pg.Config{URL: roles[pg.RoleOwner], MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	if _, err := owner.Exec(t.Context(), usersTable); err != nil {
		t.Fatal(err)
	}
	if err := pg.Grant(t.Context(), owner, pg.Tables{"users": pg.Dataset}); err != nil {
		t.Fatal(err)
	}
	db, err := pgx.Connect(t.Context(), superuser)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.WithoutCancel(t.Context()))
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: m["SCHEMA_REGISTRY_URL"]})
	if err != nil {
		t.Fatal(err)
	}
	s := &scorerStack{env: env, kcfg: testkit.KafkaConfig(t, m, 3), reg: reg, db: db}
	const n = 200
	s.persist(t, 1, n+1)
	dir := t.TempDir()
	trainModel(t, dir)

	asScorer := slices.DeleteFunc(slices.Clone(testkit.As(env, "scorer")), func(kv string) bool { return strings.HasPrefix(kv, "DATABASE_") })
	asScorer = append(asScorer, "DATABASE_URL="+roles[pg.RoleScorer], "DATABASE_OWNER_URL="+roles[pg.RoleOwner],
		"SCORER_MODEL_DIR="+dir, "SCORER_MODEL_POLL=20ms", "SCORER_SELF_TRAIN=false", "SCORER_RECONCILE_INTERVAL=0", "STAGE_BATCH_MAX=50", "STAGE_INSTANCE_ID=t")
	svc := testkit.Start(t, run, asScorer)
	testkit.Consume(t, s.kcfg, "scored.users", n)
	for deadline := time.Now().Add(time.Minute); ; {
		var count int
		if err := db.QueryRow(t.Context(), `select count(*) from predictions`).Scan(&count); err != nil {
			t.Fatal(err)
		}
		if count == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d predictions within a minute; want %d", count, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := svc.Stop(t); err != nil {
		t.Fatalf("scorer: %v", err)
	}

	var tableOwner, who string
	var rows int
	if err := db.QueryRow(t.Context(), `select tableowner from pg_tables where tablename = 'predictions'`).Scan(&tableOwner); err != nil || tableOwner != pg.RoleOwner {
		t.Errorf("the predictions table's owner = %q (%v), want %s", tableOwner, err, pg.RoleOwner)
	}
	if err := db.QueryRow(t.Context(), `select coalesce(sum(rows), 0), coalesce(string_agg(distinct who, ','), '')
		from datamill_batches where stage = 'scorer' and topic = 'persisted.users'`).Scan(&rows, &who); err != nil || rows != n || who != pg.RoleScorer {
		t.Errorf("datamill_batches of the scorer: %d rows by %q (%v); want %d by %s", rows, who, err, n, pg.RoleScorer)
	}
	scorer, err := pgx.Connect(t.Context(), roles[pg.RoleScorer])
	if err != nil {
		t.Fatal(err)
	}
	defer scorer.Close(context.WithoutCancel(t.Context()))
	for _, sql := range []string{
		`update users set age = 1`,
		`delete from predictions`,
		`insert into users (id, event_id, ingested_at, content_hash, created_event_id) values (9999, 'e', now(), 'h', 'e')`,
	} {
		if _, err := scorer.Exec(t.Context(), sql); !pg.Refused(err) {
			t.Errorf("as the scorer, %s = %v; want SQLSTATE 42501", sql, err)
		}
	}
}

// `scorer migrate` creates the scorer's tables and the predictions table
// of a dataset whose table is there, as the migration owner, and exits.
func TestMigrateCreatesThePredictionsTableAsTheOwner(t *testing.T) {
	superuser := testkit.Postgres(t)
	roles := testkit.Roles(t, superuser)
	owner, err := pg.Open(t.Context(), pg.Config{URL: roles[pg.RoleOwner], MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	if _, err := owner.Exec(t.Context(), usersTable); err != nil {
		t.Fatal(err)
	}
	env := []string{"DATABASE_URL=" + roles[pg.RoleScorer], "DATABASE_OWNER_URL=" + roles[pg.RoleOwner], "KAFKA_BROKERS=127.0.0.1:1", "SCHEMA_REGISTRY_URL=http://127.0.0.1:1"}
	if err := run(t.Context(), []string{"scorer", "migrate"}, env, io.Discard); err != nil {
		t.Fatalf("scorer migrate: %v", err)
	}
	rows, err := owner.Query(t.Context(), `select tablename || ' ' || tableowner from pg_tables
		where tablename in ('predictions', 'scorer_drift', 'scorer_models') order by 1`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	want := []string{"predictions datamill_owner", "scorer_drift datamill_owner", "scorer_models datamill_owner"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("tables after scorer migrate = %v (%v), want %v", got, err, want)
	}
	scorer, err := pgx.Connect(t.Context(), roles[pg.RoleScorer])
	if err != nil {
		t.Fatal(err)
	}
	defer scorer.Close(context.WithoutCancel(t.Context()))
	if _, err := scorer.Exec(t.Context(), `select * from predictions, scorer_models, scorer_drift`); err != nil {
		t.Errorf("the scorer reading its tables after migrate: %v", err)
	}
}
