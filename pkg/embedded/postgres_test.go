package embedded

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// startPostgres starts a cluster or skips the test when the machine has
// none (the test kit, which applies the CI rule, imports this package).
func startPostgres(t *testing.T, opts PostgresOptions) *Postgres {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	opts.Logf = t.Logf
	start := time.Now()
	p, err := StartPostgres(ctx, opts)
	if errors.Is(err, ErrNoPostgres) && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("started in %v", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() { _ = p.Stop() })
	return p
}

// needPostgres skips a test that starts its own cluster on a machine
// without PostgreSQL's binaries; in CI (CI set) the test runs, and fails.
func needPostgres(t *testing.T) {
	t.Helper()
	if _, err := findPostgres("/usr/lib/postgresql"); err != nil && os.Getenv("CI") == "" {
		t.Skip(err)
	}
}

func query(t *testing.T, url, sql string) string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	defer conn.Close(t.Context())
	var got string
	if err := conn.QueryRow(t.Context(), sql).Scan(&got); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatalf("%s: %v", sql, err)
	}
	return got
}

// TestPostgresKeepsData covers a cluster's life in a directory of its own:
// restart, stop, a start that fails, and a start that reuses the data.
func TestPostgresKeepsData(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pg")
	p := startPostgres(t, PostgresOptions{Dir: dir})
	if want := "postgres://datamill:" + p.Password() + "@127.0.0.1:" + strconv.Itoa(p.Port()) + "/datamill?sslmode=verify-full&sslrootcert=" + filepath.Join(dir, "tls", "ca.pem"); p.URL() != want {
		t.Errorf("URL() = %q, want %q", p.URL(), want)
	}
	password := p.Password()
	ca, err := os.ReadFile(p.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	query(t, p.URL(), `create table kept as select 'before restart' as v`)
	settings := map[string]string{
		"listen_addresses":        "127.0.0.1",
		"fsync":                   "on",
		"synchronous_commit":      "on",
		"unix_socket_directories": dir,
	}
	for name, want := range settings {
		if got := query(t, p.URL(), "show "+name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if got := query(t, p.URL(), `select current_user || ' ' || current_database() || ' ' || pg_encoding_to_char(encoding) from pg_database where datname = current_database()`); got != "datamill datamill UTF8" {
		t.Errorf("user, database, encoding = %q, want datamill datamill UTF8", got)
	}

	port := p.Port()
	if err := p.Restart(t.Context()); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if p.Port() != port {
		t.Errorf("Restart moved the server from port %d to %d", port, p.Port())
	}
	if got := query(t, p.URL(), `select v from kept`); got != "before restart" {
		t.Errorf("after Restart, kept holds %q", got)
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err != nil {
		t.Fatalf("Stop removed a data dir it was given: %v", err)
	}

	// Something else holds the port and accepts connections without ever
	// answering: the start fails quickly, saying why from the server's log.
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	began := time.Now()
	_, err = StartPostgres(ctx, PostgresOptions{Dir: dir, Port: port})
	ln.Close()
	if err == nil || !strings.Contains(err.Error(), "Address already in use") {
		t.Errorf("StartPostgres on a taken port = %v, want the server's log lines about the address in use", err)
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("StartPostgres on a taken port took %v", took)
	}

	p = startPostgres(t, PostgresOptions{Dir: dir, Port: port})
	if p.Password() != password {
		t.Errorf("a new start in the same dir has password %q, want the first start's %q", p.Password(), password)
	}
	if again, err := os.ReadFile(p.CAFile()); err != nil || string(again) != string(ca) {
		t.Errorf("a new start in the same dir has another CA (%v), want the first start's", err)
	}
	if got := query(t, p.URL(), `select v from kept`); got != "before restart" {
		t.Errorf("after a new start in the same dir, kept holds %q", got)
	}
	if b, err := os.ReadFile(p.LogFile()); err != nil || !strings.Contains(string(b), "database system is ready") {
		t.Errorf("log %s lacks the server's messages (%v):\n%s", p.LogFile(), err, b)
	}
}

func TestPostgresTemporaryDir(t *testing.T) {
	p := startPostgres(t, PostgresOptions{})
	if got := query(t, p.URL(), `select 'ok'`); got != "ok" {
		t.Errorf("select 'ok' = %q", got)
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(p.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Stop left the temporary dir %s behind (%v)", p.Dir(), err)
	}
}

// TestPostgresWithTheStacksCA: a cluster given a CA presents a
// certificate it signed and makes none of its own.
func TestPostgresWithTheStacksCA(t *testing.T) {
	ca, err := NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := startPostgres(t, PostgresOptions{CA: ca})
	if p.CAFile() != ca.CertFile() {
		t.Errorf("CAFile() = %s, want the given CA's %s", p.CAFile(), ca.CertFile())
	}
	if !strings.Contains(p.URL(), "sslrootcert="+ca.CertFile()) {
		t.Errorf("URL() = %s, want sslrootcert=%s", p.URL(), ca.CertFile())
	}
	if got := query(t, p.URL(), `select 'verified'`); got != "verified" {
		t.Errorf("select 'verified' = %q", got)
	}
	if _, err := os.Stat(filepath.Join(p.Dir(), "tls")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the cluster made a CA of its own in %s/tls (%v)", p.Dir(), err)
	}
	// The server's key is in the data directory alone.
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(ca.CertFile()), "postgres*")); len(left) > 0 {
		t.Errorf("the server's certificate and key were left in the CA's directory: %v", left)
	}
}

func TestPostgresRefusesForeignDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	needPostgres(t)
	_, err := StartPostgres(t.Context(), PostgresOptions{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "not empty and holds no cluster") {
		t.Errorf("StartPostgres in a non-empty dir without a cluster = %v, want a refusal", err)
	}
}

// TestPostgresRefusesClusterWithoutPassword: a directory whose cluster was
// made before clusters had passwords cannot be reused, and the error says
// what to do.
func TestPostgresRefusesClusterWithoutPassword(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	needPostgres(t)
	_, err := StartPostgres(t.Context(), PostgresOptions{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "without a password file") || !strings.Contains(err.Error(), "remove the directory") {
		t.Errorf("StartPostgres on a cluster without a password file = %v, want a refusal saying to remove it", err)
	}
}

func TestFindPostgres(t *testing.T) {
	fake := func(t *testing.T, dir string) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"initdb", "postgres"} {
			if err := os.WriteFile(filepath.Join(dir, name), nil, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	root := t.TempDir()
	t.Setenv("PATH", t.TempDir())
	_, err := findPostgres(root)
	if !errors.Is(err, ErrNoPostgres) || !strings.Contains(err.Error(), "apt-get install postgresql") || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Errorf("findPostgres with nothing installed = %v, want ErrNoPostgres naming the package and DATABASE_URL", err)
	}

	for _, v := range []string{"9.6", "15", "16", "13"} {
		fake(t, filepath.Join(root, v, "bin"))
	}
	if err := os.MkdirAll(filepath.Join(root, "17", "bin"), 0o755); err != nil { // a client-only install
		t.Fatal(err)
	}
	if got, err := findPostgres(root); err != nil || got != filepath.Join(root, "16", "bin") {
		t.Errorf("findPostgres = %q, %v; want the newest complete version, 16", got, err)
	}

	onPath := t.TempDir()
	fake(t, onPath)
	t.Setenv("PATH", onPath)
	if got, err := findPostgres(root); err != nil || got != onPath {
		t.Errorf("findPostgres = %q, %v; want PATH's %s first", got, err, onPath)
	}
}

// TestPostgresDiesWithParent starts a server from a child process (this
// test binary again), kills the child with SIGKILL, which leaves it no
// chance to stop anything, and expects the server to be gone: no orphaned
// servers.
func TestPostgresDiesWithParent(t *testing.T) {
	if dir := os.Getenv("DATAMILL_TEST_PG_CHILD_DIR"); dir != "" {
		p, err := StartPostgres(context.Background(), PostgresOptions{Dir: dir})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Printf("pid %d port %d\n", p.server.Process.Pid, p.Port())
		time.Sleep(2 * time.Minute) // until the parent kills this process
		os.Exit(1)
	}
	needPostgres(t)
	dir := filepath.Join(t.TempDir(), "pg")
	child := exec.Command(os.Args[0], "-test.run=^TestPostgresDiesWithParent$")
	child.Env = append(os.Environ(), "DATAMILL_TEST_PG_CHILD_DIR="+dir)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = child.Process.Kill()
		_ = child.Wait()
	})
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- line
	}()
	var pid, port int
	select {
	case line := <-lines:
		if _, err := fmt.Sscanf(line, "pid %d port %d", &pid, &port); err != nil {
			t.Fatalf("child said %q", line)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the child did not start postgres within 2 minutes")
	}
	if !running(pid) {
		t.Fatalf("postgres pid %d is not running while the child lives", pid)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for running(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("postgres pid %d outlived its parent by 10 s", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Its processes (checkpointer, writers) notice the postmaster's death
	// and exit; then the port is free.
	for {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatalf("port %d still accepts connections after postgres was killed", port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// running reports whether pid is a live process: not gone and not a zombie
// waiting to be reaped.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
