package testkit

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func scalar(t *testing.T, url, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	defer conn.Close(ctx)
	var got string
	if err := conn.QueryRow(ctx, sql).Scan(&got); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return got
}

func TestPostgresDatabasePerTest(t *testing.T) {
	var names []string
	t.Run("first", func(t *testing.T) {
		names = append(names, scalar(t, Postgres(t), `select current_database()`))
	})
	t.Run("second", func(t *testing.T) {
		names = append(names, scalar(t, Postgres(t), `select current_database()`))
	})
	t.Run("over TLS with a password", func(t *testing.T) {
		url := Postgres(t)
		if !strings.Contains(url, "sslmode=verify-full") {
			t.Errorf("Postgres(t) = a URL without sslmode=verify-full")
		}
		if got := scalar(t, url, `select ssl::text from pg_stat_ssl where pid = pg_backend_pid()`); got != "true" {
			t.Errorf("the test database's connection: ssl = %s, want true", got)
		}
	})
	if len(names) != 2 || names[0] == names[1] || !strings.HasPrefix(names[0], "t_") {
		t.Fatalf("databases %v, want two distinct t_* names", names)
	}
	pg, err := sharedPostgres()
	if err != nil {
		t.Fatal(err)
	}
	if pg.Dir() != clusterDir(os.Getpid()) {
		t.Errorf("shared cluster in %s, want %s", pg.Dir(), clusterDir(os.Getpid()))
	}
	left := scalar(t, pg.URL(), `select count(*)::text from pg_database where datname in ('`+names[0]+`', '`+names[1]+`')`)
	if left != "0" {
		t.Errorf("%s of the tests' databases remain after their cleanup", left)
	}
}

func TestRemoveStaleClusters(t *testing.T) {
	// A pid that is surely dead: a process that has exited and been reaped.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := clusterDir(cmd.Process.Pid)
	if err := os.MkdirAll(dead, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dead) })
	live := clusterDir(os.Getppid())
	if _, err := os.Stat(live); os.IsNotExist(err) {
		if err := os.Mkdir(live, 0o700); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Remove(live) })
	}
	removeStaleClusters()
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the dir of dead pid %d was kept (%v)", cmd.Process.Pid, err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the dir of live pid %d was removed: %v", os.Getppid(), err)
	}
}

func TestPostgresCluster(t *testing.T) {
	pg := PostgresCluster(t)
	scalar(t, pg.URL(), `select 'up'`)
	if err := pg.Restart(t.Context()); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if got := scalar(t, pg.URL(), `select 'up again'`); got != "up again" {
		t.Errorf("after Restart: %q", got)
	}
}
