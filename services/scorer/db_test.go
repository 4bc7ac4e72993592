package main

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/service"
	"github.com/datamill/datamill/services/scorer/migrations"
)

// migrated opens a pool of url, closed in t.Cleanup, once the scorer's
// migrations are applied there.
func migrated(t testing.TB, url string, maxConns int32) (*pgxpool.Pool, error) {
	t.Helper()
	pool, err := pg.Open(t.Context(), pg.Config{URL: url, MaxConns: maxConns})
	if err != nil {
		return nil, err
	}
	t.Cleanup(pool.Close)
	if _, err := pg.Migrate(t.Context(), pool, "scorer", migrations.FS); err != nil {
		return nil, err
	}
	return pool, nil
}

// changeOn changes the schema with its pool, as service.DB does without
// DATABASE_OWNER_URL.
type changeOn struct{ pool *pgxpool.Pool }

func (c changeOn) Change(ctx context.Context, ddl service.DDL) error {
	_, err := ddl(ctx, c.pool)
	return err
}
