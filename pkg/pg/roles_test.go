package pg_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/testkit"
)

// poolOf opens a pool of url for the test.
func poolOf(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pg.Open(t.Context(), pg.Config{URL: url, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// code returns the SQLSTATE of err, "" for none.
func code(err error) string {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pgErr.Code
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// owned sets up a provisioned database whose owner created a dataset
// table, a predictions table and pkg/pg's own tables, granted by kind, and
// returns the URLs of its roles.
func owned(t *testing.T) map[string]string {
	t.Helper()
	urls := testkit.Roles(t, testkit.Postgres(t))
	owner := poolOf(t, urls[pg.RoleOwner])
	ms := fstest.MapFS{"0001_users.sql": {Data: []byte(`
create table users (id bigint primary key, name text);
create table users_predictions (id bigint generated always as identity primary key, user_id bigint references users (id), p float8);
create view users_named as select id, name from users;
create table lake_objects (k text primary key);
create table lake_audit (k text);
create table eco_stage_totals (k text primary key, n int);`)}}
	if _, err := pg.Migrate(t.Context(), owner, "test", ms); err != nil {
		t.Fatalf("migrate as the owner: %v", err)
	}
	err := pg.Grant(t.Context(), owner, pg.Tables{
		"users": pg.Dataset, "users_predictions": pg.Predictions, "users_named": pg.View,
		"datamill_batches": pg.BatchAudit, "datamill_migrations": pg.Migrations,
		"lake_objects": pg.LakeObjects, "lake_audit": pg.LakeAudit, "eco_stage_totals": pg.Ecometer,
	})
	if err != nil {
		t.Fatalf("grant as the owner: %v", err)
	}
	return urls
}

func TestRolesMayDoOnlyWhatTheirGrantsSay(t *testing.T) {
	urls := owned(t)
	tests := []struct {
		name, role, sql string
		want            string // SQLSTATE, "" for success
	}{
		{"loader inserts", pg.RoleLoader, `insert into users values (1, 'a')`, ""},
		{"loader upserts", pg.RoleLoader, `insert into users values (1, 'b') on conflict (id) do update set name = excluded.name`, ""},
		{"loader stages in a temporary table", pg.RoleLoader, `create temp table s (like users); truncate s`, ""},
		{"loader deletes", pg.RoleLoader, `delete from users`, pg.InsufficientPrivilege},
		{"loader truncates", pg.RoleLoader, `truncate users`, pg.InsufficientPrivilege},
		{"loader creates a table", pg.RoleLoader, `create table t (x int)`, pg.InsufficientPrivilege},
		{"loader drops a table", pg.RoleLoader, `drop table users_predictions`, pg.InsufficientPrivilege},
		{"loader writes predictions", pg.RoleLoader, `insert into users_predictions (user_id, p) values (1, 0.5)`, pg.InsufficientPrivilege},
		{"scorer reads users", pg.RoleScorer, `select * from users`, ""},
		{"scorer writes predictions", pg.RoleScorer, `insert into users_predictions (user_id, p) values (1, 0.5)`, ""},
		{"scorer updates users", pg.RoleScorer, `update users set name = 'x'`, pg.InsufficientPrivilege},
		{"scorer inserts users", pg.RoleScorer, `insert into users values (2, 'c')`, pg.InsufficientPrivilege},
		{"scorer creates a temporary table", pg.RoleScorer, `create temp table s (x int)`, pg.InsufficientPrivilege},
		{"reader reads", pg.RoleReader, `select * from users, users_predictions, users_named, datamill_batches`, ""},
		{"reader inserts", pg.RoleReader, `insert into users values (3, 'd')`, pg.InsufficientPrivilege},
		{"ecometer reads users", pg.RoleEcometer, `select * from users`, pg.InsufficientPrivilege},
		{"loader audits a batch", pg.RoleLoader, `insert into datamill_batches (stage, topic, partition, first_offset, last_offset, rows) values ('loader', 'clean.users', 0, 0, 0, 1)`, ""},
		{"loader reads the audit", pg.RoleLoader, `select * from datamill_batches`, pg.InsufficientPrivilege},
		{"owner deletes", pg.RoleOwner, `delete from users_predictions`, ""},
		{"lake records an object", pg.RoleLake, `insert into lake_objects values ('a') on conflict do nothing`, ""},
		{"lake rewrites an object", pg.RoleLake, `update lake_objects set k = 'b'`, pg.InsufficientPrivilege},
		{"lake audits", pg.RoleLake, `insert into lake_audit values ('a')`, ""},
		{"lake reads its audit", pg.RoleLake, `select * from lake_audit`, pg.InsufficientPrivilege},
		{"lake reads users", pg.RoleLake, `select * from users`, pg.InsufficientPrivilege},
		{"ecometer adds to its totals", pg.RoleEcometer, `insert into eco_stage_totals values ('a', 1) on conflict (k) do update set n = eco_stage_totals.n + 1`, ""},
		{"ecometer deletes its totals", pg.RoleEcometer, `delete from eco_stage_totals`, pg.InsufficientPrivilege},
		{"reader reads the lake's audit", pg.RoleReader, `select * from lake_audit, lake_objects, eco_stage_totals`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := pgx.Connect(t.Context(), urls[tc.role])
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.WithoutCancel(t.Context()))
			_, err = conn.Exec(t.Context(), tc.sql)
			if got := code(err); got != tc.want {
				t.Errorf("%s: %s = %v (SQLSTATE %q), want SQLSTATE %q", tc.role, tc.sql, err, got, tc.want)
			}
		})
	}
}

func TestBatchAuditIsAppendOnlyEvenForItsOwner(t *testing.T) {
	urls := owned(t)
	loader := poolOf(t, urls[pg.RoleLoader])
	batches := pg.Batches("loader", 5, func(i int) (string, int32, int64) {
		return "clean.users", int32(i % 2), int64(10 + i) // #nosec G115 -- small
	})
	err := pg.InTx(t.Context(), loader, func(tx pgx.Tx) error { return pg.AuditBatch(t.Context(), tx, batches...) })
	if err != nil {
		t.Fatal(err)
	}
	owner := poolOf(t, urls[pg.RoleOwner])
	rows, err := owner.Query(t.Context(), `select who, stage, topic, partition, first_offset, last_offset, rows from datamill_batches order by partition`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Who, Stage, Topic   string
		Partition           int32
		FirstOffset, LastOf int64
		Rows                int32
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		t.Fatal(err)
	}
	want := []row{
		{pg.RoleLoader, "loader", "clean.users", 0, 10, 14, 3},
		{pg.RoleLoader, "loader", "clean.users", 1, 11, 13, 2},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("datamill_batches = %+v, want %+v", got, want)
	}
	for _, sql := range []string{
		`update datamill_batches set rows = 1`,
		`update datamill_batches set rows = 1 where false`,
		`delete from datamill_batches`,
		`truncate datamill_batches`,
	} {
		if _, err := owner.Exec(t.Context(), sql); code(err) != pg.InsufficientPrivilege {
			t.Errorf("the owner's %s = %v, want SQLSTATE 42501", sql, err)
		}
	}
	var n int
	if err := owner.QueryRow(t.Context(), `select count(*) from datamill_batches`).Scan(&n); err != nil || n != 2 {
		t.Errorf("rows after the refusals = %d (%v), want 2", n, err)
	}
}

func TestMigrateNeedsNoPrivilegeWhenNothingIsPending(t *testing.T) {
	urls := testkit.Roles(t, testkit.Postgres(t))
	owner, loader := poolOf(t, urls[pg.RoleOwner]), poolOf(t, urls[pg.RoleLoader])
	ms := fstest.MapFS{"0001_t.sql": {Data: []byte(`create table t (x int);`)}}
	if _, err := pg.Migrate(t.Context(), loader, "loader", ms); !pg.Refused(err) || !strings.Contains(err.Error(), "datamill_migrations") {
		t.Errorf("Migrate as the loader on an empty database = %v, want a refusal naming datamill_migrations", err)
	}
	if n, err := pg.Migrate(t.Context(), owner, "loader", ms); err != nil || n != 1 {
		t.Fatalf("Migrate as the owner = %d, %v; want 1, nil", n, err)
	}
	if err := pg.Grant(t.Context(), owner, pg.Tables{"datamill_migrations": pg.Migrations}); err != nil {
		t.Fatal(err)
	}
	if n, err := pg.Migrate(t.Context(), loader, "loader", ms); err != nil || n != 0 {
		t.Errorf("Migrate as the loader, nothing pending = %d, %v; want 0, nil", n, err)
	}
	next := fstest.MapFS{"0002_u.sql": {Data: []byte(`create table u (x int);`)}}
	next["0001_t.sql"] = ms["0001_t.sql"]
	if name, err := pg.Pending(t.Context(), loader, "loader", next); err != nil || name != "0002_u.sql of loader" {
		t.Errorf("Pending = %q, %v; want 0002_u.sql of loader", name, err)
	}
	if _, err := pg.Migrate(t.Context(), loader, "loader", next); !pg.Refused(err) || !strings.Contains(err.Error(), "0002_u.sql") {
		t.Errorf("Migrate as the loader with one pending = %v, want a refusal naming 0002_u.sql", err)
	}
}

func TestProvisionSendsNoPasswordAndTheVerifierAuthenticates(t *testing.T) {
	cluster := testkit.PostgresCluster(t)
	// Every statement is logged: the passwords must not be in any.
	superuser := poolOf(t, cluster.URL()+"&options=-c%20log_statement%3Dall")
	passwords := map[string]string{}
	for _, role := range pg.Roles() {
		passwords[role] = "pw-" + role + "-Quite$ecret'1"
	}
	for range 2 { // idempotent
		if err := pg.Provision(t.Context(), superuser, passwords); err != nil {
			t.Fatal(err)
		}
	}
	log, err := os.ReadFile(cluster.LogFile())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "PASSWORD 'SCRAM-SHA-256$4096:") && !strings.Contains(string(log), "password 'SCRAM-SHA-256$4096:") {
		t.Fatalf("postgres.log holds no statement setting a verifier: was log_statement on?\n%s", log)
	}
	for role, pw := range passwords {
		if strings.Contains(string(log), pw) || strings.Contains(string(log), strings.ReplaceAll(pw, "'", "''")) {
			t.Errorf("postgres.log holds the password of %s", role)
		}
	}
	// The verifier is the server's: the cluster takes SCRAM passwords
	// only, so the role logs in with its password and not with another.
	base, err := url.Parse(cluster.URL())
	if err != nil {
		t.Fatal(err)
	}
	login := func(pw string) error {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		u := *base
		u.User = url.UserPassword(pg.RoleLoader, pw)
		conn, err := pgx.Connect(ctx, u.String())
		if err == nil {
			conn.Close(ctx)
		}
		return err
	}
	if err := login("wrong"); code(err) != "28P01" {
		t.Fatalf("a wrong password = %v, want SQLSTATE 28P01", err)
	}
	if err := login(passwords[pg.RoleLoader]); err != nil {
		t.Errorf("the loader's own password: %v", err)
	}
}

// Services starting together grant on the same tables at once.
func TestConcurrentGrantsOfOneTable(t *testing.T) {
	urls := owned(t)
	owner := poolOf(t, urls[pg.RoleOwner])
	tables := pg.Tables{"datamill_migrations": pg.Migrations, "datamill_batches": pg.BatchAudit, "users": pg.Dataset}
	errs := make(chan error, 8)
	for range cap(errs) {
		go func() { errs <- pg.Grant(t.Context(), owner, tables) }()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Errorf("a concurrent Grant: %v", err)
		}
	}
}

