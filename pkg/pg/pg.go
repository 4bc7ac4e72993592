// Package pg connects services to PostgreSQL, applies their schema
// migrations and opens their transactions.
//
// Open builds a pool once the database answers, waiting for a database that
// is still starting. Each service that owns tables embeds its migrations,
// files named NNNN_description.sql, and applies them at start with Migrate:
// every migration runs in its own transaction together with its row in the
// datamill_migrations table, under an advisory lock, so that replicas
// starting together apply each migration exactly once. InTx is the one
// place transactions are opened.
package pg

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/datamill/datamill/pkg/retry"
)

// Config is the PostgreSQL block of a service's configuration.
type Config struct {
	// URL is a postgres:// URL or a keyword/value connection string.
	URL string `env:"DATABASE_URL" secret:"true"`
	// OwnerURL, when set, is the migration owner's URL: the service
	// applies its migrations and changes its tables with it, then closes
	// it and runs on URL. Unset, URL does both.
	OwnerURL string `env:"DATABASE_OWNER_URL" envDefault:"" secret:"true"`
	// MaxConns caps the pool.
	MaxConns int32 `env:"DATABASE_MAX_CONNS" envDefault:"8"`
}

// Validate checks what parsing the environment cannot. Its errors never
// quote the URL, which may hold a password.
func (c Config) Validate() error {
	var errs []error
	if c.MaxConns < 1 {
		errs = append(errs, fmt.Errorf("DATABASE_MAX_CONNS is %d, want at least 1", c.MaxConns))
	}
	if c.URL != "" {
		if _, err := pgxpool.ParseConfig(c.URL); err != nil {
			errs = append(errs, parseError("DATABASE_URL", err))
		}
	}
	if c.OwnerURL != "" {
		if _, err := pgxpool.ParseConfig(c.OwnerURL); err != nil {
			errs = append(errs, parseError("DATABASE_OWNER_URL", err))
		}
	}
	return errors.Join(errs...)
}

// Retry bounds of Open.
const (
	firstBackoff = 50 * time.Millisecond
	maxBackoff   = 2 * time.Second
	pingTimeout  = 5 * time.Second
	// maxOpenWait bounds Open when ctx has no earlier deadline.
	maxOpenWait = 2 * time.Minute
)

// Open returns a pool for cfg once the database answers. A database that
// refuses connections or is still starting is retried with backoff until
// ctx ends, or for two minutes at most; a refusal that waiting cannot cure
// (bad password, unknown database or role) returns at once. Errors name the
// user, host, port and database, never the password.
func Open(ctx context.Context, cfg Config) (*pgxpool.Pool, error) {
	return open(ctx, "DATABASE_URL", cfg.URL, cfg.MaxConns)
}

// OpenOwner is Open of the migration owner's URL, DATABASE_OWNER_URL, with
// a pool of two connections.
func OpenOwner(ctx context.Context, cfg Config) (*pgxpool.Pool, error) {
	return open(ctx, "DATABASE_OWNER_URL", cfg.OwnerURL, 2)
}

func open(ctx context.Context, variable, connString string, maxConns int32) (*pgxpool.Pool, error) {
	if connString == "" {
		return nil, errors.New("postgres: " + variable + " is empty")
	}
	pc, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, parseError(variable, err)
	}
	if maxConns > 0 {
		pc.MaxConns = maxConns
	}
	// datamill's statements are many and short; a batch's merge is
	// estimated costly enough for PostgreSQL to compile it with LLVM each
	// time, which costs more than it saves (20–100 ms for a 5,000-row
	// batch). A jit setting in the URL still wins.
	if _, set := pc.ConnConfig.RuntimeParams["jit"]; !set {
		pc.ConnConfig.RuntimeParams["jit"] = "off"
	}
	where := fmt.Sprintf("postgres %s@%s:%d/%s", pc.ConnConfig.User, pc.ConnConfig.Host, pc.ConnConfig.Port, pc.ConnConfig.Database)
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	ctx, cancel := context.WithTimeout(ctx, maxOpenWait)
	defer cancel()
	backoff := retry.Backoff{First: firstBackoff, Max: maxBackoff}
	for attempt := 1; ; attempt++ {
		pingCtx, cancelPing := context.WithTimeout(ctx, pingTimeout)
		err = pool.Ping(pingCtx)
		cancelPing()
		if err == nil {
			return pool, nil
		}
		if permanent(err) {
			pool.Close()
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if !backoff.Wait(ctx, attempt) {
			pool.Close()
			return nil, fmt.Errorf("%s unreachable after %d attempts: %w", where, attempt, err)
		}
	}
}

// permanent reports whether a connection error will not go away by retrying:
// authentication failures, a missing database or role, and a server
// certificate that does not verify (another CA, another name).
func permanent(err error) bool {
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return true
	}
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	if !ok {
		return false
	}
	return strings.HasPrefix(pgErr.Code, "28") || pgErr.Code == "3D000"
}

