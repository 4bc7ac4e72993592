// Package sink writes batches of records into a PostgreSQL table,
// idempotently, and says what it did with each.
//
// A batch is applied as if its events came one at a time, in the order
// they came, so that its outcome never depends on where batches begin and
// end. The events of a batch are split into rounds, the k-th round
// holding the k-th event of every key, so that no key reaches
// ON CONFLICT twice in one statement (SQLSTATE 21000). Each round is copied
// into a temporary staging table with COPY (no bind parameters, whatever
// the batch size) and merged with one INSERT … ON CONFLICT DO UPDATE. A row
// changes only for an event newer than the one it holds whose content
// differs.
//
// Every applied event is written, in the same statement, to the ledger
// table applied_events with the input record it came in (Row.Origin). A
// row whose event and origin are found there is a replay of that record:
// it is reported as applied again, with its first action, so that the
// caller republishes what a crash may have kept from being published. The
// ledger is read in a statement of its own, after the merge, so that a
// replay that waited for the first attempt's transaction to commit (a
// partition's new owner replaying the batch its old owner is still
// committing) sees that attempt's events and reports them applied.
package sink

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Action is what the sink did with a record.
type Action string

// The actions.
const (
	// Inserted: the record created its row.
	Inserted Action = "INSERTED"
	// Updated: the record changed its row.
	Updated Action = "UPDATED"
	// Unchanged: the row already held the same content.
	Unchanged Action = "UNCHANGED"
	// Stale: the row, or another record of the batch, holds a newer event.
	Stale Action = "STALE"
)

// Applied reports whether the record's content is what its row now holds
// because of it: the actions downstream stages hear about.
func (a Action) Applied() bool { return a == Inserted || a == Updated }

// Table declares a dataset's table. Besides Columns, the table has the
// lineage columns event_id, source, ingested_at, content_hash,
// created_event_id and updated_at.
type Table struct {
	// Name of the table; Key its primary key column.
	Name, Key string
	// Columns are the data columns in Row.Values order, Key first.
	Columns []Column
}

// Row is one record for the table.
type Row struct {
	// Values in Table.Columns order.
	Values      []any
	EventID     string
	Source      *string
	IngestedAt  time.Time
	ContentHash string
	// Origin names the input record the row came in, e.g. its
	// topic/partition/offset and timestamp: the same origin again is a
	// replay.
	Origin string
}

// Result is the outcome of one row of a batch.
type Result struct {
	Action Action
	// Err is set when the row itself was refused by the database (a
	// constraint or a value out of range): it is not applied, the rest of
	// the batch is.
	Err error
}

// Apply writes rows in tx and returns one Result per row, in order. Errors
// of the database as a whole fail the batch; errors of a row's data are
// isolated to that row.
//
// An event that appears more than once in rows is applied once; its
// repeats are Unchanged.
func (t *Table) Apply(ctx context.Context, tx pgx.Tx, rows []Row) ([]Result, error) {
	unique, firsts, repeatOf := dedupe(rows)
	out := make([]Result, len(rows))
	for _, round := range rounds(unique) {
		batch := make([]Row, len(round))
		for i, u := range round {
			batch[i] = unique[u]
		}
		results, err := t.apply(ctx, tx, batch)
		if err != nil {
			return nil, err
		}
		for i, u := range round {
			out[firsts[u]] = results[i]
		}
	}
	for j, first := range repeatOf {
		out[j] = Result{Action: Unchanged, Err: out[first].Err}
	}
	return out, nil
}

// dedupe keeps the first row of each event id. firsts[i] is the index in
// rows of unique[i]; repeatOf maps a repeat's index to its first's.
func dedupe(rows []Row) (unique []Row, firsts []int, repeatOf map[int]int) {
	seen := make(map[string]int, len(rows))
	repeatOf = map[int]int{}
	for j, r := range rows {
		if first, ok := seen[r.EventID]; ok {
			repeatOf[j] = first
			continue
		}
		seen[r.EventID] = j
		unique = append(unique, r)
		firsts = append(firsts, j)
	}
	return unique, firsts, repeatOf
}

