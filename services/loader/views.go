package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/datamill/datamill/schemas"
)

// viewColumnsChanged is the SQLSTATE of CREATE OR REPLACE VIEW refusing to
// drop, rename or retype a column of the view it replaces
// (invalid_table_definition).
const viewColumnsChanged = "42P16"

// undefinedTable is the SQLSTATE of a view reading a table (or a view)
// that does not exist yet: the scorer's predictions table before the
// scorer's first start, or a view waiting for one.
const undefinedTable = "42P01"

// createViews creates or replaces each of views in tx, in their declared
// order, and returns the names of those it dropped and created again, and
// of those that read a table that does not exist yet (waiting, each with
// PostgreSQL's message), which it leaves for a later try.
//
// A view is CREATE OR REPLACE VIEW <name> AS <sql>, with its SQL as
// declared, one statement. When PostgreSQL refuses to replace it because its
// columns changed (one removed, renamed or retyped: viewColumnsChanged),
// the view is dropped and created again in the same transaction; one that
// other views depend on is not dropped, and the error says so. Views that
// are not declared are left as they are. The caller holds the lock that
// serialises loaders on the dataset's table, so replicas starting together
// take turns.
func createViews(ctx context.Context, tx pgx.Tx, views []schemas.View) (recreated, waiting []string, err error) {
	for _, v := range views {
		name := pgx.Identifier{v.Name}.Sanitize()
		def := strings.TrimSpace(v.SQL)
		err := savepoint(ctx, tx, func(tx pgx.Tx) error {
			return execOne(ctx, tx, "create or replace view "+name+" as "+def)
		})
		pgErr, ok := errors.AsType[*pgconn.PgError](err)
		if ok && pgErr.Code == undefinedTable {
			waiting = append(waiting, v.Name+": "+pgErr.Message)
			continue
		}
		if !ok || pgErr.Code != viewColumnsChanged {
			if err != nil {
				return nil, nil, fmt.Errorf("view %s: %w", v.Name, err)
			}
			continue
		}
		if err := execOne(ctx, tx, "drop view "+name); err != nil {
			return nil, nil, fmt.Errorf("view %s: its columns changed; drop it to create it again: %w", v.Name, err)
		}
		if err := execOne(ctx, tx, "create view "+name+" as "+def); err != nil {
			return nil, nil, fmt.Errorf("view %s: %w", v.Name, err)
		}
		recreated = append(recreated, v.Name)
	}
	return recreated, waiting, nil
}

// savepoint runs fn in a savepoint of tx, released when fn succeeds and
// rolled back to when it fails, so that tx can go on.
func savepoint(ctx context.Context, tx pgx.Tx, fn func(pgx.Tx) error) error {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	if err := fn(sp); err != nil {
		if rerr := sp.Rollback(ctx); rerr != nil {
			return errors.Join(err, fmt.Errorf("roll back to savepoint: %w", rerr))
		}
		return err
	}
	if err := sp.Commit(ctx); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	return nil
}

// execOne executes sql, which must be one statement: the extended query
// protocol refuses several, so that a view's SQL cannot run anything else.
// A PostgreSQL error is returned as its *pgconn.PgError, its detail and
// hint added to the message.
func execOne(ctx context.Context, tx pgx.Tx, sql string) error {
	_, err := tx.Conn().PgConn().ExecParams(ctx, sql, nil, nil, nil, nil).Close()
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return &explained{pgErr}
	}
	return err
}

// explained is a PostgreSQL error whose message holds its detail and hint,
// which *pgconn.PgError leaves out.
type explained struct{ *pgconn.PgError }

func (e *explained) Error() string {
	msg := e.PgError.Error()
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

func (e *explained) Unwrap() error { return e.PgError }
