package pg_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/datamill/datamill/pkg/embedded"
	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/testkit"
)

func open(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pg.Open(t.Context(), pg.Config{URL: testkit.Postgres(t), MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

var migrations = fstest.MapFS{
	"0002_index.sql": {Data: []byte(`create index users_email on users (email);`)},
	"0001_users.sql": {Data: []byte(`create table users (id bigint primary key, email text);`)},
	"README.md/x":    {Data: []byte(`subdirectories are ignored`)},
}

// recorded returns the migrations recorded for component, in the order
// they were applied.
func recorded(t *testing.T, pool *pgxpool.Pool, component string) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `select name from datamill_migrations where component = $1 order by applied_at, version`, component)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestMigrateAppliesInOrderOnce(t *testing.T) {
	pool := open(t)
	if n, err := pg.Migrate(t.Context(), pool, "loader", migrations); err != nil || n != 2 {
		t.Fatalf("first Migrate = %d, %v; want 2, nil", n, err)
	}
	if n, err := pg.Migrate(t.Context(), pool, "loader", migrations); err != nil || n != 0 {
		t.Fatalf("second Migrate = %d, %v; want 0, nil", n, err)
	}
	if diff := cmp.Diff([]string{"0001_users.sql", "0002_index.sql"}, recorded(t, pool, "loader")); diff != "" {
		t.Errorf("recorded migrations (-want +got):\n%s", diff)
	}
	// A later release adds a migration: only that one is applied.
	next := fstest.MapFS{"0003_name.sql": {Data: []byte(`alter table users add column name text;`)}}
	for k, v := range migrations {
		next[k] = v
	}
	if n, err := pg.Migrate(t.Context(), pool, "loader", next); err != nil || n != 1 {
		t.Fatalf("Migrate with one new migration = %d, %v; want 1, nil", n, err)
	}
	// Another component's migrations are independent.
	eco := fstest.MapFS{"0001_eco.sql": {Data: []byte(`create table eco (x int);`)}}
	if n, err := pg.Migrate(t.Context(), pool, "ecometer", eco); err != nil || n != 1 {
		t.Fatalf("pg.Migrate(ecometer) = %d, %v; want 1, nil", n, err)
	}
}

func TestMigrateConcurrently(t *testing.T) {
	pool := open(t)
	const migrators = 4
	var wg sync.WaitGroup
	applied := make([]int, migrators)
	errs := make([]error, migrators)
	for i := range migrators {
		wg.Go(func() { applied[i], errs[i] = pg.Migrate(t.Context(), pool, "loader", migrations) })
	}
	wg.Wait()
	total := 0
	for i := range migrators {
		if errs[i] != nil {
			t.Fatalf("migrator %d: %v", i, errs[i])
		}
		total += applied[i]
	}
	if total != 2 {
		t.Errorf("%d concurrent migrators applied %d migrations in all (%v), want 2", migrators, total, applied)
	}
	if diff := cmp.Diff([]string{"0001_users.sql", "0002_index.sql"}, recorded(t, pool, "loader")); diff != "" {
		t.Errorf("recorded migrations (-want +got):\n%s", diff)
	}
}

func TestMigrateRefuses(t *testing.T) {
	pool := open(t)
	if _, err := pg.Migrate(t.Context(), pool, "loader", migrations); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		component string
		files     fstest.MapFS
		want      string // in the error
	}{
		"applied migration changed": {
			component: "loader",
			files: fstest.MapFS{
				"0001_users.sql": {Data: []byte(`create table users (id bigint primary key);`)},
				"0002_index.sql": migrations["0002_index.sql"],
			},
			want: "0001_users.sql of loader was changed after it was applied",
		},
		"version zero": {
			component: "loader",
			files: fstest.MapFS{
				"0001_users.sql": migrations["0001_users.sql"],
				"0002_index.sql": migrations["0002_index.sql"],
				"0000_zero.sql":  {Data: []byte(`select 1`)},
			},
			want: "versions start at 0001",
		},
		"file name without version": {
			component: "x",
			files:     fstest.MapFS{"users.sql": {Data: []byte(`select 1`)}},
			want:      `"users.sql" is not named NNNN_description.sql`,
		},
		"file name with upper case": {
			component: "x",
			files:     fstest.MapFS{"0001_Users.sql": {Data: []byte(`select 1`)}},
			want:      "NNNN_description.sql",
		},
		"two files with one version": {
			component: "x",
			files: fstest.MapFS{
				"0001_a.sql": {Data: []byte(`select 1`)},
				"0001_b.sql": {Data: []byte(`select 1`)},
			},
			want: "share version 0001",
		},
		"failing statement": {
			component: "y",
			files:     fstest.MapFS{"0001_broken.sql": {Data: []byte(`create tabel nope (x int);`)}},
			want:      "migration 0001_broken.sql of y",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			n, err := pg.Migrate(t.Context(), pool, tt.component, tt.files)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("pg.Migrate(%s, %v) = %d, %v; want an error containing %q", tt.component, tt.files, n, err, tt.want)
			}
			if n != 0 {
				t.Errorf("Migrate refused but reports %d applied", n)
			}
		})
	}
	if diff := cmp.Diff([]string{"0001_users.sql", "0002_index.sql"}, recorded(t, pool, "loader")); diff != "" {
		t.Errorf("after refusals, recorded migrations of loader (-want +got):\n%s", diff)
	}
	for _, c := range []string{"x", "y"} {
		if got := recorded(t, pool, c); len(got) != 0 {
			t.Errorf("refused migrations of %s were recorded: %v", c, got)
		}
	}
	t.Run("new version below the latest applied", func(t *testing.T) {
		files := fstest.MapFS{
			"0001_users.sql": migrations["0001_users.sql"],
			"0002_index.sql": migrations["0002_index.sql"],
			"0005_late.sql":  {Data: []byte(`select 1`)},
		}
		if _, err := pg.Migrate(t.Context(), pool, "z", fstest.MapFS{"0005_late.sql": files["0005_late.sql"]}); err != nil {
			t.Fatal(err)
		}
		_, err := pg.Migrate(t.Context(), pool, "z", files)
		if err == nil || !strings.Contains(err.Error(), "renumber it after 0005") {
			t.Fatalf("Migrate with migrations older than the applied 0005 = %v, want a refusal", err)
		}
	})
}

