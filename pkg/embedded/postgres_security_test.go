package embedded_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/datamill/datamill/pkg/embedded"
	"github.com/datamill/datamill/pkg/testkit"
)

func connect(t testing.TB, rawURL string) (*pgx.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, rawURL)
	if err == nil {
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
	}
	return conn, err
}

func scalar(t testing.TB, conn *pgx.Conn, sql string) string {
	t.Helper()
	var got string
	if err := conn.QueryRow(t.Context(), sql).Scan(&got); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return got
}

// withURL returns raw with edit applied to its parsed form.
func withURL(t testing.TB, raw string, edit func(u *url.URL, q url.Values)) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	edit(u, q)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestPostgresRefusesInsecureClients connects as a careless or hostile
// client would and expects the server's (or the TLS layer's) refusal.
func TestPostgresRefusesInsecureClients(t *testing.T) {
	pg := testkit.PostgresCluster(t)
	otherCA, err := embedded.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		url       string
		sqlState  string // the server's refusal, or
		x509Error bool   // the client's, of the server's certificate
		message   []string
	}{
		"without TLS": {
			url: withURL(t, pg.URL(), func(_ *url.URL, q url.Values) {
				q.Set("sslmode", "disable")
				q.Del("sslrootcert")
			}),
			sqlState: "28000",
			message:  []string{"no pg_hba.conf entry", "no encryption"},
		},
		"a wrong password": {
			url:      withURL(t, pg.URL(), func(u *url.URL, _ url.Values) { u.User = url.UserPassword("datamill", "change-me") }),
			sqlState: "28P01",
			message:  []string{"password authentication failed"},
		},
		"no password": {
			url:      withURL(t, pg.URL(), func(u *url.URL, _ url.Values) { u.User = url.User("datamill") }),
			sqlState: "28P01",
		},
		"the Unix socket without a password": {
			url:      "postgres://datamill@/datamill?host=" + url.QueryEscape(pg.Dir()) + "&port=" + strconv.Itoa(pg.Port()),
			sqlState: "28P01",
		},
		"another CA": {
			url:       withURL(t, pg.URL(), func(_ *url.URL, q url.Values) { q.Set("sslrootcert", otherCA.CertFile()) }),
			x509Error: true,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := connect(t, tt.url)
			if err == nil {
				t.Fatalf("connected with %s", name)
			}
			var pgErr *pgconn.PgError
			if tt.sqlState != "" && (!errors.As(err, &pgErr) || pgErr.Code != tt.sqlState) {
				t.Errorf("connect with %s = %v, want SQLSTATE %s", name, err, tt.sqlState)
			}
			var unknownCA x509.UnknownAuthorityError
			if tt.x509Error && !errors.As(err, &unknownCA) {
				t.Errorf("connect with %s = %v, want an unknown-authority error", name, err)
			}
			for _, m := range tt.message {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("connect with %s = %v, want %q in it", name, err, m)
				}
			}
			if strings.Contains(err.Error(), pg.Password()) {
				t.Errorf("the error names the password: %v", err)
			}
		})
	}

	// The cluster's own URLs get in, over TLS 1.2 or later.
	for name, u := range map[string]string{"URL": pg.URL(), "PassFileURL": pg.PassFileURL("datamill")} {
		conn, err := connect(t, u)
		if err != nil {
			t.Fatalf("connect with %s: %v", name, err)
		}
		if got := scalar(t, conn, `select ssl::text || ' ' || version from pg_stat_ssl where pid = pg_backend_pid()`); got != "true TLSv1.3" && got != "true TLSv1.2" {
			t.Errorf("%s's connection: ssl, version = %q, want true and TLS 1.2 or 1.3", name, got)
		}
	}
	if strings.Contains(pg.PassFileURL("datamill"), pg.Password()) {
		t.Errorf("PassFileURL %s holds the password", pg.PassFileURL("datamill"))
	}
	conn, err := connect(t, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	// Nothing in pg_hba.conf trusts or lets TCP in without TLS.
	rules := scalar(t, conn, `select string_agg(type || ' ' || coalesce(address, '') || ' ' || auth_method, ', ' order by line_number) from pg_hba_file_rules`)
	if want := "local  scram-sha-256, hostssl 127.0.0.1 scram-sha-256, hostssl ::1 scram-sha-256"; rules != want {
		t.Errorf("pg_hba.conf rules: %s, want %s", rules, want)
	}
	for setting, want := range map[string]string{"ssl": "on", "ssl_min_protocol_version": "TLSv1.2", "password_encryption": "scram-sha-256"} {
		if got := scalar(t, conn, "show "+setting); got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
}

// TestPostgresSecretFiles checks who may read the cluster's secrets.
func TestPostgresSecretFiles(t *testing.T) {
	pg := testkit.PostgresCluster(t)
	// The server runs as the postgres user when this process is root.
	server := os.Geteuid()
	if server == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal(err)
		}
		if server, err = strconv.Atoi(u.Uid); err != nil {
			t.Fatal(err)
		}
	}
	tests := map[string]struct {
		file  string
		owner int
	}{
		"the password file":     {pg.PasswordFile(), os.Geteuid()},
		"the pgpass file":       {pg.PassFile(), os.Geteuid()},
		"the server's TLS key":  {filepath.Join(pg.Dir(), "server.key"), server},
		"the cluster's CA key":  {filepath.Join(filepath.Dir(pg.CAFile()), "ca-key.pem"), os.Geteuid()},
		"the pg_hba.conf rules": {filepath.Join(pg.Dir(), "pg_hba.conf"), server},
	}
	for name, tt := range tests {
		fi, err := os.Stat(tt.file)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s %s has mode %v, want 0600", name, tt.file, fi.Mode().Perm())
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != tt.owner {
			t.Errorf("%s %s is owned by uid %d, want %d", name, tt.file, st.Uid, tt.owner)
		}
	}
	b, err := os.ReadFile(pg.PasswordFile())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSuffix(string(b), "\n"); got != pg.Password() || len(got) < 20 {
		t.Errorf("password file holds %q, want the password %q, of 20 characters at least", got, pg.Password())
	}
}