// rounds returns, as indexes into rows, the first row of every key, then
// the second, and so on, each key's rows in the order they came.
func rounds(rows []Row) [][]int {
	seen := map[any]int{} // key → rows of it so far
	var out [][]int
	for i, r := range rows {
		n := seen[r.Values[0]]
		seen[r.Values[0]] = n + 1
		if n == len(out) {
			out = append(out, nil)
		}
		out[n] = append(out[n], i)
	}
	return out
}

func (t *Table) apply(ctx context.Context, tx pgx.Tx, rows []Row) ([]Result, error) {
	actions, err := t.underSavepoint(ctx, tx, rows)
	if err == nil {
		out := make([]Result, len(rows))
		for i, a := range actions {
			out[i] = Result{Action: a}
		}
		return out, nil
	}
	if !isDataError(err) {
		return nil, err
	}
	// A row's data failed the batch: apply row by row to find and set
	// aside the rows at fault.
	out := make([]Result, len(rows))
	for i := range rows {
		actions, err := t.underSavepoint(ctx, tx, rows[i:i+1])
		switch {
		case err == nil:
			out[i] = Result{Action: actions[0]}
		case isDataError(err):
			out[i] = Result{Err: err}
		default:
			return nil, err
		}
	}
	return out, nil
}

// underSavepoint applies rows under a savepoint, rolled back when they
// fail, so that the transaction can go on.
func (t *Table) underSavepoint(ctx context.Context, tx pgx.Tx, rows []Row) ([]Action, error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("savepoint: %w", err)
	}
	actions, err := t.applyBatch(ctx, sp, rows)
	if err != nil {
		if rbErr := sp.Rollback(ctx); rbErr != nil {
			return nil, errors.Join(err, fmt.Errorf("roll back to savepoint: %w", rbErr))
		}
		return nil, err
	}
	if err := sp.Commit(ctx); err != nil {
		return nil, fmt.Errorf("release savepoint: %w", err)
	}
	return actions, nil
}

// isDataError reports a PostgreSQL error caused by the values of the rows
// (SQLSTATE classes 22, data exception, and 23, integrity constraint
// violation) rather than by the database or the statement.
func isDataError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23"))
}

