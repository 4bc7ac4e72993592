package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hamba/avro/v2"
	"github.com/jackc/pgx/v5"

	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
)

// usersTable is the users table as the loader creates it from the clean
// schema of users.
const usersTable = `
create table users (
    id               bigint primary key constraint users_id_check check (id >= 1),
    age              integer constraint users_age_check check (age >= 0 and age <= 120),
    gender           text,
    country          text constraint users_country_check check (country ~ '^[A-Z]{2}$'),
    city             text,
    email            text,
    signup_date      date,
    last_login       date,
    account_status   text,
    monthly_spend    numeric(12, 2) constraint users_monthly_spend_check check (monthly_spend >= 0 and monthly_spend <= 100000),
    quality_flags    text[] not null default '{}',
    event_id         text not null,
    source           text,
    ingested_at      timestamptz not null,
    content_hash     text not null,
    created_event_id text not null,
    updated_at       timestamptz not null default now()
)`

// The scorer waits for the loader's users table, then creates its
// predictions table: its columns, key, foreign key to users and indexes.
func TestTheScorerCreatesThePredictionsTableOnceTheUsersTableExists(t *testing.T) {
	pool, err := migrated(t, testkit.Postgres(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	waited := make(chan string, 100)
	done := make(chan error, 1)
	go func() {
		done <- usersDataset(t).awaitTable(t.Context(), changeOn{pool}, pool, func(reason string) {
			select {
			case waited <- reason:
			default:
			}
		})
	}()
	select {
	case reason := <-waited:
		if reason != "no users table with its key id yet (the loader creates it)" {
			t.Errorf("waiting because %q, want the users table named", reason)
		}
	case err := <-done:
		t.Fatalf("awaitTable returned %v before the users table existed", err)
	case <-time.After(30 * time.Second):
		t.Fatal("awaitTable neither waited nor returned within 30 s")
	}
	if _, err := pool.Exec(t.Context(), usersTable); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("awaitTable did not return within 30 s of the users table's creation")
	}

	rows, err := pool.Query(t.Context(), `
select format('column %s %s%s%s', a.attname, format_type(a.atttypid, a.atttypmod),
        case when a.attnotnull then ' not null' else '' end, case when a.attidentity = 'a' then ' identity' else '' end)
from pg_attribute a where a.attrelid = 'predictions'::regclass and a.attnum > 0 and not a.attisdropped
union all
select format('constraint %s %s', conname, pg_get_constraintdef(oid)) from pg_constraint where conrelid = 'predictions'::regclass and contype <> 'n'
union all
select format('index %s', pg_get_indexdef(indexrelid)) from pg_index where indrelid = 'predictions'::regclass
order by 1`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"column created_at timestamp with time zone not null",
		"column event_id text not null",
		"column id bigint not null identity",
		"column model_version text not null",
		"column prediction integer not null",
		"column probability double precision not null",
		"column user_id bigint not null",
		"constraint predictions_event_id_key UNIQUE (event_id)",
		"constraint predictions_pkey PRIMARY KEY (id)",
		"constraint predictions_prediction_check CHECK ((prediction = ANY (ARRAY[0, 1])))",
		"constraint predictions_probability_check CHECK (((probability >= (0)::double precision) AND (probability <= (1)::double precision)))",
		"constraint predictions_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id)",
		"index CREATE INDEX predictions_user_id ON public.predictions USING btree (user_id)",
		"index CREATE UNIQUE INDEX predictions_event_id_key ON public.predictions USING btree (event_id)",
		"index CREATE UNIQUE INDEX predictions_pkey ON public.predictions USING btree (id)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the predictions table (-want +got):\n%s", diff)
	}
	// A scorer starting again finds the table there.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := usersDataset(t).awaitTable(ctx, changeOn{pool}, pool, func(string) {}); err != nil {
		t.Errorf("awaitTable on an existing predictions table = %v", err)
	}
}

