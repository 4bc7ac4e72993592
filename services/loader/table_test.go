package main

import (
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/services/loader/migrations"
)

// ordersClean is the clean schema of a dataset that is not built in, with
// required and optional fields of every column kind, and ranges.
const ordersClean = `{
  "type": "record", "name": "Clean", "namespace": "datamill.orders", "datamill.key": "id",
  "fields": [
    {"name": "id", "type": "long", "datamill.clean": {"type": "int", "required": true, "min": 1}},
    {"name": "quantity", "type": ["null", "int"], "default": null, "datamill.clean": {"type": "int", "min": 0, "max": 1000}},
    {"name": "priority", "type": "int", "datamill.clean": {"type": "int", "required": true, "min": 1, "max": 5}},
    {"name": "price", "type": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}], "default": null,
     "datamill.clean": {"type": "decimal", "min": 0.5, "max": 10000}},
    {"name": "total", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2},
     "datamill.clean": {"type": "decimal", "required": true, "min": 0}},
    {"name": "ordered_on", "type": ["null", {"type": "int", "logicalType": "date"}], "default": null,
     "datamill.clean": {"type": "date", "min": "2020-01-01", "max": "2030-12-31"}},
    {"name": "shipped_at", "type": ["null", {"type": "long", "logicalType": "timestamp-micros"}], "default": null},
    {"name": "gift", "type": ["null", "boolean"], "default": null},
    {"name": "paid", "type": "boolean", "default": false},
    {"name": "note", "type": ["null", "string"], "default": null, "datamill.clean": {"type": "string"}},
    {"name": "status", "type": "string", "datamill.clean": {"type": "enum", "required": true, "values": {"open": [], "closed": ["done"]}}},
    {"name": "country", "type": ["null", "string"], "default": null, "datamill.clean": {"type": "country"}},
    {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []},
    {"name": "event_id", "type": "string"},
    {"name": "source", "type": ["null", "string"], "default": null},
    {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "content_hash", "type": "string"}
  ]
}`

// ordersRaw is the raw schema of the orders dataset: each clean field as
// the text it came as, and the envelope.
const ordersRaw = `{
  "type": "record", "name": "Raw", "namespace": "datamill.orders",
  "fields": [
    {"name": "id", "type": ["null", "string"], "default": null},
    {"name": "quantity", "type": ["null", "string"], "default": null},
    {"name": "priority", "type": ["null", "string"], "default": null},
    {"name": "price", "type": ["null", "string"], "default": null},
    {"name": "total", "type": ["null", "string"], "default": null},
    {"name": "ordered_on", "type": ["null", "string"], "default": null},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "status", "type": ["null", "string"], "default": null},
    {"name": "country", "type": ["null", "string"], "default": null},
    {"name": "event_id", "type": "string"},
    {"name": "source", "type": "string"},
    {"name": "ingested_at", "type": {"type": "long", "logicalType": "timestamp-micros"}}
  ]
}`