// applyBatch stages rows, at most one per key, and merges them in one
// statement.
func (t *Table) applyBatch(ctx context.Context, tx pgx.Tx, rows []Row) ([]Action, error) {
	stage := t.staging()
	if _, err := tx.Exec(ctx, fmt.Sprintf(`create temp table if not exists %s
		(like %s including defaults, ord integer not null, origin text not null) on commit delete rows`, ident(stage), ident(t.Name))); err != nil {
		return nil, fmt.Errorf("stage %s: %w", t.Name, err)
	}
	if _, err := tx.Exec(ctx, "truncate "+ident(stage)); err != nil {
		return nil, fmt.Errorf("stage %s: %w", t.Name, err)
	}
	cols := append(append([]string{"ord", "origin"}, t.names()...), "event_id", "source", "ingested_at", "content_hash", "created_event_id")
	n, err := tx.CopyFrom(ctx, pgx.Identifier{stage}, cols, pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
		r := rows[i]
		if len(r.Values) != len(t.Columns) {
			return nil, fmt.Errorf("row %d has %d values for %d columns", i, len(r.Values), len(t.Columns))
		}
		vals := make([]any, 0, len(cols))
		vals = append(vals, i, r.Origin)
		vals = append(vals, r.Values...)
		return append(vals, r.EventID, r.Source, r.IngestedAt, r.ContentHash, r.EventID), nil
	}))
	if err != nil {
		return nil, fmt.Errorf("copy %d rows into %s: %w", len(rows), stage, err)
	}
	if int(n) != len(rows) {
		return nil, fmt.Errorf("copied %d of %d rows into %s", n, len(rows), stage)
	}

	key, table := ident(t.Key), ident(t.Name)
	var insertCols, sets []string
	for _, c := range append(t.names(), "event_id", "source", "ingested_at", "content_hash", "created_event_id") {
		insertCols = append(insertCols, ident(c))
		if c != t.Key && c != "created_event_id" {
			sets = append(sets, fmt.Sprintf("%s = excluded.%s", ident(c), ident(c)))
		}
	}
	// The merge statement reports the rows it applied and writes them to
	// the ledger. The others are told apart by a second statement, which
	// reads the table and the ledger as they are once the merge is done:
	// in READ COMMITTED each statement sees what was committed before it
	// began, and the merge may have waited for another transaction
	// holding the same rows (the first attempt at this batch, still
	// committing when a partition's new owner replays it). Read within the
	// merge statement, the ledger would not show that attempt's events,
	// and their replay would be reported unchanged: never published.
	// "before" tells unchanged content and stale events apart (the merge
	// left these rows' keys alone: the stage holds one row per key), "done"
	// the events applied by an earlier attempt at the batch. Both are
	// scalar subqueries, looked up by index: as joins, the planner hashes
	// the whole table and the whole ledger for every batch, which makes a
	// batch's cost grow with the table.
	merge := fmt.Sprintf(`
with merged as (
    insert into %[3]s (%[4]s)
    select %[4]s from %[2]s
    on conflict (%[1]s) do update set %[5]s, updated_at = now()
    where (%[3]s.ingested_at, %[3]s.event_id) < (excluded.ingested_at, excluded.event_id)
      and %[3]s.content_hash <> excluded.content_hash
    returning %[1]s, xmax = 0 as inserted
), applied as (
    select s.ord, s.event_id, s.origin, case when m.inserted then 'INSERTED' else 'UPDATED' end as action
    from %[2]s s
    join merged m on m.%[1]s = s.%[1]s
), ledger as (
    insert into applied_events (table_name, event_id, action, origin)
    select $1, event_id, action, origin from applied
)
select ord, action from applied`,
		key, ident(stage), table, strings.Join(insertCols, ", "), strings.Join(sets, ", "))
	actions := make([]Action, len(rows))
	if err := t.readActions(ctx, tx, actions, merge, t.Name); err != nil {
		return nil, err
	}
	var rest []int32
	for i, a := range actions {
		if a == "" {
			rest = append(rest, int32(i))
		}
	}
	if len(rest) > 0 {
		others := fmt.Sprintf(`
select s.ord, coalesce(
        (select done.action from applied_events done
         where done.table_name = $1 and done.event_id = s.event_id and done.origin = s.origin),
        (select 'STALE' from %[3]s before
         where before.%[1]s = s.%[1]s and (before.ingested_at, before.event_id) > (s.ingested_at, s.event_id)),
        'UNCHANGED')
from %[2]s s
where s.ord = any ($2::int[])`, key, ident(stage), table)
		if err := t.readActions(ctx, tx, actions, others, t.Name, rest); err != nil {
			return nil, err
		}
	}
	for i, a := range actions {
		if a == "" {
			return nil, fmt.Errorf("merge into %s: no outcome for row %d", t.Name, i)
		}
	}
	return actions, nil
}

// readActions runs query, whose rows are (ord, action), and sets
// actions[ord].
func (t *Table) readActions(ctx context.Context, tx pgx.Tx, actions []Action, query string, args ...any) error {
	res, err := tx.Query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("merge into %s: %w", t.Name, err)
	}
	var ord int
	var action string
	_, err = pgx.ForEachRow(res, []any{&ord, &action}, func() error {
		actions[ord] = Action(action)
		return nil
	})
	if err != nil {
		return fmt.Errorf("merge into %s: %w", t.Name, err)
	}
	return nil
}

// staging names the session's temporary table the rows are copied into.
// It is created like the table, when first used: its name tells the
// columns copied, so that a table given a column later (Evolve, by this
// or another process) gets a staging table that has it.
func (t *Table) staging() string {
	h := fnv.New32a()
	for _, c := range t.Columns {
		_, _ = h.Write([]byte(c.Name)) // hash.Hash's Write never returns an error
		_, _ = h.Write([]byte{0})
	}
	return fmt.Sprintf("datamill_stage_%s_%08x", t.Name, h.Sum32())
}

// names are the names of the data columns.
func (t *Table) names() []string {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.Name
	}
	return names
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }
