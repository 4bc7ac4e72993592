package sink

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/services/loader/migrations"
)

var users = &Table{Name: "users", Key: "id", Columns: []Column{
	{Name: "id", Type: "bigint", NotNull: true},
	{Name: "age", Type: "integer", Check: "age between 0 and 150"},
	{Name: "country", Type: "text", Check: "country ~ '^[A-Z]{2}$'"},
	{Name: "monthly_spend", Type: "numeric(12,2)"},
	{Name: "quality_flags", Type: "text[]", NotNull: true, Default: "'{}'"},
}}

func setup(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pg.Open(t.Context(), pg.Config{URL: testkit.Postgres(t), MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pg.Migrate(t.Context(), pool, "loader", migrations.FS); err != nil {
		t.Fatal(err)
	}
	err = pg.InTx(t.Context(), pool, func(tx pgx.Tx) error {
		_, err := users.Evolve(t.Context(), tx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// row is a users row for id at minute m with content c.
func row(id int64, m int, age int, country string) Row {
	return Row{
		Values:  []any{id, age, country, "10.00", []string{}},
		EventID: fmt.Sprintf("ev-%d-%d", id, m), IngestedAt: t0.Add(time.Duration(m) * time.Minute),
		ContentHash: fmt.Sprintf("%d/%s", age, country), Origin: fmt.Sprintf("in/%d/%d", id, m),
	}
}

func apply(t *testing.T, pool *pgxpool.Pool, rows ...Row) []Result {
	t.Helper()
	var res []Result
	err := pg.InTx(t.Context(), pool, func(tx pgx.Tx) error {
		var err error
		res, err = users.Apply(t.Context(), tx, rows)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func actions(res []Result) []Action {
	out := make([]Action, len(res))
	for i, r := range res {
		out[i] = r.Action
		if r.Err != nil {
			out[i] = "ERROR"
		}
	}
	return out
}

type state struct {
	age     int
	country string
	eventID string
}

func read(t *testing.T, pool *pgxpool.Pool, id int64) state {
	t.Helper()
	var s state
	if err := pool.QueryRow(context.Background(), `select age, country, event_id from users where id = $1`, id).Scan(&s.age, &s.country, &s.eventID); err != nil {
		t.Fatalf("read user %d: %v", id, err)
	}
	return s
}

func TestApplyDecidesPerRecord(t *testing.T) {
	pool := setup(t)
	got := actions(apply(t, pool, row(1, 1, 30, "FR"), row(2, 1, 40, "DE")))
	want := []Action{Inserted, Inserted}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("first batch = %v, want %v", got, want)
	}
	got = actions(apply(t, pool,
		row(1, 2, 31, "FR"), // newer, changed
		row(2, 0, 99, "ES"), // older than the row
		row(3, 5, 20, "IT"), // new
	))
	want = []Action{Updated, Stale, Inserted}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("second batch = %v, want %v", got, want)
	}
	if s := read(t, pool, 1); s.age != 31 || s.eventID != "ev-1-2" {
		t.Errorf("user 1 = %+v, want the newer event's content", s)
	}
	if s := read(t, pool, 2); s.age != 40 || s.country != "DE" {
		t.Errorf("user 2 = %+v: an older event overwrote a newer row", s)
	}
	// Same content in a newer event: nothing changes.
	if got := actions(apply(t, pool, row(3, 9, 20, "IT"))); got[0] != Unchanged {
		t.Errorf("newer event with the same content = %v, want UNCHANGED", got)
	}
	if s := read(t, pool, 3); s.eventID != "ev-3-5" {
		t.Errorf("user 3 holds event %s, want the one that set its content", s.eventID)
	}
}

func TestApplyResolvesDuplicateKeysInOneBatch(t *testing.T) {
	pool := setup(t)
	// Three versions of user 7 in one batch, the oldest last: they are
	// applied in the order they came, one round each, instead of ON
	// CONFLICT hitting the same row twice (21000); the newest wins.
	got := actions(apply(t, pool, row(7, 3, 33, "FR"), row(7, 5, 35, "FR"), row(7, 1, 31, "FR")))
	want := []Action{Inserted, Updated, Stale}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("batch = %v, want %v", got, want)
	}
	if s := read(t, pool, 7); s.age != 35 || s.eventID != "ev-7-5" {
		t.Errorf("user 7 = %+v, want the newest event's content", s)
	}
}

func TestApplyOutcomeDoesNotDependOnBatching(t *testing.T) {
	// Events of a few users: changes, a stale one, an unchanged one.
	events := []Row{
		row(1, 1, 30, "FR"), row(2, 2, 40, "DE"), row(1, 3, 31, "FR"), row(3, 3, 50, "IT"),
		row(2, 1, 41, "DE"), row(1, 4, 31, "FR"), row(3, 5, 51, "IT"), row(1, 6, 32, "ES"),
	}
	var first string
	for _, size := range []int{len(events), 1, 2, 3, 5} {
		pool := setup(t)
		var got []Action
		for i := 0; i < len(events); i += size {
			got = append(got, actions(apply(t, pool, events[i:min(i+size, len(events))]...))...)
		}
		outcome := fmt.Sprint(got, read(t, pool, 1), read(t, pool, 2), read(t, pool, 3))
		if first == "" {
			first = outcome
			continue
		}
		if outcome != first {
			t.Errorf("batches of %d: %s\nwhole batch:   %s", size, outcome, first)
		}
	}
	want := "[INSERTED INSERTED UPDATED INSERTED STALE UNCHANGED UPDATED UPDATED] {32 ES ev-1-6} {40 DE ev-2-2} {51 IT ev-3-5}"
	if first != want {
		t.Errorf("outcome %s\nwant    %s", first, want)
	}
}

func TestApplyRecognisesReplays(t *testing.T) {
	pool := setup(t)
	first := []Row{row(1, 1, 30, "FR"), row(2, 1, 40, "DE")}
	apply(t, pool, first...)
	second := []Row{row(1, 2, 31, "FR")}
	apply(t, pool, second...)
	// A crash after the commit replays both batches: each event is
	// recognised as the one the row holds and reported applied again.
	if got := actions(apply(t, pool, second...)); got[0] != Updated {
		t.Errorf("replayed update = %v, want UPDATED", got)
	}
	if got := actions(apply(t, pool, first[1])); got[0] != Inserted {
		t.Errorf("replayed insert = %v, want INSERTED", got)
	}
	// A replayed batch that changed a row twice reports both changes again.
	twice := []Row{row(5, 1, 20, "FR"), row(5, 2, 21, "FR")}
	apply(t, pool, twice...)
	if got := actions(apply(t, pool, twice...)); fmt.Sprint(got) != fmt.Sprint([]Action{Inserted, Updated}) {
		t.Errorf("replayed batch = %v, want INSERTED then UPDATED as the first time", got)
	}
	// The same event in another input record (a source extracted twice)
	// is no replay: it changes nothing and is not reported applied.
	again := row(1, 2, 31, "FR")
	again.Origin = "in/elsewhere"
	if got := actions(apply(t, pool, again)); got[0] != Unchanged {
		t.Errorf("re-sent event = %v, want UNCHANGED", got)
	}
	// The same event twice in a batch is applied once.
	if got := actions(apply(t, pool, row(9, 1, 50, "FR"), row(9, 1, 50, "FR"))); fmt.Sprint(got) != fmt.Sprint([]Action{Inserted, Unchanged}) {
		t.Errorf("repeated event = %v, want INSERTED then UNCHANGED", got)
	}
	var n int
	if err := pool.QueryRow(t.Context(), `select count(*) from users`).Scan(&n); err != nil || n != 4 {
		t.Errorf("%d rows (%v), want 4", n, err)
	}
}

func TestApplyIsolatesRowsTheDatabaseRefuses(t *testing.T) {
	pool := setup(t)
	res := apply(t, pool, row(1, 1, 30, "FR"), row(2, 1, 200, "DE"), row(3, 1, 20, "fra"), row(4, 1, 25, "IT"))
	if got := actions(res); fmt.Sprint(got) != fmt.Sprint([]Action{Inserted, "ERROR", "ERROR", Inserted}) {
		t.Fatalf("actions = %v", got)
	}
	if res[1].Err == nil || res[2].Err == nil {
		t.Fatal("refused rows carry no error")
	}
	var n int
	if err := pool.QueryRow(t.Context(), `select count(*) from users`).Scan(&n); err != nil || n != 2 {
		t.Errorf("%d rows (%v), want the 2 valid ones", n, err)
	}
}

func TestApplyLargeBatch(t *testing.T) {
	pool := setup(t)
	// Far beyond the 65,535 bind parameters an INSERT … VALUES would need.
	rows := make([]Row, 30000)
	for i := range rows {
		rows[i] = row(int64(i), 1, 20+i%50, "FR")
	}
	res := apply(t, pool, rows...)
	for i, r := range res {
		if r.Action != Inserted {
			t.Fatalf("row %d = %+v", i, r)
		}
	}
}

// BenchmarkApply writes batches of 2,000 new users (the default
// STAGE_BATCH_MAX) in one transaction each.
func BenchmarkApply(b *testing.B) {
	pool, err := pg.Open(b.Context(), pg.Config{URL: testkit.Postgres(b), MaxConns: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	if _, err := pg.Migrate(b.Context(), pool, "loader", migrations.FS); err != nil {
		b.Fatal(err)
	}
	err = pg.InTx(b.Context(), pool, func(tx pgx.Tx) error {
		_, err := users.Evolve(b.Context(), tx)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	const batch = 2000
	next := int64(0)
	b.ReportAllocs()
	for b.Loop() {
		rows := make([]Row, batch)
		for i := range rows {
			rows[i] = row(next, 1, 30, "FR")
			next++
		}
		err := pg.InTx(b.Context(), pool, func(tx pgx.Tx) error {
			_, err := users.Apply(b.Context(), tx, rows)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(next)/b.Elapsed().Seconds(), "rows/s")
}

// TestABatchReadsTheTableAndLedgerByIndexOnly checks that what a batch
// costs does not grow with the table: it never scans the table or the
// ledger, whatever mix of new, updated, stale, unchanged and replayed
// records it holds.
func TestABatchReadsTheTableAndLedgerByIndexOnly(t *testing.T) {
	pool := setup(t)
	var rows []Row
	for id := range int64(20000) {
		rows = append(rows, row(id, 2, 30, "FR"))
	}
	apply(t, pool, rows...)
	if _, err := pool.Exec(t.Context(), `analyze users; analyze applied_events`); err != nil {
		t.Fatal(err)
	}
	batch := []Row{
		row(20000, 1, 30, "FR"), // new
		row(1, 3, 31, "FR"),     // newer content
		row(2, 1, 32, "FR"),     // stale
		row(3, 4, 30, "FR"),     // same content
		row(4, 2, 30, "FR"),     // replay of what applied it
	}
	err := pg.InTx(t.Context(), pool, func(tx pgx.Tx) error {
		res, err := users.Apply(t.Context(), tx, batch)
		if err != nil {
			return err
		}
		if got, want := fmt.Sprint(actions(res)), "[INSERTED UPDATED STALE UNCHANGED INSERTED]"; got != want {
			t.Errorf("actions = %s, want %s", got, want)
		}
		// This transaction's own reads, so far.
		scans, err := tx.Query(t.Context(), `select relname, seq_tup_read from pg_stat_xact_user_tables
			where relname in ('users', 'applied_events')`)
		if err != nil {
			return err
		}
		var table string
		var scanned int64
		_, err = pgx.ForEachRow(scans, []any{&table, &scanned}, func() error {
			if scanned != 0 {
				t.Errorf("the batch read %d rows of %s by scanning it: want index lookups only", scanned, table)
			}
			return nil
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReplayWaitingOnTheFirstAttemptIsAppliedAgain replays a batch while
// the first attempt at it is still committing, as a partition's new owner
// does when the old one's database transaction outlives its group
// membership: the replay waits on the first attempt's rows and, once they
// are committed, must report the events applied, as any replay does, so
// that the caller publishes them. Otherwise the first attempt's Kafka
// transaction aborts, the replay publishes nothing and the events never
// reach a later stage.
func TestReplayWaitingOnTheFirstAttemptIsAppliedAgain(t *testing.T) {
	pool := setup(t)
	apply(t, pool, row(2, 1, 40, "DE"))
	batch := []Row{row(1, 1, 30, "FR"), row(2, 2, 41, "DE")}

	first, err := pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = first.Rollback(context.WithoutCancel(t.Context())) }()
	if got := actions(mustApply(t, first, batch)); fmt.Sprint(got) != "[INSERTED UPDATED]" {
		t.Fatalf("first attempt = %v", got)
	}
	var firstPID int
	if err := first.QueryRow(t.Context(), `select pg_backend_pid()`).Scan(&firstPID); err != nil {
		t.Fatal(err)
	}

	type outcome struct {
		res []Result
		err error
	}
	replayed := make(chan outcome, 1)
	go func() {
		var res []Result
		err := pg.InTx(t.Context(), pool, func(tx pgx.Tx) error {
			var err error
			res, err = users.Apply(t.Context(), tx, batch)
			return err
		})
		replayed <- outcome{res, err}
	}()
	// Wait until the replay is blocked by the first attempt's locks.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var blocked bool
		err := pool.QueryRow(t.Context(), `select exists (select 1 from pg_stat_activity
			where $1 = any (pg_blocking_pids(pid)))`, firstPID).Scan(&blocked)
		if err != nil {
			t.Fatal(err)
		}
		if blocked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the replay was not blocked by the first attempt within 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := first.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	var got outcome
	select {
	case got = <-replayed:
	case <-time.After(30 * time.Second):
		t.Fatal("the replay did not end within 30 s of the first attempt's commit")
	}
	if got.err != nil {
		t.Fatal(got.err)
	}
	if a := actions(got.res); fmt.Sprint(a) != "[INSERTED UPDATED]" {
		t.Errorf("replay after the first attempt committed = %v, want [INSERTED UPDATED] as for any replay", a)
	}
}

// mustApply applies rows in tx.
func mustApply(t *testing.T, tx pgx.Tx, rows []Row) []Result {
	t.Helper()
	res, err := users.Apply(t.Context(), tx, rows)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// An existing table is given the columns and checks it lacks; a column of
// another type than declared is reported and left without its check,
// which is written for the declared type, and the start goes on.
func TestEvolveAddsWhatAnOlderTableLacks(t *testing.T) {
	pool, err := pg.Open(t.Context(), pg.Config{URL: testkit.Postgres(t), MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(t.Context(), `create table users (id bigint primary key, age text, event_id text not null, source text,
		ingested_at timestamptz not null, content_hash text not null, created_event_id text not null,
		updated_at timestamptz not null default now());
		insert into users (id, age, event_id, ingested_at, content_hash, created_event_id) values (1, 'old', 'e', now(), 'h', 'e')`); err != nil {
		t.Fatal(err)
	}
	older := &Table{Name: "users", Key: "id", Columns: []Column{
		{Name: "id", Type: "bigint", NotNull: true, Check: "id >= 1"},
		{Name: "age", Type: "integer", Check: "age between 0 and 150"},
		{Name: "country", Type: "text", Check: "country ~ '^[A-Z]{2}$'"},
	}}
	var ev Evolution
	err = pg.InTx(t.Context(), pool, func(tx pgx.Tx) error {
		ev, err = older.Evolve(t.Context(), tx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprintf("%v %v %v %v", ev.Created, len(ev.Added), ev.Differ, ev.Constrained),
		"false 1 [age: text, want integer] [users_id_check users_country_check]"; got != want {
		t.Errorf("evolve = %s, want %s", got, want)
	}
}
