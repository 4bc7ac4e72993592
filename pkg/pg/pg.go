// Package pg connects services to PostgreSQL and applies their schema
// migrations.
//
// Each service that owns tables embeds its migrations (files named
// NNNN_description.sql) and applies them at start with Migrate; the
// applied versions are recorded per component in datamill_migrations, and
// concurrent replicas are serialised with an advisory lock. InTx is the one
// place database transactions are opened.
package pg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config is the PostgreSQL block of a service's configuration.
type Config struct {
	// URL is a libpq connection string or postgres:// URL.
	URL string `env:"DATABASE_URL" secret:"true"`
	// MaxConns caps the pool.
	MaxConns int32 `env:"DATABASE_MAX_CONNS" envDefault:"8"`
}

// Open returns a pool for cfg once the database answers, retrying with
// backoff until ctx ends: at start the database may still be coming up.
func Open(ctx context.Context, cfg Config) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		// pgx's parse errors can quote the URL; never print a password.
		return nil, errors.New("DATABASE_URL does not parse as a PostgreSQL connection string")
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	where := fmt.Sprintf("%s@%s:%d/%s", pc.ConnConfig.User, pc.ConnConfig.Host, pc.ConnConfig.Port, pc.ConnConfig.Database)
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres %s: %w", where, err)
	}
	backoff := 100 * time.Millisecond
	for {
		pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = pool.Ping(pingCtx)
		cancel()
		if err == nil {
			return pool, nil
		}
		select {
		case <-ctx.Done():
			pool.Close()
			return nil, fmt.Errorf("postgres %s unreachable: %w", where, err)
		case <-time.After(backoff):
			backoff = min(2*backoff, 2*time.Second)
		}
	}
}

// InTx runs fn in a transaction and commits it, or rolls it back when fn
// fails.
func InTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

var migrationName = regexp.MustCompile(`^(\d{4})_[a-z0-9_]+\.sql$`)

type migration struct {
	version  int
	name     string
	sql      string
	checksum string
}

// Migrate applies the migrations of component found at the root of
// migrations that are not applied yet, in version order, each in its own
// transaction with its record. It returns how many it applied. It refuses
// misnamed files and applied migrations whose content changed.
func Migrate(ctx context.Context, pool *pgxpool.Pool, component string, migrations fs.FS) (int, error) {
	entries, err := fs.ReadDir(migrations, ".")
	if err != nil {
		return 0, fmt.Errorf("migrations of %s: %w", component, err)
	}
	var ms []migration
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return 0, fmt.Errorf("migrations of %s: file %q is not named NNNN_description.sql", component, e.Name())
		}
		b, err := fs.ReadFile(migrations, e.Name())
		if err != nil {
			return 0, fmt.Errorf("migrations of %s: %w", component, err)
		}
		v, _ := strconv.Atoi(m[1])
		sum := sha256.Sum256(b)
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b), checksum: hex.EncodeToString(sum[:])})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return 0, fmt.Errorf("migrations of %s: %s and %s share version %d", component, ms[i-1].name, ms[i].name, ms[i].version)
		}
	}
	if _, err := pool.Exec(ctx, `create table if not exists datamill_migrations (
		component text not null,
		version int not null,
		name text not null,
		checksum text not null,
		applied_at timestamptz not null default now(),
		primary key (component, version))`); err != nil {
		// Two first starts may race on the create itself.
		var again error
		if _, again = pool.Exec(ctx, `select 1 from datamill_migrations limit 1`); again != nil {
			return 0, fmt.Errorf("create datamill_migrations: %w", err)
		}
	}
	applied := 0
	for _, m := range ms {
		did, err := apply(ctx, pool, component, m)
		if err != nil {
			return applied, err
		}
		if did {
			applied++
		}
	}
	return applied, nil
}

// apply runs one migration unless it is already recorded, under a
// transaction-scoped advisory lock that serialises concurrent migrators.
func apply(ctx context.Context, pool *pgxpool.Pool, component string, m migration) (bool, error) {
	did := false
	err := InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `select pg_advisory_xact_lock(hashtext('datamill_migrations'), hashtext($1))`, component); err != nil {
			return fmt.Errorf("lock migrations of %s: %w", component, err)
		}
		var checksum string
		err := tx.QueryRow(ctx, `select checksum from datamill_migrations where component = $1 and version = $2`, component, m.version).Scan(&checksum)
		switch {
		case err == nil:
			if checksum != m.checksum {
				return fmt.Errorf("migration %s of %s was changed after it was applied: add a new migration instead", m.name, component)
			}
			return nil
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("read migrations of %s: %w", component, err)
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("migration %s of %s: %w", m.name, component, err)
		}
		if _, err := tx.Exec(ctx, `insert into datamill_migrations (component, version, name, checksum) values ($1, $2, $3, $4)`,
			component, m.version, m.name, m.checksum); err != nil {
			return fmt.Errorf("record migration %s of %s: %w", m.name, component, err)
		}
		did = true
		return nil
	})
	return did, err
}