// parseError says why a connection string does not parse without quoting
// it: pgx masks passwords on a best-effort basis only, and a malformed
// string is exactly where that can fail.
func parseError(variable string, err error) error {
	prefix := "postgres: " + variable + " does not parse"
	if urlErr, ok := errors.AsType[*url.Error](err); ok {
		return fmt.Errorf("%s: %w", prefix, urlErr.Err)
	}
	// A ParseConfigError reads "cannot parse `<conn string>`: <reason>";
	// keep only what follows the last backtick, past the string.
	msg := err.Error()
	if i := strings.LastIndex(msg, "`"); i >= 0 {
		return fmt.Errorf("%s%s", prefix, msg[i+1:])
	}
	return errors.New(prefix)
}

// LockSchema takes, for the rest of tx, the one lock every change of the
// schema holds: migrations, a dataset's table and views, a predictions
// table, grants. One lock for all, because changes of different tables
// still update the same catalog rows: a foreign key to a dataset's table
// changes that table's row in pg_class as a GRANT on it does, and two such
// updates at once fail with "tuple concurrently updated". Any role may
// take it; it only serialises services and replicas starting together.
func LockSchema(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `select pg_advisory_xact_lock(hashtext('datamill_schema'))`); err != nil {
		return fmt.Errorf("lock the schema: %w", err)
	}
	return nil
}

