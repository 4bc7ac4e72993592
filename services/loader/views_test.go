package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/service"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
)

// ordersWithViews is a DATASETS_DIR holding the orders dataset, its
// dataset.yaml declaring views.
func ordersWithViews(t *testing.T, views string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"raw.avsc": ordersRaw, "clean.avsc": ordersClean, "dataset.yaml": "views:\n" + views}
	if err := os.MkdirAll(filepath.Join(dir, "orders"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, "orders", name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// ordersDataset is the loader's orders dataset, declaring views.
func ordersDataset(t *testing.T, views string) *dataset {
	t.Helper()
	cat, err := schemas.Open(ordersWithViews(t, views))
	if err != nil {
		t.Fatal(err)
	}
	d, err := newDataset(cat, "orders")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// insertOrders inserts an order of each status, count times.
func insertOrders(t *testing.T, pool *pgxpool.Pool, counts map[string]int) {
	t.Helper()
	id := 0
	for status, n := range counts {
		for range n {
			id++
			if _, err := pool.Exec(t.Context(), `insert into orders (id, priority, total, status, event_id, ingested_at, content_hash, created_event_id)
				values ($1, 1, 10.5, $2, 'ev', now(), 'h', 'ev')`, id, status); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// query is the rows of sql, each as its values' text joined by spaces,
// sorted.
func query(t *testing.T, pool *pgxpool.Pool, sql string) []string {
	t.Helper()
	// The simple protocol: every value comes as its text.
	rows, err := pool.Query(t.Context(), sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		v := r.RawValues()
		s := make([]string, len(v))
		for i, x := range v {
			s[i] = string(x)
		}
		return strings.Join(s, " "), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// viewColumns is the columns of a view, "name type", in order.
func viewColumns(t *testing.T, pool *pgxpool.Pool, view string) []string {
	t.Helper()
	return query(t, pool, `select format('%s %s %s', a.attnum, a.attname, format_type(a.atttypid, a.atttypmod))
		from pg_attribute a where a.attrelid = to_regclass('`+view+`') and a.attnum > 0 and not a.attisdropped`)
}

// The declared views are created with the table; a name that is an SQL
// keyword (order) is quoted. They are replaced at every start.
func TestDeclaredViewsAreCreatedAtStart(t *testing.T) {
	pool := database(t)
	d := ordersDataset(t, `
  - name: orders_by_status
    sql: select status, count(*) as orders from orders group by status
  - name: order
    sql: select id, total from orders where status = 'open';
  - name: all_orders
    sql: select * from orders
`)
	ev, err := d.evolve(t.Context(), pool)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"orders_by_status", "order", "all_orders"}; !ev.Created || !slices.Equal(ev.Views, want) || len(ev.Recreated) > 0 {
		t.Errorf("evolve = %+v, want the table created and the views %v", ev, want)
	}
	insertOrders(t, pool, map[string]int{"open": 2, "closed": 3})
	if diff := cmp.Diff([]string{"closed 3", "open 2"}, query(t, pool, `select * from orders_by_status`)); diff != "" {
		t.Errorf("orders_by_status (-want +got):\n%s", diff)
	}
	if got := query(t, pool, `select count(*) from "order"`); !slices.Equal(got, []string{"2"}) {
		t.Errorf(`the view "order" holds %v rows, want 2`, got)
	}
	// The next start replaces them, and the one over select * gains a
	// column added to the table since.
	if _, err := pool.Exec(t.Context(), `alter table orders add column extra int`); err != nil {
		t.Fatal(err)
	}
	if again, err := d.evolve(t.Context(), pool); err != nil || len(again.Views) != 3 || len(again.Recreated) > 0 {
		t.Errorf("evolving again = %+v, %v; want the views replaced, none recreated", again, err)
	}
	if got := query(t, pool, `select count(extra) from all_orders`); !slices.Equal(got, []string{"0"}) {
		t.Errorf("all_orders: %v, want the column extra, empty", got)
	}
}

// A declaration that changes a view's SQL replaces it; one that removes a
// column drops the view and creates it again. A view made by hand is left
// as it is, and one over the declared view stops its drop.
func TestAChangedViewIsReplaced(t *testing.T) {
	pool := database(t)
	v1 := ordersDataset(t, `
  - name: orders_by_status
    sql: select status, count(*) as orders, sum(total) as total from orders group by status
`)
	if _, err := v1.evolve(t.Context(), pool); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(t.Context(), `create view by_hand as select id from orders`); err != nil {
		t.Fatal(err)
	}
	insertOrders(t, pool, map[string]int{"open": 2, "closed": 1})
	if diff := cmp.Diff([]string{"closed 1 10.50", "open 2 21.00"}, query(t, pool, `select * from orders_by_status`)); diff != "" {
		t.Fatalf("orders_by_status v1 (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name, sql     string
		wantRecreated []string
		wantColumns   []string
		wantRows      []string
	}{
		{
			name:        "a filter added",
			sql:         "select status, count(*) as orders, sum(total) as total from orders where status = 'open' group by status",
			wantColumns: []string{"1 status text", "2 orders bigint", "3 total numeric"},
			wantRows:    []string{"open 2 21.00"},
		},
		{
			name:          "a column removed",
			sql:           "select status, count(*) as orders from orders group by status",
			wantRecreated: []string{"orders_by_status"},
			wantColumns:   []string{"1 status text", "2 orders bigint"},
			wantRows:      []string{"closed 1", "open 2"},
		},
		{
			name:          "a column retyped",
			sql:           "select status, count(*)::int as orders from orders group by status",
			wantRecreated: []string{"orders_by_status"},
			wantColumns:   []string{"1 status text", "2 orders integer"},
			wantRows:      []string{"closed 1", "open 2"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := ordersDataset(t, "  - name: orders_by_status\n    sql: "+tc.sql+"\n")
			ev, err := d.evolve(t.Context(), pool)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ev.Recreated, tc.wantRecreated) {
				t.Errorf("recreated %v, want %v", ev.Recreated, tc.wantRecreated)
			}
			if diff := cmp.Diff(tc.wantColumns, viewColumns(t, pool, "orders_by_status")); diff != "" {
				t.Errorf("the view's columns (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantRows, query(t, pool, `select * from orders_by_status`)); diff != "" {
				t.Errorf("the view's rows (-want +got):\n%s", diff)
			}
		})
	}
	if got := query(t, pool, `select count(*) from by_hand`); !slices.Equal(got, []string{"3"}) {
		t.Errorf("the view made by hand holds %v rows, want 3", got)
	}

	// A view made by hand over the declared one is not dropped with it.
	if _, err := pool.Exec(t.Context(), `create view over_it as select status from orders_by_status`); err != nil {
		t.Fatal(err)
	}
	d := ordersDataset(t, "  - name: orders_by_status\n    sql: select status from orders group by status\n")
	_, err := d.evolve(t.Context(), pool)
	for _, w := range []string{"dataset orders", "view orders_by_status", "its columns changed", "view over_it depends on view orders_by_status"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("evolve under a view made by hand = %v, want an error holding %q", err, w)
		}
	}
	if got := query(t, pool, `select count(*) from over_it`); !slices.Equal(got, []string{"2"}) {
		t.Errorf("the view made by hand over the declared one holds %v rows, want 2", got)
	}
}

// A view PostgreSQL refuses stops the loader's start with an error naming
// the dataset, the view and PostgreSQL's reason, and nothing of the
// dataset's start is kept.
func TestAViewWhoseSQLFailsStopsTheStart(t *testing.T) {
	for _, tc := range []struct {
		name, views string
		want        []string
	}{
		{
			name:  "no such column",
			views: "  - name: orders_by_region\n    sql: select region, count(*) from orders group by region\n",
			want:  []string{"dataset orders", "view orders_by_region", `column "region" does not exist`, "42703"},
		},
		{
			name:  "a syntax error",
			views: "  - name: broken\n    sql: select from where\n",
			want:  []string{"dataset orders", "view broken", "syntax error", "42601"},
		},
		{
			name:  "a second statement",
			views: "  - name: sneaky\n    sql: select 1 as one; create table sneaky_table (x int)\n",
			want:  []string{"dataset orders", "view sneaky", "multiple commands", "42601"},
		},
		{
			name:  "the name of a table",
			views: "  - name: applied_events\n    sql: select 1 as one\n",
			want:  []string{"dataset orders", "view applied_events", `"applied_events" is not a view`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := database(t)
			_, err := ordersDataset(t, tc.views).evolve(t.Context(), pool)
			if err == nil {
				t.Fatal("evolve succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("evolve = %v, want an error holding %q", err, w)
				}
			}
			if got := query(t, pool, `select coalesce(to_regclass('orders')::text, '-') || ' ' || coalesce(to_regclass('sneaky_table')::text, '-')`); !slices.Equal(got, []string{"- -"}) {
				t.Errorf("after the error the database has %v, want neither the table nor anything else", got)
			}
		})
	}

	t.Run("run", func(t *testing.T) {
		dir := ordersWithViews(t, "  - name: orders_by_region\n    sql: select region from orders\n")
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		env := append(testkit.As(testkit.Stack(t, true), "loader"), "DATASETS=orders", "DATASETS_DIR="+dir, "ADMIN_ADDR=127.0.0.1:0")
		err := run(ctx, nil, env, io.Discard)
		if err == nil || ctx.Err() != nil {
			t.Fatalf("run = %v (context: %v), want it to stop at start", err, ctx.Err())
		}
		for _, w := range []string{"dataset orders", "view orders_by_region", `column "region" does not exist`} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("run = %v, want an error holding %q", err, w)
			}
		}
	})
}

// Loader replicas starting together on a new database all start, and the
// views are there once.
func TestReplicasStartingTogetherCreateTheViewsOnce(t *testing.T) {
	pool := database(t)
	views := "  - name: orders_by_status\n    sql: select status, count(*) as orders from orders group by status\n"
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for range 4 {
		d := ordersDataset(t, views)
		wg.Go(func() {
			_, err := d.evolve(t.Context(), pool)
			mu.Lock()
			defer mu.Unlock()
			errs = append(errs, err)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Errorf("a replica's start: %v", err)
		}
	}
	if got := query(t, pool, `select count(*) from pg_views where viewname = 'orders_by_status'`); !slices.Equal(got, []string{"1"}) {
		t.Errorf("%v views orders_by_status, want 1", got)
	}
}

// The users dataset declares users_by_country: the loader creates it at
// start, beside the users table.
func TestTheUsersViewIsThereAfterTheLoaderStarts(t *testing.T) {
	env := testkit.Stack(t, true)
	testkit.Serve(t, run, testkit.As(env, "loader"))
	var url string
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "DATABASE_URL="); ok {
			url = v
		}
	}
	pool, err := pg.Open(t.Context(), pg.Config{URL: url, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	// Ready may come before the stages are built: wait for the view.
	for deadline := time.Now().Add(time.Minute); ; {
		var there bool
		if err := pool.QueryRow(t.Context(), `select to_regclass('users_by_country') is not null`).Scan(&there); err != nil {
			t.Fatal(err)
		}
		if there {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no view users_by_country a minute after the loader started")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := pool.Exec(t.Context(), `insert into users (id, country, event_id, ingested_at, content_hash, created_event_id)
		select i, case when i <= 2 then 'FR' else 'DE' end, 'ev', now(), 'h', 'ev' from generate_series(1, 5) i`); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"DE 3", "FR 2"}, query(t, pool, `select country, users from users_by_country`)); diff != "" {
		t.Errorf("users_by_country (-want +got):\n%s", diff)
	}
}

// A view over a table that is not there yet (the scorer's predictions
// table before the scorer first starts) waits: the other views are
// created, the start goes on, and the view is created once the table is
// there.
func TestAViewOverATableNotThereYetWaitsForIt(t *testing.T) {
	pool := database(t)
	d := ordersDataset(t, `
  - name: orders_scored
    sql: select o.id, p.estimate from orders o join orders_predictions p on p.id = o.id
  - name: orders_by_status
    sql: select status, count(*) as orders from orders group by status
`)
	ev, err := d.evolve(t.Context(), pool)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ev.Views, []string{"orders_by_status"}) || len(ev.Waiting) != 1 ||
		!strings.HasPrefix(ev.Waiting[0], "orders_scored: ") || !strings.Contains(ev.Waiting[0], "orders_predictions") {
		t.Fatalf("evolve = %+v, want orders_by_status created and orders_scored waiting for orders_predictions", ev)
	}
	if _, err := pool.Exec(t.Context(), `create table orders_predictions (id bigint, estimate double precision)`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { d.awaitViews(ctx, zap.NewNop(), changeOn{pool}); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(30 * time.Second)
	for !slices.Equal(query(t, pool, `select count(*) from information_schema.views where table_name = 'orders_scored'`), []string{"1"}) {
		if time.Now().After(deadline) {
			t.Fatal("orders_scored not created within 30 s of its table")
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case <-done: // no view waits any more: the retries stop
	case <-time.After(30 * time.Second):
		t.Error("awaitViews still runs once every view is created")
	}
}

// changeOn changes the schema with its pool, as service.DB does without
// DATABASE_OWNER_URL.
type changeOn struct{ pool *pgxpool.Pool }

func (c changeOn) Change(ctx context.Context, ddl service.DDL) error {
	_, err := ddl(ctx, c.pool)
	return err
}
