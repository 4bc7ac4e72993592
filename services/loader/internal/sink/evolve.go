package sink

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/datamill/datamill/pkg/pg"
)

// Column is a data column of a table, as the table is created with it or
// as it is added when the table lacks it.
type Column struct {
	Name, Type string
	// NotNull makes the column NOT NULL when the table is created (a
	// required field). A column added later is nullable: the rows already
	// there have no value for it.
	NotNull bool
	// Default is the SQL expression of the column's default when the table
	// is created, "" for none.
	Default string
	// Check is a boolean SQL expression the column's values must satisfy
	// (a range, a format), "" for none: the constraint CheckName.
	Check string
}

// CheckName is the name of the constraint of a column's Check, as
// PostgreSQL names a column's check constraint: <table>_<column>_check.
func (t *Table) CheckName(c Column) string {
	name := t.Name + "_" + c.Name + "_check"
	if len(name) > maxIdent {
		name = name[:maxIdent]
	}
	return name
}

// maxIdent is the longest identifier PostgreSQL keeps (NAMEDATALEN - 1
// bytes); a longer one is truncated.
const maxIdent = 63

// Evolution is what Evolve found and did.
type Evolution struct {
	// Created reports that Evolve created the table.
	Created bool
	// Added are the columns Evolve added.
	Added []Column
	// Differ names the columns the table has with another type than
	// Column.Type, as "age: integer, want bigint". Evolve leaves them as
	// they are.
	Differ []string
	// Constrained names the check constraints Evolve added to a table that
	// lacked them.
	Constrained []string
}

// Evolve creates the table when it does not exist: its Columns (the key
// as primary key, NOT NULL, defaults and checks as declared) and the
// lineage columns. A table that exists is given the Columns it lacks,
// nullable and without a default, in one statement, and the check
// constraints it lacks, NOT VALID: the rows already there are not checked,
// so that no row written before stops the loader's start, while every
// later write is. Evolve only ever adds: no column is dropped, renamed or
// retyped, the rows written before keep their values and hold NULL in the
// added columns, and a check constraint of the name it would add is left
// as it is, as is a column of another type than declared, which gets no
// check. Concurrent loaders serialise on the schema's lock (pg.LockSchema),
// and the later ones find nothing to do.
func (t *Table) Evolve(ctx context.Context, tx pgx.Tx) (Evolution, error) {
	var ev Evolution
	if err := pg.LockSchema(ctx, tx); err != nil {
		return ev, fmt.Errorf("table %s: %w", t.Name, err)
	}
	have := map[string]string{}
	rows, err := tx.Query(ctx, `select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a
		where a.attrelid = to_regclass($1) and a.attnum > 0 and not a.attisdropped`, ident(t.Name))
	if err != nil {
		return ev, fmt.Errorf("columns of %s: %w", t.Name, err)
	}
	var name, typ string
	if _, err := pgx.ForEachRow(rows, []any{&name, &typ}, func() error {
		have[name] = typ
		return nil
	}); err != nil {
		return ev, fmt.Errorf("columns of %s: %w", t.Name, err)
	}
	if len(have) == 0 {
		if _, err := tx.Exec(ctx, t.createStatement()); err != nil {
			return ev, fmt.Errorf("create table %s: %w", t.Name, err)
		}
		ev.Created = true
		return ev, nil
	}
	var adds []string
	differ := map[string]bool{}
	for _, c := range t.Columns {
		got, ok := have[c.Name]
		switch {
		case !ok:
			ev.Added = append(ev.Added, c)
			adds = append(adds, fmt.Sprintf("add column if not exists %s %s", ident(c.Name), c.Type))
		case got != c.Type:
			ev.Differ = append(ev.Differ, fmt.Sprintf("%s: %s, want %s", c.Name, got, c.Type))
			differ[c.Name] = true
		}
	}
	if len(adds) > 0 {
		if _, err := tx.Exec(ctx, "alter table "+ident(t.Name)+" "+strings.Join(adds, ", ")); err != nil {
			return Evolution{}, fmt.Errorf("add columns to %s: %w", t.Name, err)
		}
	}
	if ev.Constrained, err = t.constrain(ctx, tx, differ); err != nil {
		return Evolution{}, err
	}
	return ev, nil
}

// constrain adds the check constraints of Columns the table lacks, by
// name, NOT VALID, and returns their names. The check of a column of
// another type than declared (differ) is not added: it is written for the
// declared type.
func (t *Table) constrain(ctx context.Context, tx pgx.Tx, differ map[string]bool) ([]string, error) {
	rows, err := tx.Query(ctx, `select conname from pg_constraint where conrelid = to_regclass($1) and contype = 'c'`, ident(t.Name))
	if err != nil {
		return nil, fmt.Errorf("constraints of %s: %w", t.Name, err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("constraints of %s: %w", t.Name, err)
	}
	var names, adds []string
	for _, c := range t.Columns {
		if name := t.CheckName(c); c.Check != "" && !differ[c.Name] && !slices.Contains(have, name) {
			names = append(names, name)
			adds = append(adds, fmt.Sprintf("add constraint %s check (%s) not valid", ident(name), c.Check))
		}
	}
	if len(adds) == 0 {
		return nil, nil
	}
	if _, err := tx.Exec(ctx, "alter table "+ident(t.Name)+" "+strings.Join(adds, ", ")); err != nil {
		return nil, fmt.Errorf("add constraints %s to %s: %w", strings.Join(names, ", "), t.Name, err)
	}
	return names, nil
}

// createStatement creates the table: its Columns, the key first as its
// primary key, then the lineage columns. event_id, source, ingested_at
// and content_hash are those of the event whose content the row holds,
// created_event_id the event that inserted the row, updated_at when it
// last changed.
func (t *Table) createStatement() string {
	var defs []string
	for _, c := range t.Columns {
		def := ident(c.Name) + " " + c.Type
		switch {
		case c.Name == t.Key:
			def += " primary key"
		case c.NotNull:
			def += " not null"
		}
		if c.Default != "" {
			def += " default " + c.Default
		}
		if c.Check != "" {
			def += fmt.Sprintf(" constraint %s check (%s)", ident(t.CheckName(c)), c.Check)
		}
		defs = append(defs, def)
	}
	defs = append(defs,
		"event_id text not null",
		"source text",
		"ingested_at timestamp with time zone not null",
		"content_hash text not null",
		"created_event_id text not null",
		"updated_at timestamp with time zone not null default now()")
	return fmt.Sprintf("create table if not exists %s (\n    %s\n)", ident(t.Name), strings.Join(defs, ",\n    "))
}
