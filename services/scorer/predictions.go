package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/datamill/datamill/pkg/pg"
)

// predictionsTable creates the scorer's table of the users dataset, unless
// it exists: one prediction per scored event, of a row of the users table.
const predictionsTable = `
create table if not exists predictions (
    id            bigint generated always as identity primary key,
    user_id       bigint not null references users (id),
    prediction    integer not null check (prediction in (0, 1)),
    probability   double precision not null check (probability between 0 and 1),
    model_version text not null,
    event_id      text not null unique,
    created_at    timestamptz not null default now()
);
create index if not exists predictions_user_id on predictions (user_id)`

// createPredictions creates the predictions table and its indexes when
// they do not exist. Its foreign key needs the users table, which the
// loader creates. Scorers starting together serialise on a lock, and the
// later ones find the table there.
func createPredictions(ctx context.Context, pool *pgxpool.Pool) error {
	err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `select pg_advisory_xact_lock(hashtext('datamill_table predictions'))`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, predictionsTable)
		return err
	})
	if err != nil {
		return fmt.Errorf("create the predictions table: %w", err)
	}
	return nil
}

// awaitTable waits until the users table exists (the loader creates it
// from the dataset's clean schema), then creates the predictions table.
func awaitTable(ctx context.Context, pool *pgxpool.Pool, waiting func(string)) error {
	for {
		var ok bool
		err := pool.QueryRow(ctx, `select to_regclass('users') is not null`).Scan(&ok)
		if err == nil && ok {
			if err = createPredictions(ctx, pool); err == nil {
				return nil
			}
		}
		switch {
		case err != nil:
			waiting(err.Error())
		default:
			waiting("no users table yet (the loader creates it)")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
