package service

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/pg"
)

// Schema is what a service keeps in PostgreSQL.
type Schema struct {
	// Component names the service's migrations in datamill_migrations.
	Component string
	// Migrations are its NNNN_description.sql files (pg.Migrate); nil for
	// none.
	Migrations fs.FS
	// Tables are the tables its migrations create, by kind, granted to
	// the datamill roles after every change.
	Tables pg.Tables
	// DDL, when set, creates or changes what the service declares outside
	// its migrations (a dataset's table from its schema), after them.
	DDL DDL
}

// DDL creates or changes tables, checking first: when nothing is missing
// it must change nothing, so that a role without the right to change the
// schema can run it at every start. It returns the tables it keeps, by
// kind, for the grants.
type DDL func(ctx context.Context, pool *pgxpool.Pool) (pg.Tables, error)

// Migrator is the configuration of a service that keeps tables:
// `<service> migrate` applies its Schema and exits.
type Migrator interface {
	Schema(p *Process) (pg.Config, Schema, error)
}

// DB is a service's database: the pool of its own role (DATABASE_URL),
// and the way to change its schema later.
type DB struct {
	*pgxpool.Pool
	cfg pg.Config
	p   *Process
}

// Database applies s, then opens and returns the pool of cfg, which the
// caller closes. With DATABASE_OWNER_URL set, s is applied with the
// migration owner's pool, closed once done: its migrations, its DDL and
// the grants of their tables to the datamill roles. Without it, s is
// applied with the service's own pool, which changes nothing when
// nothing is missing; when something is and the role may not change it,
// the error names what is missing and says to run `<service> migrate`.
func (p *Process) Database(ctx context.Context, cfg pg.Config, s Schema) (*DB, error) {
	pool, err := pg.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	db := &DB{Pool: pool, cfg: cfg, p: p}
	if err := db.change(ctx, s); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// Change runs ddl as Database applies a Schema's DDL: with the migration
// owner's pool (opened for it) when DATABASE_OWNER_URL is set, granting
// what it returns, else with the service's pool. For what a service can
// only create once something else exists (the scorer's predictions table,
// once the loader created the dataset's).
func (db *DB) Change(ctx context.Context, ddl DDL) error {
	return db.change(ctx, Schema{DDL: ddl})
}

func (db *DB) change(ctx context.Context, s Schema) error {
	if db.cfg.OwnerURL == "" {
		return migrate(ctx, db.p, db.Pool, s, false)
	}
	owner, err := pg.OpenOwner(ctx, db.cfg)
	if err != nil {
		return err
	}
	defer owner.Close()
	return migrate(ctx, db.p, owner, s, true)
}

// migrate applies s with pool: its migrations (when it has some), its
// DDL, then the grants of its tables, datamill_migrations' and
// datamill_batches' when the pool's role may grant (owner says it is the
// migration owner's; otherwise a superuser or the tables' owner may). A
// refusal for want of a privilege, with a pool that is not the owner's,
// says to run `<service> migrate`.
func migrate(ctx context.Context, p *Process, pool *pgxpool.Pool, s Schema, owner bool) error {
	tables := pg.Tables{}
	err := func() error {
		if s.Migrations != nil {
			applied, err := pg.Migrate(ctx, pool, s.Component, s.Migrations)
			if err != nil {
				return err
			}
			if applied > 0 {
				p.Log.Info("migrated the database", zap.String("component", s.Component), zap.Int("migrations", applied))
			}
			maps.Copy(tables, s.Tables)
			tables["datamill_migrations"], tables["datamill_batches"] = pg.Migrations, pg.BatchAudit
		}
		if s.DDL != nil {
			made, err := s.DDL(ctx, pool)
			if err != nil {
				return err
			}
			maps.Copy(tables, made)
		}
		return nil
	}()
	if err != nil {
		if !owner && pg.Refused(err) {
			return fmt.Errorf("%w: the schema lacks what this release needs and %s may not change it; run `%s migrate` with DATABASE_OWNER_URL, the migration owner's URL (or give it to %s)",
				err, pool.Config().ConnConfig.User, p.Name, p.Name)
		}
		return err
	}
	if !owner {
		may, err := mayGrant(ctx, pool, tables)
		if err != nil || !may {
			return err
		}
	}
	return pg.Grant(ctx, pool, tables)
}

// mayGrant reports whether the pool's role owns every one of tables (or is
// a superuser), so that granting on them changes something.
func mayGrant(ctx context.Context, pool *pgxpool.Pool, tables pg.Tables) (bool, error) {
	if len(tables) == 0 {
		return false, nil
	}
	var may bool
	err := pool.QueryRow(ctx, `select coalesce(bool_and(pg_has_role(current_user, c.relowner, 'usage')), false)
		from pg_class c where c.oid = any (select to_regclass(quote_ident(t)) from unnest($1::text[]) t)`,
		slices.Collect(maps.Keys(tables))).Scan(&may)
	if err != nil {
		return false, fmt.Errorf("who owns the tables: %w", err)
	}
	return may, nil
}