// A foreign key to a table changes that table's catalog row, as a GRANT on
// it does: a scorer creating its predictions table while a loader grants
// on the dataset's must not fail with "tuple concurrently updated". Both
// hold the schema's lock.
func TestForeignKeysAndGrantsOfOneTableAtOnce(t *testing.T) {
	urls := owned(t)
	owner := poolOf(t, urls[pg.RoleOwner])
	// Tables no foreign key points to yet: the first one to do so marks
	// the table's row, as the scorer's predictions table does the
	// dataset's table the loader has just made and grants on.
	const rounds = 20
	for i := range rounds {
		if _, err := owner.Exec(t.Context(), fmt.Sprintf(`create table parent_%d (id bigint primary key)`, i)); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, 2*rounds)
	for i := range rounds {
		go func() { errs <- pg.Grant(t.Context(), owner, pg.Tables{fmt.Sprintf("parent_%d", i): pg.Dataset}) }()
		go func() {
			errs <- pg.InTx(t.Context(), owner, func(tx pgx.Tx) error {
				if err := pg.LockSchema(t.Context(), tx); err != nil {
					return err
				}
				_, err := tx.Exec(t.Context(), fmt.Sprintf(`create table child_%d (id bigint primary key, parent_id bigint references parent_%d (id))`, i, i))
				return err
			})
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Errorf("a grant or a foreign key at the same time: %v", err)
		}
	}
}

