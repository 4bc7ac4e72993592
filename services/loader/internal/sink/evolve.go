package sink

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Column is a data column of a table, with the SQL type it is added with
// when the table lacks it.
type Column struct {
	Name, Type string
}

// Evolution is what Evolve found and did.
type Evolution struct {
	// Added are the columns Evolve added.
	Added []Column
	// Differ names the columns the table has with another type than
	// Column.Type, as "age: integer, want bigint". Evolve leaves them as
	// they are.
	Differ []string
}

// Evolve adds the Columns the table lacks, nullable and without a
// default, in one statement. It only ever adds: no column is dropped,
// renamed or retyped, so the rows written before keep their values and
// hold NULL in the added columns. Concurrent loaders serialise on the
// table's lock, and the later ones find nothing to add.
func (t *Table) Evolve(ctx context.Context, tx pgx.Tx) (Evolution, error) {
	var ev Evolution
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
		return ev, fmt.Errorf("table %s does not exist: a migration of the loader creates each dataset's table", t.Name)
	}
	var adds []string
	for _, c := range t.Columns {
		got, ok := have[c.Name]
		switch {
		case !ok:
			ev.Added = append(ev.Added, c)
			adds = append(adds, fmt.Sprintf("add column if not exists %s %s", ident(c.Name), c.Type))
		case got != c.Type:
			ev.Differ = append(ev.Differ, fmt.Sprintf("%s: %s, want %s", c.Name, got, c.Type))
		}
	}
	if len(adds) == 0 {
		return ev, nil
	}
	if _, err := tx.Exec(ctx, "alter table "+ident(t.Name)+" "+strings.Join(adds, ", ")); err != nil {
		return Evolution{}, fmt.Errorf("add columns to %s: %w", t.Name, err)
	}
	return ev, nil
}
