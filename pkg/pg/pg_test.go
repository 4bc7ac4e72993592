package pg

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/datamill/datamill/pkg/testkit"
)

func open(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := Open(t.Context(), Config{URL: testkit.Postgres(t), MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

var migrations = fstest.MapFS{
	"0001_users.sql": {Data: []byte(`create table users (id bigint primary key, email text);`)},
	"0002_index.sql": {Data: []byte(`create index users_email on users (email);`)},
}

func TestMigrateAppliesInOrderOnce(t *testing.T) {
	pool := open(t)
	n, err := Migrate(t.Context(), pool, "loader", migrations)
	if err != nil || n != 2 {
		t.Fatalf("first Migrate = %d, %v; want 2, nil", n, err)
	}
	if n, err := Migrate(t.Context(), pool, "loader", migrations); err != nil || n != 0 {
		t.Fatalf("second Migrate = %d, %v; want 0, nil", n, err)
	}
	rows, err := pool.Query(t.Context(), `select version, name from datamill_migrations where component = 'loader' order by applied_at, version`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var v int
		var name string
		err := r.Scan(&v, &name)
		return name, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "0001_users.sql,0002_index.sql" {
		t.Errorf("recorded %v, want both in order", got)
	}
	// Another component's migrations are independent.
	if n, err := Migrate(t.Context(), pool, "ecometer", fstest.MapFS{"0001_eco.sql": {Data: []byte(`create table eco (x int);`)}}); err != nil || n != 1 {
		t.Fatalf("Migrate(ecometer) = %d, %v", n, err)
	}
}

func TestMigrateConcurrently(t *testing.T) {
	pool := open(t)
	var wg sync.WaitGroup
	applied := make([]int, 4)
	errs := make([]error, 4)
	for i := range 4 {
		wg.Go(func() { applied[i], errs[i] = Migrate(t.Context(), pool, "loader", migrations) })
	}
	wg.Wait()
	total := 0
	for i := range 4 {
		if errs[i] != nil {
			t.Fatalf("migrator %d: %v", i, errs[i])
		}
		total += applied[i]
	}
	if total != 2 {
		t.Errorf("4 concurrent migrators applied %d migrations in all, want 2", total)
	}
}

func TestMigrateRefusals(t *testing.T) {
	pool := open(t)
	if _, err := Migrate(t.Context(), pool, "loader", migrations); err != nil {
		t.Fatal(err)
	}
	changed := fstest.MapFS{
		"0001_users.sql": {Data: []byte(`create table users (id bigint primary key);`)},
		"0002_index.sql": migrations["0002_index.sql"],
	}
	if _, err := Migrate(t.Context(), pool, "loader", changed); err == nil || !strings.Contains(err.Error(), "changed") {
		t.Errorf("Migrate with an edited applied migration = %v, want a refusal", err)
	}
	bad := fstest.MapFS{"users.sql": {Data: []byte(`select 1`)}}
	if _, err := Migrate(t.Context(), pool, "x", bad); err == nil || !strings.Contains(err.Error(), "NNNN_description.sql") {
		t.Errorf("Migrate with a misnamed file = %v, want a refusal naming the pattern", err)
	}
	failing := fstest.MapFS{"0001_broken.sql": {Data: []byte(`create tabel nope (x int);`)}}
	if _, err := Migrate(t.Context(), pool, "y", failing); err == nil {
		t.Error("a failing migration was reported applied")
	}
	var n int
	if err := pool.QueryRow(t.Context(), `select count(*) from datamill_migrations where component = 'y'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("failing migration recorded %d rows (%v), want 0", n, err)
	}
}

func TestInTx(t *testing.T) {
	pool := open(t)
	ctx := t.Context()
	if _, err := pool.Exec(ctx, `create table t (x int)`); err != nil {
		t.Fatal(err)
	}
	if err := InTx(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `insert into t values (1)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	boom := InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `insert into t values (2)`); err != nil {
			return err
		}
		return context.Canceled
	})
	if boom == nil {
		t.Fatal("InTx hid fn's error")
	}
	var sum int
	if err := pool.QueryRow(ctx, `select coalesce(sum(x), 0) from t`).Scan(&sum); err != nil || sum != 1 {
		t.Errorf("sum = %d (%v), want 1: the failed transaction must roll back", sum, err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	start := time.Now()
	_, err := Open(ctx, Config{URL: "postgres://u:hunter2@127.0.0.1:1/db?sslmode=disable"})
	if err == nil {
		t.Fatal("Open succeeded on a closed port")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error leaks the password: %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("Open took %v, want it bounded by the context", time.Since(start))
	}
	if _, err := Open(t.Context(), Config{URL: "postgres://u:hunter2@[bad"}); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Open(bad URL) = %v, want an error without the password", err)
	}
}
