package main

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/testkit"
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
	pool, err := pg.Open(t.Context(), pg.Config{URL: testkit.Postgres(t), MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	waited := make(chan string, 100)
	done := make(chan error, 1)
	go func() {
		done <- usersDataset(t).awaitTable(t.Context(), pool, func(reason string) {
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
	if err := usersDataset(t).awaitTable(ctx, pool, func(string) {}); err != nil {
		t.Errorf("awaitTable on an existing predictions table = %v", err)
	}
}