func TestInTx(t *testing.T) {
	pool := open(t)
	ctx := t.Context()
	if _, err := pool.Exec(ctx, `create table t (x int)`); err != nil {
		t.Fatal(err)
	}
	if err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `insert into t values (1)`)
		return err
	}); err != nil {
		t.Fatalf("InTx committing: %v", err)
	}
	errBoom := errors.New("boom")
	if err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `insert into t values (2)`); err != nil {
			return err
		}
		return errBoom
	}); !errors.Is(err, errBoom) {
		t.Fatalf("InTx = %v, want fn's error", err)
	}
	func() {
		defer func() { _ = recover() }()
		_ = pg.InTx(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `insert into t values (4)`); err != nil {
				return err
			}
			panic("fn panics")
		})
	}()
	var sum int
	if err := pool.QueryRow(ctx, `select coalesce(sum(x), 0) from t`).Scan(&sum); err != nil || sum != 1 {
		t.Errorf("sum = %d (%v), want 1: the failed transactions must roll back", sum, err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	start := time.Now()
	_, err := pg.Open(ctx, pg.Config{URL: "postgres://u:hunter2@127.0.0.1:1/db?sslmode=disable"})
	if err == nil {
		t.Fatal("Open succeeded on a closed port")
	}
	if !strings.Contains(err.Error(), "u@127.0.0.1:1/db unreachable") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Open on a closed port = %v, want it to name the server, not the password", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Open took %v, want it bounded by the context's 1 s", took)
	}
}

func TestOpenRefusesAtOnce(t *testing.T) {
	url := testkit.Postgres(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	missing := strings.Replace(url, "/t_", "/missing_", 1)
	if _, err := pg.Open(ctx, pg.Config{URL: missing}); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("pg.Open(unknown database) = %v, want the server's refusal", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("pg.Open(unknown database) took %v: a permanent refusal must not be retried", took)
	}
}

func TestOpenRefusesAnUnverifiedServerAtOnce(t *testing.T) {
	url := testkit.Postgres(t)
	other, err := embedded.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(url, "sslrootcert=")
	if i < 0 {
		t.Fatalf("the test database's URL does not verify the server: %s", url)
	}
	end := strings.IndexByte(url[i:], '&')
	if end < 0 {
		end = len(url) - i
	}
	wrongCA := url[:i] + "sslrootcert=" + other.CertFile() + url[i+end:]
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := pg.Open(ctx, pg.Config{URL: wrongCA}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Open(a server of another CA) = %v, want the certificate's refusal", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Open(a server of another CA) took %v: a certificate that does not verify must not be retried", took)
	}
}

func TestConfigNeverPrintsPassword(t *testing.T) {
	tests := map[string]string{
		"bad url":        "postgres://u:hunter2@[bad",
		"bad keyword":    "host=localhost password=hunter2 port=notaport",
		"bad port":       "postgres://u:hunter2@localhost:99999999/db",
		"unknown option": "postgres://u:hunter2@localhost/db?sslmode=hunter2",
	}
	for name, url := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := pg.Open(t.Context(), pg.Config{URL: url, MaxConns: 1})
			if err == nil || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("pg.Open(%s) = %v, want an error without the password", name, err)
			}
			err = pg.Config{URL: url, MaxConns: 1}.Validate()
			if err == nil || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Validate(%s) = %v, want an error without the password", name, err)
			}
		})
	}
	if err := (pg.Config{URL: "postgres://u:p@localhost/db", MaxConns: 0}).Validate(); err == nil {
		t.Error("Validate accepted DATABASE_MAX_CONNS=0")
	}
}

func TestOpenTurnsJITOffUnlessTheURLSetsIt(t *testing.T) {
	url := testkit.Postgres(t)
	for _, c := range []struct{ url, want string }{
		{url, "off"},
		{url + "&jit=on", "on"},
	} {
		pool, err := pg.Open(t.Context(), pg.Config{URL: c.url})
		if err != nil {
			t.Fatal(err)
		}
		var jit string
		err = pool.QueryRow(t.Context(), `show jit`).Scan(&jit)
		pool.Close()
		if err != nil || jit != c.want {
			t.Errorf("%s: jit = %q (%v), want %s", c.url, jit, err, c.want)
		}
	}
}
