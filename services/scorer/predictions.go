package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/service"
	"github.com/datamill/datamill/services/scorer/internal/model"
)

// predictionsTable creates the scorer's table of a dataset, unless it
// exists: one prediction per scored event, of a row of the dataset's
// table. %[1]s is the table, %[2]s the key's column, %[3]s its type,
// %[4]s the dataset's table and %[5]s its key, %[6]s the check of a
// probability (none for a ridge model, whose prediction is any number)
// and %[7]s the index on the key.
const predictionsTable = `
create table if not exists %[1]s (
    id            bigint generated always as identity primary key,
    %[2]s %[3]s not null references %[4]s (%[5]s),
    prediction    integer not null check (prediction in (0, 1)),
    probability   double precision not null%[6]s,
    model_version text not null,
    event_id      text not null unique,
    created_at    timestamptz not null default now()
);
create index if not exists %[7]s on %[1]s (%[2]s)`

// estimateColumns are the columns of a ridge model's predictions table
// besides the others: the estimate (the prediction, as probability holds
// it; null in rows written before the column was) and whether the row
// stated its own value of the label. %[1]s is the table.
const estimateColumns = `alter table %[1]s
    add column if not exists estimate double precision,
    add column if not exists stated   boolean`

// createPredictions creates the dataset's predictions table and its index
// when they do not exist, its key column of the type of the dataset
// table's key, keyType. Scorers starting together serialise on a lock,
// and the later ones find the table there.
func (d *dataset) createPredictions(ctx context.Context, pool *pgxpool.Pool, keyType string) error {
	check := " check (probability between 0 and 1)"
	if d.decl.Kind == model.Ridge {
		check = ""
	}
	ddl := fmt.Sprintf(predictionsTable, ident(d.predictions), ident(d.keyColumn), keyType, ident(d.table), ident(d.key),
		check, ident(d.predictions+"_"+d.keyColumn))
	if d.ridge() {
		// A table created before they were kept gains them too.
		ddl += fmt.Sprintf(";\n"+estimateColumns, ident(d.predictions))
	}
	// Checked first, and changed only when something is missing, so that
	// the scorer's own role, which may not, can run it at every start.
	present, err := d.predictionsPresent(ctx, pool)
	if err != nil || present {
		return err
	}
	err = pg.InTx(ctx, pool, func(tx pgx.Tx) error {
		// The schema's lock: its foreign key changes the dataset's
		// table, on which a loader may be granting meanwhile.
		if err := pg.LockSchema(ctx, tx); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, ddl)
		return err
	})
	if err != nil {
		return fmt.Errorf("create the predictions table %s: %w", d.predictions, err)
	}
	return nil
}

// predictionsPresent reports whether the predictions table is there with
// the columns its model needs.
func (d *dataset) predictionsPresent(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	want := []string{"event_id", "probability"}
	if d.ridge() {
		want = append(want, "estimate", "stated")
	}
	var n int
	err := pool.QueryRow(ctx, `select count(*) from pg_attribute
		where attrelid = to_regclass($1) and attname = any ($2) and not attisdropped`, ident(d.predictions), want).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("columns of %s: %w", d.predictions, err)
	}
	return n == len(want), nil
}

// ident quotes a name for SQL.
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// schemaChanger changes the database's schema: *service.DB.
type schemaChanger interface {
	Change(ctx context.Context, ddl service.DDL) error
}

// keyColumnType is the type of the dataset table's key column, or "" while
// the table is not there.
func (d *dataset) keyColumnType(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	var keyType *string
	err := pool.QueryRow(ctx, `select format_type(a.atttypid, a.atttypmod) from pg_attribute a
		where a.attrelid = to_regclass($1) and a.attname = $2 and not a.attisdropped`, ident(d.table), d.key).Scan(&keyType)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && keyType == nil {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("key of %s: %w", d.table, err)
	}
	return *keyType, nil
}

// predictionsDDL creates the dataset's predictions table, when the
// dataset's table is there: the DDL of the scorer's Schema and of
// awaitTable. It reports whether it found the dataset's table.
func (d *dataset) predictionsDDL(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	keyType, err := d.keyColumnType(ctx, pool)
	if err != nil || keyType == "" {
		return false, err
	}
	return true, d.createPredictions(ctx, pool, keyType)
}

// awaitTable waits until the dataset's table exists with its key column
// (the loader creates it from the dataset's clean schema), then creates
// the predictions table unless it is there, a change of db's schema. It
// looks with pool, the scorer's own, so that the migration owner's is
// opened only to create the table.
func (d *dataset) awaitTable(ctx context.Context, db schemaChanger, pool *pgxpool.Pool, waiting func(string)) error {
	for {
		keyType, err := d.keyColumnType(ctx, pool)
		if err == nil && keyType != "" {
			var present bool
			if present, err = d.predictionsPresent(ctx, pool); err == nil && present {
				return nil
			}
			if err == nil {
				err = db.Change(ctx, func(ctx context.Context, pool *pgxpool.Pool) (pg.Tables, error) {
					if _, err := d.predictionsDDL(ctx, pool); err != nil {
						return nil, err
					}
					return pg.Tables{d.predictions: pg.Predictions}, nil
				})
				if err == nil {
					return nil
				}
			}
		}
		switch {
		case err != nil:
			waiting(err.Error())
		default:
			waiting(fmt.Sprintf("no %s table with its key %s yet (the loader creates it)", d.table, d.key))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
