package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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

var shared struct {
	once sync.Once
	pg   *embedded.Postgres
	err  error
}

// Postgres returns the URL of a new, empty database for the test, dropped
// in t.Cleanup. The databases live in one cluster per test binary, started
// on first use; it dies with the test binary.
func Postgres(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() {
		dir := filepath.Join(os.TempDir(), "datamill-testkit-"+strconv.Itoa(os.Getpid()))
		removeStale()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.pg, shared.err = embedded.StartPostgres(ctx, embedded.PostgresOptions{Dir: dir})
	})
	if shared.err != nil {
		unavailable(t, shared.err)
	}
	name := "t_" + randomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := strings.Replace(shared.pg.URL(), "/datamill?", "/postgres?", 1)
	exec(t, ctx, admin, "create database "+name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		exec(t, ctx, admin, "drop database if exists "+name+" with (force)")
	})
	return strings.Replace(shared.pg.URL(), "/datamill?", "/"+name+"?", 1)
}

// PostgresCluster starts a cluster of the test's own, stopped in t.Cleanup,
// for tests that stop or restart the server.
func PostgresCluster(t testing.TB) *embedded.Postgres {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := embedded.StartPostgres(ctx, embedded.PostgresOptions{})
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stop postgres: %v", err)
		}
	})
	return p
}

// unavailable skips the test locally and fails it in CI.
func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("PostgreSQL is required in CI: %v", err)
	}
	t.Skipf("PostgreSQL unavailable (CI=true makes this a failure): %v", err)
}

func exec(t testing.TB, ctx context.Context, url, sql string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect to test cluster: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// removeStale deletes the cluster dirs of test binaries that are gone.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "datamill-testkit-*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "datamill-testkit-"))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			_ = os.RemoveAll(d)
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