// InTx runs fn in a transaction and commits it, or rolls it back when fn
// returns an error (returned as is) or panics.
func InTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	// After a commit, Rollback is a no-op.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// migrationName is the NNNN_description.sql pattern of migration files.
var migrationName = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.sql$`)

type migration struct {
	component string
	version   int
	name      string
	sql       string
	checksum  string
}

// Migrate applies the migrations of component not applied yet and returns
// how many it applied. pkg/pg's own migrations (datamill_batches) are
// applied first, as component "datamill", and are not counted.
//
// The migrations are the NNNN_description.sql files at the root of the
// given fs.FS (subdirectories are ignored), applied in version order, each
// in its own transaction together with its row in datamill_migrations. A
// migration must therefore not contain transaction control or statements
// that cannot run in a transaction (CREATE INDEX CONCURRENTLY). Every
// transaction holds one advisory lock, so concurrent callers are serialised
// and each migration is applied once. Migrate refuses, before applying
// anything, a file with another name, two files with one version, an
// applied migration whose content changed, and a new migration older than
// one already applied. Versions recorded in the database but unknown to
// migrations (applied by a newer release) are left alone.
//
// Migrate checks first, without a lock and without DDL: when nothing is
// pending it only reads datamill_migrations, so that a role that may not
// change the schema (a service's own) can call it at every start. A
// pending migration is applied with the pool's role, which must be
// allowed to; one that is not fails naming the migration.
func Migrate(ctx context.Context, pool *pgxpool.Pool, component string, migrations fs.FS) (applied int, err error) {
	ownFS, err := ownMigrations()
	if err != nil {
		return 0, fmt.Errorf("migrations of %s: %w", ownComponent, err)
	}
	own, err := readMigrations(ownFS)
	if err != nil {
		return 0, fmt.Errorf("migrations of %s: %w", ownComponent, err)
	}
	ms, err := readMigrations(migrations)
	if err != nil {
		return 0, fmt.Errorf("migrations of %s: %w", component, err)
	}
	next, err := firstPending(ctx, pool, component, ms)
	if err != nil {
		return 0, err
	}
	ownNext, err := firstPending(ctx, pool, ownComponent, own)
	if err != nil {
		return 0, err
	}
	if next == nil && ownNext == nil {
		return 0, nil
	}
	if ownNext != nil {
		if _, err := apply(ctx, pool, ownComponent, own); err != nil {
			return 0, err
		}
	}
	return apply(ctx, pool, component, ms)
}

// Pending names the first migration of component that Migrate would
// apply, or returns "" when none is pending, reading datamill_migrations
// only. pkg/pg's own migrations are checked too.
func Pending(ctx context.Context, pool *pgxpool.Pool, component string, migrations fs.FS) (string, error) {
	ownFS, err := ownMigrations()
	if err != nil {
		return "", err
	}
	for _, c := range []struct {
		component string
		fs        fs.FS
	}{{ownComponent, ownFS}, {component, migrations}} {
		ms, err := readMigrations(c.fs)
		if err != nil {
			return "", fmt.Errorf("migrations of %s: %w", c.component, err)
		}
		next, err := firstPending(ctx, pool, c.component, ms)
		if err != nil || next != nil {
			return next.String(), err
		}
	}
	return "", nil
}

// String names a migration and its component: "0002_x.sql of loader".
func (m *migration) String() string {
	if m == nil {
		return ""
	}
	return m.name + " of " + m.component
}

// firstPending returns the first of ms not applied yet, without a lock
// and without creating datamill_migrations: all of them when the table is
// not there.
func firstPending(ctx context.Context, pool *pgxpool.Pool, component string, ms []migration) (*migration, error) {
	var exists bool
	if err := pool.QueryRow(ctx, `select to_regclass('datamill_migrations') is not null`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("read migrations of %s: %w", component, err)
	}
	if !exists {
		if len(ms) == 0 {
			return nil, nil
		}
		ms[0].component = component
		return &ms[0], nil
	}
	return check(ctx, pool, component, ms)
}

// apply applies the migrations of ms not applied yet, one transaction
// each, under the migration lock.
func apply(ctx context.Context, pool *pgxpool.Pool, component string, ms []migration) (applied int, err error) {
	for {
		done := false
		err := InTx(ctx, pool, func(tx pgx.Tx) error {
			next, err := pending(ctx, tx, component, ms)
			if err != nil || next == nil {
				done = true
				return err
			}
			if _, err := tx.Exec(ctx, next.sql); err != nil {
				return fmt.Errorf("migration %s of %s: %w", next.name, component, err)
			}
			// clock_timestamp, not now(): the transaction may have waited
			// for the lock, and applied_at orders the migrations.
			if _, err := tx.Exec(ctx, `insert into datamill_migrations (component, version, name, checksum, applied_at)
				values ($1, $2, $3, $4, clock_timestamp())`, component, next.version, next.name, next.checksum); err != nil {
				return fmt.Errorf("record migration %s of %s: %w", next.name, component, err)
			}
			return nil
		})
		if err != nil {
			return applied, err
		}
		if done {
			return applied, nil
		}
		applied++
	}
}

// readMigrations reads and checks the migration files, in version order.
func readMigrations(fsys fs.FS) ([]migration, error) {
	if fsys == nil {
		return nil, nil
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("file %q is not named NNNN_description.sql (four digits, lower-case description)", e.Name())
		}
		version, _ := strconv.Atoi(m[1])
		if version == 0 {
			return nil, fmt.Errorf("file %q: versions start at 0001", e.Name())
		}
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		ms = append(ms, migration{version: version, name: e.Name(), sql: string(b), checksum: hex.EncodeToString(sum[:])})
	}
	slices.SortFunc(ms, func(a, b migration) int { return cmp.Compare(a.version, b.version) })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("files %s and %s share version %04d", ms[i-1].name, ms[i].name, ms[i].version)
		}
	}
	return ms, nil
}

// pending takes the migration lock, checks the applied migrations of
// component against ms and returns the first one not applied yet, or nil.
func pending(ctx context.Context, tx pgx.Tx, component string, ms []migration) (*migration, error) {
	// The schema's one lock, for every component: creating the table
	// must be serialised too, and migrations of two components may touch
	// the same objects.
	if err := LockSchema(ctx, tx); err != nil {
		return nil, fmt.Errorf("migrations of %s: %w", component, err)
	}
	// Created only when missing: CREATE TABLE IF NOT EXISTS needs the
	// right to create even when the table is there.
	// pg_tables, not to_regclass: the catalog caches may not have heard
	// yet of the table the transaction that held the lock created.
	var exists bool
	if err := tx.QueryRow(ctx, `select exists (select 1 from pg_tables where tablename = 'datamill_migrations' and schemaname = current_schema())`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("read migrations of %s: %w", component, err)
	}
	if exists {
		return check(ctx, tx, component, ms)
	}
	if _, err := tx.Exec(ctx, `create table datamill_migrations (
		component  text        not null,
		version    int         not null,
		name       text        not null,
		checksum   text        not null,
		applied_at timestamptz not null default now(),
		primary key (component, version))`); err != nil {
		return nil, fmt.Errorf("create datamill_migrations: %w", err)
	}
	return check(ctx, tx, component, ms)
}

// querier is what check reads with: a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// check reads the applied migrations of component, checks ms against them
// and returns the first of ms not applied yet, or nil.
func check(ctx context.Context, q querier, component string, ms []migration) (*migration, error) {
	rows, err := q.Query(ctx, `select version, checksum from datamill_migrations where component = $1`, component)
	if err != nil {
		return nil, fmt.Errorf("read migrations of %s: %w", component, err)
	}
	checksums := make(map[int]string)
	latest := 0
	var version int
	var checksum string
	if _, err := pgx.ForEachRow(rows, []any{&version, &checksum}, func() error {
		checksums[version] = checksum
		latest = max(latest, version)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read migrations of %s: %w", component, err)
	}
	var next *migration
	for i, m := range ms {
		sum, ok := checksums[m.version]
		switch {
		case ok && sum != m.checksum:
			return nil, fmt.Errorf("migration %s of %s was changed after it was applied (checksum %.12s, applied %.12s): restore it and add a new migration instead",
				m.name, component, m.checksum, sum)
		case !ok && m.version < latest:
			return nil, fmt.Errorf("migration %s of %s is new but version %04d is already applied: renumber it after %04d",
				m.name, component, latest, latest)
		case !ok && next == nil:
			next = &ms[i]
			next.component = component
		}
	}
	return next, nil
}