// ordersCatalog is a catalog holding the orders dataset; its persisted
// schema is derived from the clean one, as for every dataset.
func ordersCatalog(t *testing.T) *schemas.Catalog {
	t.Helper()
	cat, err := schemas.Open(testkit.SchemaDir(t, map[string]string{"orders/raw": ordersRaw, "orders/clean": ordersClean}))
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// describe is a table as the catalog has it: a line per column (name,
// type, NOT NULL, default) and per constraint (name, definition, NOT
// VALID), then a line per index.
func describe(t *testing.T, pool *pgxpool.Pool, table string) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `
select format('column %s %s%s%s', a.attname, format_type(a.atttypid, a.atttypmod),
        case when a.attnotnull then ' not null' else '' end,
        coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), ''))
from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
where a.attrelid = $1::regclass and a.attnum > 0 and not a.attisdropped
union all
select format('constraint %s %s%s', conname, pg_get_constraintdef(oid), case when convalidated then '' else ' (not valid)' end)
from pg_constraint where conrelid = $1::regclass and contype <> 'n'
union all
select format('index %s', pg_get_indexdef(indexrelid)) from pg_index where indrelid = $1::regclass
order by 1`, table)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTheTableIsCreatedFromTheCleanSchema(t *testing.T) {
	pool := database(t)
	d, err := newDataset(ordersCatalog(t), "orders")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := d.evolve(t.Context(), pool)
	if err != nil {
		t.Fatal(err)
	}
	if !ev.Created {
		t.Errorf("evolve = %+v, want the table created", ev)
	}
	want := []string{
		"column content_hash text not null",
		"column country text",
		"column created_event_id text not null",
		"column event_id text not null",
		"column gift boolean",
		"column id bigint not null",
		"column ingested_at timestamp with time zone not null",
		"column note text",
		"column ordered_on date",
		"column paid boolean not null default false",
		"column price numeric(10,2)",
		"column priority integer not null",
		"column quantity integer",
		"column shipped_at timestamp with time zone",
		"column source text",
		"column status text not null",
		"column tags text[] not null default '{}'::text[]",
		"column total numeric(12,2) not null",
		"column updated_at timestamp with time zone not null default now()",
		"constraint orders_country_check CHECK ((country ~ '^[A-Z]{2}$'::text))",
		"constraint orders_id_check CHECK ((id >= 1))",
		"constraint orders_ordered_on_check CHECK (((ordered_on >= '2020-01-01'::date) AND (ordered_on <= '2030-12-31'::date)))",
		"constraint orders_pkey PRIMARY KEY (id)",
		"constraint orders_price_check CHECK (((price >= 0.5) AND (price <= (10000)::numeric)))",
		"constraint orders_priority_check CHECK (((priority >= 1) AND (priority <= 5)))",
		"constraint orders_quantity_check CHECK (((quantity >= 0) AND (quantity <= 1000)))",
		"constraint orders_total_check CHECK ((total >= (0)::numeric))",
		"index CREATE UNIQUE INDEX orders_pkey ON public.orders USING btree (id)",
	}
	if diff := cmp.Diff(want, describe(t, pool, "orders")); diff != "" {
		t.Errorf("the orders table (-want +got):\n%s", diff)
	}
	// The columns are in the clean schema's order, the key first, then
	// the lineage.
	rows, err := pool.Query(t.Context(), `select column_name from information_schema.columns where table_name = 'orders' order by ordinal_position`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(names, " "), "id quantity priority price total ordered_on shipped_at gift paid note status country tags "+
		"event_id source ingested_at content_hash created_event_id updated_at"; got != want {
		t.Errorf("columns = %s, want %s", got, want)
	}
	if again, err := d.evolve(t.Context(), pool); err != nil || again.Created || len(again.Added)+len(again.Differ)+len(again.Constrained) > 0 {
		t.Errorf("evolving again = %+v, %v; want nothing done", again, err)
	}
}

// order is an orders record with the given fields set, the others zero.
func order(t *testing.T, d *dataset, id int64, minute int, fields map[string]any) record {
	t.Helper()
	values := map[string]any{
		"id": id, "priority": int32(3), "total": big.NewRat(1000, 100), "status": "open", "tags": []string{},
		"event_id": fmt.Sprintf("ev-%d-%d", id, minute), "event_time": time.Date(2025, 1, 1, 0, minute, 0, 0, time.UTC),
		"content_hash": fmt.Sprintf("h-%d-%d", id, minute),
	}
	for k, v := range fields {
		values[k] = v
	}
	p := reflect.New(d.typ)
	for i := range d.typ.NumField() {
		name := d.typ.Field(i).Tag.Get("avro")
		v, ok := values[name]
		if !ok {
			continue
		}
		f := p.Elem().Field(i)
		if f.Kind() == reflect.Pointer && reflect.TypeOf(v) != f.Type() {
			f.Set(reflect.New(f.Type().Elem()))
			f = f.Elem()
		}
		f.Set(reflect.ValueOf(v))
	}
	return p
}

// Values out of a declared range are refused by the table, each in its
// own row: the row is a dead letter with the database's reason, and the
// rest of the batch is loaded.
func TestValuesOutOfTheDeclaredRangesAreRefusedRowByRow(t *testing.T) {
	pool := database(t)
	d, err := newDataset(ordersCatalog(t), "orders")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.evolve(t.Context(), pool); err != nil {
		t.Fatal(err)
	}
	batch := []record{
		order(t, d, 1, 1, map[string]any{"quantity": int32(1000), "ordered_on": time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), "country": "FR"}),
		order(t, d, 2, 1, map[string]any{"quantity": int32(1001)}),
		order(t, d, 3, 1, map[string]any{"priority": int32(0)}),
		order(t, d, 4, 1, map[string]any{"price": big.NewRat(1, 100)}),
		order(t, d, 5, 1, map[string]any{"total": big.NewRat(-1, 1)}),
		order(t, d, 6, 1, map[string]any{"ordered_on": time.Date(2019, 12, 31, 0, 0, 0, 0, time.UTC)}),
		order(t, d, 7, 1, map[string]any{"country": "fra"}),
		order(t, d, 8, 1, map[string]any{"price": big.NewRat(10000, 1), "gift": true, "paid": true, "shipped_at": time.Date(2025, 2, 1, 12, 0, 0, 0, time.UTC)}),
	}
	messages := make([]stage.Message[record], len(batch))
	for i, v := range batch {
		messages[i] = stage.Message[record]{Value: v, Origin: stage.Origin{Topic: "clean.orders", Offset: int64(i)}}
	}
	res, err := d.handler(pool, "loader")(t.Context(), messages)
	if err != nil {
		t.Fatal(err)
	}
	refused := map[int]string{}
	for _, r := range res.Rejected {
		refused[r.Index] = strings.Join(r.Reasons, "; ")
	}
	for i, constraint := range map[int]string{
		1: "orders_quantity_check", 2: "orders_priority_check", 3: "orders_price_check",
		4: "orders_total_check", 5: "orders_ordered_on_check", 6: "orders_country_check",
	} {
		if reason := refused[i]; !strings.HasPrefix(reason, "database: ") || !strings.Contains(reason, constraint) {
			t.Errorf("record %d: reason %q, want the database's refusal naming %s", i, reason, constraint)
		}
	}
	if len(res.Rejected) != 6 || len(res.Outputs) != 2 {
		t.Errorf("%d rejected, %d loaded; want 6 and 2", len(res.Rejected), len(res.Outputs))
	}
	var ids string
	if err := pool.QueryRow(t.Context(), `select string_agg(id::text, ' ' order by id) from orders`).Scan(&ids); err != nil || ids != "1 8" {
		t.Errorf("orders = %q (%v), want 1 8", ids, err)
	}
}