// itemsDataset is a dataset keyed by a text, sku, whose ridge model
// predicts a price: the scorer's view of it, read from a DATASETS_DIR.
func itemsDataset(t testing.TB) *dataset {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"raw.avsc": `{"type": "record", "name": "Raw", "namespace": "shop.items", "fields": [
			{"name": "sku", "type": ["null", "string"], "default": null}, {"name": "qty", "type": ["null", "string"], "default": null},
			{"name": "price", "type": ["null", "string"], "default": null},
			{"name": "event_id", "type": "string"}, {"name": "source", "type": "string"},
			{"name": "ingested_at", "type": {"type": "long", "logicalType": "timestamp-micros"}}]}`,
		"clean.avsc": `{"type": "record", "name": "Clean", "namespace": "shop.items", "datamill.key": "sku", "fields": [
			{"name": "sku", "type": "string", "datamill.clean": {"type": "string", "required": true}},
			{"name": "qty", "type": ["null", "int"], "default": null, "datamill.clean": {"type": "int", "min": 0}},
			{"name": "price", "type": ["null", "double"], "default": null},
			{"name": "quality_flags", "type": {"type": "array", "items": "string"}, "default": []},
			{"name": "event_id", "type": "string"}, {"name": "source", "type": ["null", "string"], "default": null},
			{"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-micros"}}, {"name": "content_hash", "type": "string"}]}`,
		"dataset.yaml": "model: {kind: ridge, label: {column: price}, features: [{column: qty, kind: numeric}]}\n",
	}
	if err := os.MkdirAll(filepath.Join(dir, "items"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, "items", name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cat, err := schemas.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := cat.Dataset("items")
	if err != nil {
		t.Fatal(err)
	}
	d, err := newDataset(ds)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A dataset keyed by a text with a ridge model gets its own predictions
// table, items_predictions: its key column of the table's key type with a
// foreign key to it, and no bound on the predicted value; its predictions
// are written and read back by text key, and its scored records carry the
// key as a string field named as the clean key.
func TestATextKeyedRidgeDatasetHasItsOwnPredictions(t *testing.T) {
	pool, err := migrated(t, testkit.Postgres(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(t.Context(), `create table items (sku text primary key, qty integer, price double precision, event_id text not null);
		insert into items values ('a-1', 3, 9.5, 'e1'), ('b-2', 1, 250, 'e2')`); err != nil {
		t.Fatal(err)
	}
	d := itemsDataset(t)
	if d.predictions != "items_predictions" || d.keyColumn != "sku" || !d.textKey {
		t.Fatalf("items: predictions table %s, key column %s, text key %v", d.predictions, d.keyColumn, d.textKey)
	}
	if err := d.awaitTable(t.Context(), changeOn{pool}, pool, func(string) {}); err != nil {
		t.Fatal(err)
	}
	var defs string
	if err := pool.QueryRow(t.Context(), `select string_agg(pg_get_constraintdef(oid), '; ' order by conname) from pg_constraint
		where conrelid = 'items_predictions'::regclass and contype in ('c', 'f')`).Scan(&defs); err != nil {
		t.Fatal(err)
	}
	if want := "CHECK ((prediction = ANY (ARRAY[0, 1]))); FOREIGN KEY (sku) REFERENCES items(sku)"; defs != want {
		t.Errorf("items_predictions constraints %q, want %q", defs, want)
	}
	preds := []prediction{
		{eventID: "e1", key: "a-1", probability: 12.25, version: "v1"},
		{eventID: "e2", key: "b-2", probability: 240, version: "v1"},
	}
	var stored map[string]scored
	err = pg.InTx(t.Context(), pool, func(tx pgx.Tx) error {
		var err error
		stored, _, err = d.writePredictions(t.Context(), tx, preds)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if sc := stored["e2"]; sc.Key != "b-2" || sc.Probability != 240 || len(stored) != 2 {
		t.Errorf("stored %+v, want both predictions, e2 of b-2 at 240", stored)
	}
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: testkit.Registry(t)})
	if err != nil {
		t.Fatal(err)
	}
	d.name = testkit.Name(t, "items") // topics of this test's own
	enc, err := d.codecs(t.Context(), reg)
	if err != nil {
		t.Fatal(err)
	}
	sc := stored["e1"]
	b, err := enc.AppendEncode(nil, &sc)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := avro.Unmarshal(d.scoredSchema, b[5:], &got); err != nil {
		t.Fatal(err)
	}
	if got["sku"] != "a-1" || got["probability"] != 12.25 || got["event_id"] != "e1" {
		t.Errorf("scored record %v, want sku a-1, probability 12.25, event e1", got)
	}
	if _, err := enc.AppendEncode(nil, &scored{Key: int64(7), EventID: "e3"}); err == nil {
		t.Error("a scored record keyed by an integer encodes with a text key")
	}
}
