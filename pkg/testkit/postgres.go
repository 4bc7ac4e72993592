package testkit

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datamill/datamill/pkg/embedded"
)

// startTimeout bounds starting a cluster (initdb included) on a busy machine.
const startTimeout = 2 * time.Minute

// sharedPostgres is the cluster of this test binary, started by the first
// test that asks for a database. Nothing stops it when the binary exits, so
// it dies with the binary (the parent-death signal) and its directory,
// named after the binary's pid, is removed by a later binary.
var sharedPostgres = sync.OnceValues(func() (*embedded.Postgres, error) {
	removeStaleClusters()
	// A directory of this pid is a dead binary's that had the pid before.
	dir := clusterDir(os.Getpid())
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("remove stale test cluster: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	return embedded.StartPostgres(ctx, embedded.PostgresOptions{Dir: dir})
})

// Postgres returns the URL of a new, empty database for the test, owned by
// the superuser datamill and dropped in t.Cleanup (with any connection
// still open to it). The databases live in one cluster per test binary,
// started on first use. The URL holds the superuser's password and asks
// for TLS verified against the cluster's CA (sslmode=verify-full), as the
// cluster accepts nothing less.
func Postgres(t testing.TB) string {
	t.Helper()
	pg, err := sharedPostgres()
	if err != nil {
		postgresUnavailable(t, err)
	}
	name := "t_" + strings.ToLower(rand.Text()[:12])
	admin := pg.DatabaseURL("postgres")
	if err := execSQL(admin, "create database "+name); err != nil {
		t.Fatalf("create the test's database: %v", err)
	}
	t.Cleanup(func() {
		if err := execSQL(admin, "drop database "+name+" with (force)"); err != nil {
			t.Errorf("drop the test's database: %v", err)
		}
	})
	return pg.DatabaseURL(name)
}

// PostgresCluster starts a cluster for the test alone, in a temporary
// directory, and stops it in t.Cleanup: for tests that stop or restart the
// server. Its URL names the datamill database.
func PostgresCluster(t testing.TB) *embedded.Postgres {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	pg, err := embedded.StartPostgres(ctx, embedded.PostgresOptions{Logf: t.Logf})
	if err != nil {
		postgresUnavailable(t, err)
	}
	t.Cleanup(func() {
		if err := pg.Stop(); err != nil {
			t.Errorf("stop postgres: %v", err)
		}
	})
	return pg
}

// postgresUnavailable ends a test that cannot have its cluster: missing
// server binaries skip the test locally and fail it in CI (CI=true);
// anything else fails it.
func postgresUnavailable(t testing.TB, err error) {
	t.Helper()
	if !errors.Is(err, embedded.ErrNoPostgres) {
		t.Fatalf("start postgres: %v", err)
	}
	Unavailable(t, fmt.Sprintf("PostgreSQL: %v", err))
}

// Unavailable ends a test that needs what this machine lacks (a server's
// binaries, a tool, a Python package), saying what and how to install it:
// it skips the test locally and fails it in CI (CI=true), where .ci/run
// installs everything the tests need.
func Unavailable(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("required in CI: %s", what)
	}
	t.Skipf("skipped (CI=true makes this a failure): %s", what)
}

func execSQL(url, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect to the test cluster: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

func clusterDir(pid int) string {
	return filepath.Join(os.TempDir(), "datamill-testkit-"+strconv.Itoa(pid))
}

// removeStaleClusters removes the cluster directories of test binaries
// that have exited.
func removeStaleClusters() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "datamill-testkit-*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "datamill-testkit-"))
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			_ = os.RemoveAll(d)
		}
	}
}
