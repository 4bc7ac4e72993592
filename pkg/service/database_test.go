package service

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/testkit"
)

// dbSettings is the configuration of a service that keeps tables: its
// first TESTER_MIGRATIONS migrations and the table things, its DDL.
type dbSettings struct {
	config.Service
	Postgres   pg.Config
	Migrations int `env:"TESTER_MIGRATIONS" envDefault:"1"`
}

func (s dbSettings) Schema(*Process) (pg.Config, Schema, error) {
	return s.Postgres, testSchema(s.Migrations), nil
}

// testSchema has n migrations, each creating a table m<i>, and creates
// the table things, when missing, as its DDL.
func testSchema(n int) Schema {
	ms := fstest.MapFS{}
	tables := pg.Tables{}
	for i := 1; i <= n; i++ {
		ms[fmt.Sprintf("%04d_m%d.sql", i, i)] = &fstest.MapFile{Data: fmt.Appendf(nil, "create table m%d (x int);", i)}
		tables[fmt.Sprintf("m%d", i)] = pg.LoaderLedger
	}
	return Schema{Component: "tester", Migrations: ms, Tables: tables, DDL: func(ctx context.Context, pool *pgxpool.Pool) (pg.Tables, error) {
		var exists bool
		if err := pool.QueryRow(ctx, `select to_regclass('things') is not null`).Scan(&exists); err != nil {
			return nil, err
		}
		if !exists {
			if _, err := pool.Exec(ctx, `create table things (id int primary key)`); err != nil {
				return nil, fmt.Errorf("create table things: %w", err)
			}
		}
		return pg.Tables{"things": pg.Dataset}, nil
	}}
}

func execAs(t *testing.T, url, sql string) error {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	_, err = conn.Exec(t.Context(), sql)
	return err
}

func TestDatabaseChangesTheSchemaAsTheOwnerAndRunsAsTheRole(t *testing.T) {
	urls := testkit.Roles(t, testkit.Postgres(t))
	loader, owner := urls[pg.RoleLoader], urls[pg.RoleOwner]
	p := &Process{Name: "tester", Log: zap.NewNop()}
	db, err := p.Database(t.Context(), pg.Config{URL: loader, OwnerURL: owner, MaxConns: 2}, testSchema(1))
	if err != nil {
		t.Fatalf("Database with the owner's URL: %v", err)
	}
	var user string
	err = db.QueryRow(t.Context(), `select current_user`).Scan(&user)
	db.Close()
	if err != nil || user != pg.RoleLoader {
		t.Errorf("the pool's role = %q (%v), want %s", user, err, pg.RoleLoader)
	}
	owners, err := pgx.CollectRows(must(t, owner, `select distinct tableowner from pg_tables
		where tablename in ('m1', 'things', 'datamill_migrations', 'datamill_batches')`), pgx.RowTo[string])
	if err != nil || len(owners) != 1 || owners[0] != pg.RoleOwner {
		t.Errorf("the tables' owners = %v (%v), want %s alone", owners, err, pg.RoleOwner)
	}
	// Granted by kind: the loader writes things and m1, may not delete.
	for sql, want := range map[string]bool{
		`insert into things values (1)`:                             true,
		`update things set id = 2`:                                  true,
		`insert into m1 values (1)`:                                 true,
		`delete from things`:                                        false,
		`truncate m1`:                                               false,
		`create table mine (x int)`:                                 false,
		`select * from datamill_migrations`:                         true,
		`insert into datamill_migrations values ('x', 1, 'x', 'x')`: false,
	} {
		if err := execAs(t, loader, sql); (err == nil) != want || err != nil && !pg.Refused(err) {
			t.Errorf("as the loader, %s = %v; want allowed %v", sql, err, want)
		}
	}

	// A restart without the owner's URL, nothing pending: no DDL needed.
	db, err = p.Database(t.Context(), pg.Config{URL: loader, MaxConns: 2}, testSchema(1))
	if err != nil {
		t.Fatalf("Database as the loader, nothing pending: %v", err)
	}
	db.Close()

	// A new release's migration, pending: refused, naming it and the
	// command that applies it.
	_, err = p.Database(t.Context(), pg.Config{URL: loader, MaxConns: 2}, testSchema(2))
	if !pg.Refused(err) || !strings.Contains(err.Error(), "0002_m2.sql") || !strings.Contains(err.Error(), "`tester migrate`") {
		t.Errorf("Database as the loader, a migration pending = %v; want a refusal naming 0002_m2.sql and `tester migrate`", err)
	}
	// A table of the DDL missing: the same, naming the table.
	if err := execAs(t, owner, `drop table things`); err != nil {
		t.Fatal(err)
	}
	_, err = p.Database(t.Context(), pg.Config{URL: loader, MaxConns: 2}, testSchema(1))
	if !pg.Refused(err) || !strings.Contains(err.Error(), "create table things") || !strings.Contains(err.Error(), "`tester migrate`") {
		t.Errorf("Database as the loader, a table missing = %v; want a refusal naming things and `tester migrate`", err)
	}

	// `tester migrate` with the owner's URL applies both; then the
	// loader starts.
	var out bytes.Buffer
	environ := []string{"DATABASE_URL=" + loader, "DATABASE_OWNER_URL=" + owner, "TESTER_MIGRATIONS=2", "LOG_FORMAT=json"}
	if err := Run(t.Context(), "tester", []string{"tester", "migrate"}, environ, &out, func(context.Context, *Process, dbSettings) error {
		t.Error("migrate ran the service")
		return nil
	}); err != nil {
		t.Fatalf("tester migrate: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), `"user":"datamill_owner"`) {
		t.Errorf("tester migrate logged %s, want it to say it ran as %s", out.String(), pg.RoleOwner)
	}
	db, err = p.Database(t.Context(), pg.Config{URL: loader, MaxConns: 2}, testSchema(2))
	if err != nil {
		t.Fatalf("Database as the loader after migrate: %v", err)
	}
	db.Close()
	if err := execAs(t, loader, `insert into m2 values (1); insert into things values (1)`); err != nil {
		t.Errorf("the loader after migrate: %v", err)
	}
}

func TestMigrateOfAServiceWithoutTables(t *testing.T) {
	var out bytes.Buffer
	if err := Run(t.Context(), "tester", []string{"tester", "migrate"}, []string{"NEEDED=x"}, &out, noStep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "nothing to migrate") {
		t.Errorf("migrate printed %q, want nothing to migrate", out.String())
	}
}

// must runs a query as url's role and returns its rows.
func must(t *testing.T, url, sql string) pgx.Rows {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.WithoutCancel(t.Context())) })
	rows, err := conn.Query(t.Context(), sql)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}