// What a deployment created as its one superuser before it had roles
// becomes the owner's, so that the owner can change it and grant it.
func TestAdoptHandsTheSuperusersTablesToTheOwner(t *testing.T) {
	db := testkit.Postgres(t)
	superuser := poolOf(t, db)
	if _, err := pg.Migrate(t.Context(), superuser, "test", fstest.MapFS{"0001_t.sql": {Data: []byte(`
create table t (id bigint generated always as identity primary key, x int);
create view v as select x from t;`)}}); err != nil {
		t.Fatal(err)
	}
	urls := testkit.Roles(t, db)
	owner := poolOf(t, urls[pg.RoleOwner])
	if _, err := owner.Exec(t.Context(), `alter table t add column y int`); code(err) != pg.InsufficientPrivilege {
		t.Fatalf("the owner altering the superuser's table before Adopt = %v, want SQLSTATE 42501", err)
	}
	for range 2 { // idempotent
		if err := pg.Adopt(t.Context(), superuser); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := superuser.Query(t.Context(), `select c.relname || ' ' || r.rolname from pg_class c join pg_roles r on r.oid = c.relowner
		where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'v', 'S') order by 1`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"datamill_batches datamill_owner", "datamill_batches_id_seq datamill_owner", "datamill_migrations datamill_owner",
		"t datamill_owner", "t_id_seq datamill_owner", "v datamill_owner",
	}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("owners = %v, want %v", got, want)
	}
	if _, err := owner.Exec(t.Context(), `alter table t add column y int; insert into t (x) values (1)`); err != nil {
		t.Errorf("the owner altering its adopted table: %v", err)
	}
	if err := pg.Grant(t.Context(), owner, pg.Tables{"t": pg.Dataset, "v": pg.View}); err != nil {
		t.Errorf("the owner granting its adopted table: %v", err)
	}
}