// TestPostgresAuditsDDLAndRoles expects pgaudit's lines in the server's log
// for a role created and a table created.
func TestPostgresAuditsDDLAndRoles(t *testing.T) {
	pg := testkit.PostgresCluster(t)
	if !pg.Audited() {
		testkit.Unavailable(t, "pgaudit (Debian, Ubuntu: apt-get install postgresql-15-pgaudit)")
	}
	conn, err := connect(t, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{`create role audit_probe nologin`, `create table audit_probe_table (id int)`, `select count(*) from audit_probe_table`} {
		if _, err := conn.Exec(t.Context(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	want := []string{
		"AUDIT: SESSION,1,1,ROLE,CREATE ROLE,,,create role audit_probe nologin,<not logged>",
		"AUDIT: SESSION,2,1,DDL,CREATE TABLE,,,create table audit_probe_table (id int),<not logged>",
	}
	var log string
	for deadline := time.Now().Add(10 * time.Second); ; {
		b, err := os.ReadFile(pg.LogFile())
		if err != nil {
			t.Fatal(err)
		}
		log = string(b)
		missing := 0
		for _, w := range want {
			if !strings.Contains(log, w) {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres.log lacks %d of the audit lines %q within 10 s:\n%s", missing, want, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(log, ",READ,") {
		t.Errorf("postgres.log audits a read, want DDL and role changes only:\n%s", log)
	}
}

// TestPostgresLogsNoRolePassword sets passwords as the roles of the
// services will be given theirs, one statement failing, and expects none in
// the server's log: pgaudit redacts them, and failed statements are not
// logged.
func TestPostgresLogsNoRolePassword(t *testing.T) {
	pg := testkit.PostgresCluster(t)
	conn, err := connect(t, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	statements := []struct {
		sql  string
		fail bool
	}{
		{`create role probe login password 'secret-created'`, false},
		{`create role probe login password 'secret-again'`, true}, // it exists
		{`alter role probe password 'secret-altered'`, false},
		{`do $$ begin alter role probe password 'secret-in-a-block'; end $$`, false},
	}
	for _, s := range statements {
		if _, err := conn.Exec(t.Context(), s.sql); (err != nil) != s.fail {
			t.Fatalf("%s: %v, want failure %v", s.sql, err, s.fail)
		}
	}
	// The last statement's audit line, or the failure's, ends the log.
	want := `ERROR:  role "probe" already exists`
	if pg.Audited() {
		want = "AUDIT: SESSION,3,1,ROLE,ALTER ROLE,,,alter role probe password <REDACTED>"
	}
	var log string
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(log, want); {
		if time.Now().After(deadline) {
			t.Fatalf("postgres.log lacks %q within 10 s:\n%s", want, log)
		}
		time.Sleep(20 * time.Millisecond)
		b, err := os.ReadFile(pg.LogFile())
		if err != nil {
			t.Fatal(err)
		}
		log = string(b)
	}
	if strings.Contains(log, "secret-") {
		t.Errorf("postgres.log holds a role's password:\n%s", log)
	}
}
