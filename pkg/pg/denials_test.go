package pg_test

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/testkit"
)

// TestSecurityDenialsAreInThePostgresLog makes each denial of the issue's
// list, on a cluster of the test's own, and expects the server's error and,
// in its postgres.log, the line that names who was refused: a role's
// statement refused for want of a privilege, a login without TLS, a login
// with a wrong password.
func TestSecurityDenialsAreInThePostgresLog(t *testing.T) {
	cluster := testkit.PostgresCluster(t)
	urls := testkit.Roles(t, cluster.URL())
	owner := poolOf(t, urls[pg.RoleOwner])
	if _, err := owner.Exec(t.Context(), `create table users (id bigint primary key, name text);
		create table users_predictions (user_id bigint references users (id), p float8)`); err != nil {
		t.Fatalf("create the tables as the owner: %v", err)
	}
	if err := pg.Grant(t.Context(), owner, pg.Tables{"users": pg.Dataset, "users_predictions": pg.Predictions}); err != nil {
		t.Fatal(err)
	}
	insecure := func(role string, edit func(u *url.URL, q url.Values)) string {
		u, err := url.Parse(urls[role])
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		edit(u, q)
		u.RawQuery = q.Encode()
		return u.String()
	}
	tests := []struct {
		name, role string
		url        string // to connect with, the role's own when empty
		sql        string // to run once connected, if it does
		sqlState   string
		log        string // the denial's line in postgres.log, after role@datamill
	}{
		{
			name: "the loader deleting", role: pg.RoleLoader, sql: `delete from users`,
			sqlState: pg.InsufficientPrivilege, log: "ERROR:  permission denied for table users",
		},
		{
			name: "the loader truncating", role: pg.RoleLoader, sql: `truncate users`,
			sqlState: pg.InsufficientPrivilege, log: "ERROR:  permission denied for table users",
		},
		{
			name: "the scorer updating users", role: pg.RoleScorer, sql: `update users set name = 'x'`,
			sqlState: pg.InsufficientPrivilege, log: "ERROR:  permission denied for table users",
		},
		{
			name: "a reader inserting", role: pg.RoleReader, sql: `insert into users values (1, 'a')`,
			sqlState: pg.InsufficientPrivilege, log: "ERROR:  permission denied for table users",
		},
		{
			name: "a connection without TLS", role: pg.RoleLoader,
			url: insecure(pg.RoleLoader, func(_ *url.URL, q url.Values) {
				q.Set("sslmode", "disable")
				q.Del("sslrootcert")
			}),
			sqlState: "28000",
			log:      `FATAL:  no pg_hba.conf entry for host "127.0.0.1", user "datamill_loader", database "datamill", no encryption`,
		},
		{
			name: "a wrong password", role: pg.RoleScorer,
			url: insecure(pg.RoleScorer, func(u *url.URL, _ url.Values) {
				u.User = url.UserPassword(pg.RoleScorer, "change-me")
			}),
			sqlState: "28P01",
			log:      `FATAL:  password authentication failed for user "datamill_scorer"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			from := logSize(t, cluster.LogFile())
			err := attempt(t, cmp.Or(tc.url, urls[tc.role]), tc.sql)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != tc.sqlState {
				t.Fatalf("%s: %v, want SQLSTATE %s", tc.name, err, tc.sqlState)
			}
			t.Logf("%s: %v", tc.name, err)
			// The denial's line names the role and the database.
			line := awaitLogLine(t, cluster.LogFile(), from, tc.role+"@datamill 127.0.0.1 ", tc.log)
			t.Logf("postgres.log: %s", line)
		})
	}
	// A refused statement is not logged: a statement may hold a password.
	log, err := os.ReadFile(cluster.LogFile())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		if tc.sql != "" && strings.Contains(string(log), tc.sql) {
			t.Errorf("postgres.log holds the refused statement %q", tc.sql)
		}
	}
	// Each login says who it was and that it used TLS.
	want := "connection authorized: user=" + pg.RoleOwner + " database=datamill SSL enabled"
	if !strings.Contains(string(log), want) {
		t.Errorf("postgres.log has no line %q", want)
	}
	// The grants are role changes, audited by pgaudit with their author.
	if cluster.Audited() {
		awaitLogLine(t, cluster.LogFile(), 0, pg.RoleOwner+"@datamill 127.0.0.1 ", "AUDIT: SESSION,", ",ROLE,GRANT,", `grant select, insert, update on ""users"" to datamill_loader`)
	}
}

// attempt connects with rawURL and runs sql, if any; it returns the first
// error.
func attempt(t *testing.T, rawURL, sql string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if sql == "" {
		return nil
	}
	_, err = conn.Exec(ctx, sql)
	return err
}

// logSize is the size of the server's log, where the next line will be.
func logSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// awaitLogLine waits for a line of the log at path, after offset from, that
// has every one of want, and returns it.
func awaitLogLine(t testing.TB, path string, from int64, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f, err := os.Open(path) // #nosec G304 -- the test cluster's log
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(io.NewSectionReader(f, from, 1<<30))
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(b)) {
			all := true
			for _, w := range want {
				all = all && strings.Contains(line, w)
			}
			if all {
				return strings.TrimSpace(line)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres.log has no line with %q after offset %d:\n%s", want, from, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