// A users table made by the loader's old migration (0001_users.sql, with
// the predictions table and rows out of today's ranges) keeps loading:
// the loader adds the check constraints it lacks without checking the
// rows already there, and every later write is checked.
func TestATableMadeByTheOldMigrationStillLoads(t *testing.T) {
	pool, err := pg.Open(t.Context(), pg.Config{URL: testkit.Postgres(t), MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	old, err := os.ReadFile("testdata/0001_users.sql")
	if err != nil {
		t.Fatal(err)
	}
	ledger, err := fs.ReadFile(migrations.FS, "0002_applied_events.sql")
	if err != nil {
		t.Fatal(err)
	}
	released := fstest.MapFS{"0001_users.sql": {Data: old}, "0002_applied_events.sql": {Data: ledger}}
	if _, err := pg.Migrate(t.Context(), pool, "loader", released); err != nil {
		t.Fatal(err)
	}
	// A row from before: a signup date the schema now refuses.
	if _, err := pool.Exec(t.Context(), `insert into users (id, age, signup_date, event_id, ingested_at, content_hash, created_event_id)
		values (100, 130, '1999-01-01', 'ev-old', '2024-01-01', 'h', 'ev-old')`); err != nil {
		t.Fatal(err)
	}
	if n, err := pg.Migrate(t.Context(), pool, "loader", migrations.FS); err != nil || n != 0 {
		t.Fatalf("today's migrations on the old database: %d applied, %v; want none, no error", n, err)
	}
	d, err := newDataset(schemas.BuiltIn(), "users")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := d.evolve(t.Context(), pool)
	if err != nil {
		t.Fatal(err)
	}
	if want := "users_id_check users_signup_date_check users_last_login_check"; ev.Created || len(ev.Added) > 0 || len(ev.Differ) > 0 ||
		strings.Join(ev.Constrained, " ") != want {
		t.Errorf("evolve = %+v, want only the constraints %s added", ev, want)
	}
	var notValid int
	if err := pool.QueryRow(t.Context(), `select count(*) from pg_constraint where conrelid = 'users'::regclass and not convalidated`).Scan(&notValid); err != nil || notValid != 3 {
		t.Errorf("%d constraints not validated (%v), want the 3 added", notValid, err)
	}
	out := loadBatch(t, pool, d, decoded(t, d, d.cleanSchema, values(t, clean(1, 1, 30, "FR"))), decoded(t, d, d.cleanSchema, values(t, clean(100, 1, 31, "DE"))))
	if len(out) != 2 || out[0]["action"] != "INSERTED" || out[1]["action"] != "UPDATED" {
		t.Errorf("persisted = %v, want 1 inserted and 100 updated", out)
	}
	tooEarly := clean(2, 1, 30, "FR")
	tooEarly.SignupDate = ptr(time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC))
	res, err := d.handler(pool, "loader")(t.Context(), []stage.Message[record]{{Value: decoded(t, d, d.cleanSchema, values(t, tooEarly))}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) != 1 || !strings.Contains(strings.Join(res.Rejected[0].Reasons, ""), "users_signup_date_check") {
		t.Errorf("a signup date before 2000 = %+v, want it refused by users_signup_date_check", res)
	}
	if again, err := d.evolve(t.Context(), pool); err != nil || len(again.Constrained) > 0 {
		t.Errorf("evolving again = %+v, %v; want nothing added", again, err)
	}
}

// The users table the loader creates from the clean schema is the one the
// old migration created: the same columns, types, defaults, key and
// indexes. Only the checks differ where the schema says otherwise: its
// ranges win.
func TestTheUsersTableFromTheSchemaIsTheOldMigrations(t *testing.T) {
	created := describe(t, migrated(t), "users")

	pool, err := pg.Open(t.Context(), pg.Config{URL: testkit.Postgres(t), MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	old, err := os.ReadFile("testdata/0001_users.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(t.Context(), string(old)); err != nil {
		t.Fatal(err)
	}
	migration := describe(t, pool, "users")

	checks := func(lines []string) (other, checks []string) {
		for _, l := range lines {
			if strings.HasPrefix(l, "constraint ") && strings.Contains(l, " CHECK ") {
				checks = append(checks, l)
			} else {
				other = append(other, l)
			}
		}
		return other, checks
	}
	createdOther, createdChecks := checks(created)
	migrationOther, _ := checks(migration)
	if diff := cmp.Diff(migrationOther, createdOther); diff != "" {
		t.Errorf("the users table, created from the schema (+) and by the old migration (-):\n%s", diff)
	}
	want := []string{
		"constraint users_age_check CHECK (((age >= 0) AND (age <= 120)))",
		"constraint users_country_check CHECK ((country ~ '^[A-Z]{2}$'::text))",
		"constraint users_id_check CHECK ((id >= 1))",
		"constraint users_last_login_check CHECK (((last_login >= '2000-01-01'::date) AND (last_login <= '2030-12-31'::date)))",
		"constraint users_monthly_spend_check CHECK (((monthly_spend >= (0)::numeric) AND (monthly_spend <= (100000)::numeric)))",
		"constraint users_signup_date_check CHECK (((signup_date >= '2000-01-01'::date) AND (signup_date <= '2030-12-31'::date)))",
	}
	if diff := cmp.Diff(want, createdChecks); diff != "" {
		t.Errorf("the users table's checks (-want +got):\n%s", diff)
	}
}

// The stored bytes the loader reports cover the table of every dataset,
// whatever its name, with the ledger.
func TestStoredBytesCoverEveryDatasetsTable(t *testing.T) {
	pool := database(t)
	d, err := newDataset(ordersCatalog(t), "orders")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.evolve(t.Context(), pool); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(t.Context(), `insert into orders (id, priority, total, status, event_id, ingested_at, content_hash, created_event_id)
		select i, 1, 10, 'open', 'ev-' || i, now(), 'h', 'ev-' || i from generate_series(1, 2000) i`); err != nil {
		t.Fatal(err)
	}
	var tables int64
	if err := pool.QueryRow(t.Context(), `select pg_total_relation_size('orders') + pg_total_relation_size('applied_events')`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	got, err := storedBytes(t.Context(), pool)
	if err != nil {
		t.Fatal(err)
	}
	if got < tables {
		t.Errorf("stored bytes = %d, want at least the %d of the orders table and the ledger", got, tables)
	}
}
