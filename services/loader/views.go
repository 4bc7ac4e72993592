package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// createViews creates or replaces each of views in tx that is missing or
// not as declared, in their declared order, and returns the names of those
// it created or replaced, of those it dropped and created again, and of
// those that read a table that does not exist yet (waiting, each with
// PostgreSQL's message), which it leaves for a later try.
//
// A view is CREATE OR REPLACE VIEW <name> AS <sql>, with its SQL as
// declared, one statement, and its comment holds the SQL's digest
// (viewMark): a view whose comment holds the declared SQL's is as
// declared and left alone, so that a role that may not replace views
// (a service's own) changes nothing when nothing changed. When
// PostgreSQL refuses to replace one because its columns changed (one
// removed, renamed or retyped: viewColumnsChanged), the view is dropped
// and created again in the same transaction; one that other views depend
// on is not dropped, and the error says so. Views that are not declared
// are left as they are. The caller holds the lock that serialises loaders
// on the dataset's table, so replicas starting together take turns.
func createViews(ctx context.Context, tx pgx.Tx, views []schemas.View) (replaced, recreated, waiting []string, err error) {
	for _, v := range views {
		name := pgx.Identifier{v.Name}.Sanitize()
		def := strings.TrimSpace(v.SQL)
		mark := viewMark(def)
		same, err := asDeclared(ctx, tx, name, def, mark)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("view %s: %w", v.Name, err)
		}
		if same {
			continue
		}
		err = savepoint(ctx, tx, func(tx pgx.Tx) error {
			return execOne(ctx, tx, "create or replace view "+name+" as "+def)
		})
		pgErr, ok := errors.AsType[*pgconn.PgError](err)
		if ok && pgErr.Code == undefinedTable {
			waiting = append(waiting, v.Name+": "+pgErr.Message)
			continue
		}
		if ok && pgErr.Code == viewColumnsChanged {
			if err := execOne(ctx, tx, "drop view "+name); err != nil {
				return nil, nil, nil, fmt.Errorf("view %s: its columns changed; drop it to create it again: %w", v.Name, err)
			}
			if err := execOne(ctx, tx, "create view "+name+" as "+def); err != nil {
				return nil, nil, nil, fmt.Errorf("view %s: %w", v.Name, err)
			}
			recreated = append(recreated, v.Name)
		} else if err != nil {
			return nil, nil, nil, fmt.Errorf("view %s: %w", v.Name, err)
		}
		if err := execOne(ctx, tx, "comment on view "+name+" is '"+mark+"'"); err != nil {
			return nil, nil, nil, fmt.Errorf("view %s: %w", v.Name, err)
		}
		replaced = append(replaced, v.Name)
	}
	return replaced, recreated, waiting, nil
}

// asDeclared reports whether the view name is there as def declares it:
// its comment is mark, and its columns are those def reads now (a view
// over select * lacks the columns its tables gained since it was created).
// It changes nothing and needs no privilege on what def reads: the
// statement is described, not run.
func asDeclared(ctx context.Context, tx pgx.Tx, name, def, mark string) (bool, error) {
	var comment *string
	if err := tx.QueryRow(ctx, `select obj_description(to_regclass($1), 'pg_class')`, name).Scan(&comment); err != nil {
		return false, err
	}
	if comment == nil || *comment != mark {
		return false, nil
	}
	rows, err := tx.Query(ctx, `select attname, atttypid from pg_attribute
		where attrelid = to_regclass($1) and attnum > 0 and not attisdropped order by attnum`, name)
	if err != nil {
		return false, err
	}
	type column struct {
		name string
		oid  uint32
	}
	var have []column
	var c column
	if _, err := pgx.ForEachRow(rows, []any{&c.name, &c.oid}, func() error {
		have = append(have, c)
		return nil
	}); err != nil {
		return false, err
	}
	var sd *pgconn.StatementDescription
	err = savepoint(ctx, tx, func(tx pgx.Tx) error {
		var err error
		sd, err = tx.Conn().PgConn().Prepare(ctx, "", def, nil)
		return err
	})
	if err != nil {
		return false, nil // a table it reads is gone, say: create it again
	}
	if len(sd.Fields) != len(have) {
		return false, nil
	}
	for i, f := range sd.Fields {
		if f.Name != have[i].name || f.DataTypeOID != have[i].oid {
			return false, nil
		}
	}
	return true, nil
}

// viewMark is the comment of a view created from def: the digest of its
// SQL, which tells whether the view is as declared.
func viewMark(def string) string {
	sum := sha256.Sum256([]byte(def))
	return "datamill view sha256:" + hex.EncodeToString(sum[:])
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
