package main

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/datamill/datamill/pkg/testkit"
)

// entrypointSetting is a `-c name=value` of deploy/postgres/entrypoint.sh.
var entrypointSetting = regexp.MustCompile(`(?m)^\s*-c ([a-z_]+)=(\S+?)\s*\\?$`)

// TestComposePostgresAcceptsTLSOnly runs PostgreSQL from the machine's
// binaries as the postgres container runs it: the settings of
// deploy/postgres/entrypoint.sh (TLS with the certificate `datamill
// secrets` issued, SCRAM, deploy/postgres/pg_hba.conf), the superuser
// reaching it over the socket as the operating system's user postgres
// (peer), and initdb/05-roles.sh making the roles. A role's URL of the
// secrets directory, pointed at it, connects over TLS verified against the
// stack's CA; the same without TLS is refused, and so is a wrong password.
func TestComposePostgresAcceptsTLSOnly(t *testing.T) {
	bin := map[string]string{}
	for _, name := range []string{"initdb", "postgres", "pg_isready", "psql"} {
		path, err := exec.LookPath(name)
		if err != nil {
			testkit.Unavailable(t, "PostgreSQL's binaries on PATH: "+err.Error())
		}
		bin[name] = path
	}
	// The server, psql and the init script run as the user postgres, as in
	// the container; PostgreSQL refuses to run as root anyway.
	cred := postgresCredential(t)
	if u, err := user.Current(); cred == nil && (err != nil || u.Username != "postgres") {
		testkit.Unavailable(t, "root or the user postgres, for the socket's peer authentication of the superuser postgres")
	}
	ctx := t.Context()
	asPostgres := func(name string, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, bin[name], args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
		cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=5")
		return cmd
	}

	// The secrets as `datamill secrets` makes them, and the container's
	// view of them: /run/secrets, readable by postgres.
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	if _, err := makeSecrets(secrets); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "run")
	data := filepath.Join(dir, "data")
	for _, d := range []string{run, data} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		giveTo(t, cred, d)
	}
	// The parents of the test's directory, traversable by postgres.
	for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o001); err != nil {
				t.Fatal(err)
			}
		}
	}
	files := []string{"postgres.pem", "postgres-key.pem", "postgres_password"}
	for _, role := range composeRoles {
		files = append(files, "db_"+role+"_password")
	}
	for _, f := range files {
		copyFile(t, filepath.Join(secrets, f), filepath.Join(run, f), cred)
	}
	hba, err := os.ReadFile(deployFile(t, "deploy/postgres/pg_hba.conf"))
	if err != nil {
		t.Fatal(err)
	}
	writeOwned(t, filepath.Join(run, "pg_hba.conf"), hba, cred)
	// The entrypoint's copy of the key, 0600 and the server's own.
	key, err := os.ReadFile(filepath.Join(secrets, "postgres-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	writeOwned(t, filepath.Join(run, "server.key"), key, cred)

	script, err := os.ReadFile(deployFile(t, "deploy/postgres/entrypoint.sh"))
	if err != nil {
		t.Fatal(err)
	}
	paths := strings.NewReplacer(`"$tls/server.key"`, filepath.Join(run, "server.key"),
		"/run/secrets/", run+"/", "/etc/datamill/postgres/pg_hba.conf", filepath.Join(run, "pg_hba.conf"))
	settings := entrypointSetting.FindAllStringSubmatch(string(script), -1)
	if len(settings) == 0 {
		t.Fatal("deploy/postgres/entrypoint.sh passes no -c setting")
	}

	if out, err := asPostgres("initdb", "-D", data, "-U", "postgres", "--pwfile", filepath.Join(run, "postgres_password"),
		"--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port := freePort(t)
	args := []string{"-D", data, "-c", "listen_addresses=127.0.0.1", "-c", "port=" + port, "-c", "unix_socket_directories=" + run}
	for _, s := range settings {
		args = append(args, "-c", s[1]+"="+paths.Replace(s[2]))
	}
	server := asPostgres("postgres", args...)
	var log strings.Builder
	server.Stdout, server.Stderr = &log, &log
	proc := startProcess(t, server, syscall.SIGINT, 15*time.Second)
	deadline := time.Now().Add(60 * time.Second)
	for asPostgres("pg_isready", "-h", run, "-p", port).Run() != nil {
		select {
		case <-proc.done:
			t.Fatalf("postgres exited: %v\n%s", proc.err, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres not ready after 60 s:\n%s", log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The superuser over the socket, peer: what the image's entrypoint
	// and 05-roles.sh do.
	if out, err := asPostgres("psql", "-v", "ON_ERROR_STOP=1", "-h", run, "-p", port, "-U", "postgres", "-d", "postgres",
		"-c", "create database datamill").CombinedOutput(); err != nil {
		t.Fatalf("psql as postgres over the socket: %v\n%s", err, out)
	}
	roles := exec.CommandContext(ctx, "sh", deployFile(t, "deploy/postgres/initdb/05-roles.sh"))
	roles.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	roles.Env = append(os.Environ(), "PGHOST="+run, "PGPORT="+port, "POSTGRES_USER=postgres", "POSTGRES_DB=datamill", "DATAMILL_SECRETS="+run)
	if out, err := roles.CombinedOutput(); err != nil {
		t.Fatalf("05-roles.sh: %v\n%s", err, out)
	}

	// The loader's URL, pointed at this server: TLS verified against the
	// stack's CA for the name localhost, which the certificate holds.
	raw, err := os.ReadFile(filepath.Join(secrets, "db_loader_url"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	u.Host = net.JoinHostPort("localhost", port)
	q := u.Query()
	q.Set("sslrootcert", filepath.Join(secrets, "ca.pem"))
	u.RawQuery = q.Encode()
	connect := func(u url.URL) error {
		conn, err := pgx.Connect(ctx, u.String())
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		var ssl bool
		if err := conn.QueryRow(ctx, "select ssl from pg_stat_ssl where pid = pg_backend_pid()").Scan(&ssl); err != nil {
			return err
		}
		if !ssl {
			return errors.New("connected without TLS")
		}
		return nil
	}
	if err := connect(*u); err != nil {
		t.Fatalf("datamill_loader with its URL (verify-full): %v\n%s", err, log.String())
	}

	for _, tc := range []struct {
		name, sslmode, password, code string
	}{
		{"without TLS", "disable", "", "28000"},
		{"with a wrong password", "verify-full", "not-the-password", "28P01"},
	} {
		v := *u
		q := v.Query()
		q.Set("sslmode", tc.sslmode)
		v.RawQuery = q.Encode()
		if tc.password != "" {
			v.User = url.UserPassword(u.User.Username(), tc.password)
		}
		err := connect(v)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != tc.code {
			t.Errorf("datamill_loader %s: %v, want SQLSTATE %s", tc.name, err, tc.code)
		}
	}
}

// giveTo makes path the postgres user's (cred nil: this process is it).
func giveTo(t testing.TB, cred *syscall.Credential, path string) {
	t.Helper()
	if cred == nil {
		return
	}
	if err := os.Chown(path, int(cred.Uid), int(cred.Gid)); err != nil {
		t.Fatal(err)
	}
}

// writeOwned writes a 0600 file of the postgres user.
func writeOwned(t testing.TB, path string, data []byte, cred *syscall.Credential) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	giveTo(t, cred, path)
}

func copyFile(t testing.TB, from, to string, cred *syscall.Credential) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeOwned(t, to, data, cred)
}
