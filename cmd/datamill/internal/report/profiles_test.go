package report

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestProfilesOfTheUsersTable(t *testing.T) {
	db := connect(t, usersDDL)
	seedUsers(t, db, 600)
	s, err := Profiles(t.Context(), db)
	if err != nil {
		t.Fatalf("Profiles: %v", err)
	}
	if notes := strings.Join(s.Notes, "\n"); !strings.Contains(notes, "jobs: no jobs table") || !strings.Contains(notes, "users: 600 rows; key id") {
		t.Errorf("notes lack the missing jobs table or the users' key:\n%s", notes)
	}

	// The table: a row per column, its figures those of SQL.
	tb := tableOf(t, s, "profile-users")
	rows := map[string][]string{}
	var names []string
	for _, r := range tb.Rows {
		rows[r[0]] = r
		names = append(names, r[0])
	}
	want := []string{
		"id", "age", "gender", "country", "city", "email", "signup_date", "last_login", "account_status", "monthly_spend",
		"quality_flags", "event_id", "source", "ingested_at", "content_hash",
	}
	if !slices.Equal(names, want) {
		t.Errorf("profile columns %v; want %v", names, want)
	}
	var nullCountries int
	var topCountry string
	var topCount, minAge, maxAge int
	var minSignup, maxSignup string
	if err := db.QueryRow(t.Context(), `select count(*) filter (where country is null), min(age), max(age),
		min(signup_date)::text, max(signup_date)::text from users`).Scan(&nullCountries, &minAge, &maxAge, &minSignup, &maxSignup); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(t.Context(), `select country, count(*) from users where country is not null
		group by country order by count(*) desc, country limit 1`).Scan(&topCountry, &topCount); err != nil {
		t.Fatal(err)
	}
	checks := []struct{ column, cell, want string }{
		{"country", rows["country"][2], fmt.Sprintf("%d (", nullCountries)},
		{"country", rows["country"][4], fmt.Sprintf("%s ×%d", topCountry, topCount)},
		{"country", rows["country"][1], "enum-like"},
		{"email", rows["email"][1], "text (email)"},
		{"age", rows["age"][5], fmt.Sprintf("%d … %d (median", minAge, maxAge)},
		{"age", rows["age"][6], "0"},
		{"signup_date", rows["signup_date"][5], minSignup + " … " + maxSignup},
		{"id", rows["id"][3], "600"},
	}
	for _, c := range checks {
		if !strings.HasPrefix(c.cell, c.want) {
			t.Errorf("%s: %q; want it to start with %q", c.column, c.cell, c.want)
		}
	}

	// A histogram per numeric column but the key, counting every value.
	if got := chartIDs(s); !slices.Equal(got, []string{"profile-users-age", "profile-users-monthly_spend"}) {
		t.Fatalf("charts %v; want the histograms of age and monthly_spend", got)
	}
	for _, column := range []string{"age", "monthly_spend"} {
		rows, err := db.Query(t.Context(), fmt.Sprintf("select %s::float8 from users where %[1]s is not null", column))
		if err != nil {
			t.Fatal(err)
		}
		values, err := pgx.CollectRows(rows, pgx.RowTo[float64])
		if err != nil {
			t.Fatal(err)
		}
		lo, hi := slices.Min(values), slices.Max(values)
		counts := make([]float64, 10)
		for _, v := range values {
			counts[min(int(math.Floor((v-lo)/(hi-lo)*10)), 9)]++
		}
		c := chartOf(t, s, "profile-users-"+column)
		if c.Kind != Histogram || len(c.Series[0].Points) != 10 {
			t.Fatalf("%s: %s with %d bins; want a histogram of 10", column, c.Kind, len(c.Series[0].Points))
		}
		for i, p := range c.Series[0].Points {
			if p.Y != counts[i] {
				t.Errorf("%s bin %d (%s): %v rows; want %v", column, i, p.Label, p.Y, counts[i])
			}
		}
		if first := c.Series[0].Points[0]; !strings.HasPrefix(first.Label, sig6(lo)+"–") {
			t.Errorf("%s: first bin %q; want it to start at %s", column, first.Label, sig6(lo))
		}
	}
}

func TestProfilesOfDatasets(t *testing.T) {
	tests := map[string]struct {
		ddl, insert string
		want        []string // charts
		note        string
	}{
		"no table": {note: "orders: no orders table in this database; the dataset was not run."},
		"empty table": {
			ddl:  "create table orders (order_id bigint primary key, amount numeric(10, 2))",
			note: "orders: 0 rows",
		},
		"one value": {
			ddl:    "create table orders (order_id bigint primary key, amount numeric(10, 2), placed date)",
			insert: "insert into orders select i, 12.50, '2026-01-02' from generate_series(1, 40) i",
			want:   []string{"profile-orders-amount"},
			note:   "orders: 40 rows; key order_id",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var ddl []string
			for _, d := range []string{tc.ddl, tc.insert} {
				if d != "" {
					ddl = append(ddl, d)
				}
			}
			db := connect(t, ddl...)
			s, err := ProfilesOf("orders")(t.Context(), db)
			if err != nil {
				t.Fatalf("ProfilesOf: %v", err)
			}
			if notes := strings.Join(s.Notes, "\n"); !strings.Contains(notes, tc.note) {
				t.Errorf("notes lack %q:\n%s", tc.note, notes)
			}
			if got := chartIDs(s); !slices.Equal(got, tc.want) {
				t.Errorf("charts %v; want %v", got, tc.want)
			}
			if tc.want != nil {
				if p := s.Charts[0].Series[0].Points; len(p) != 1 || p[0].Y != 40 || p[0].X != 12.5 {
					t.Errorf("histogram of one value: %+v; want one bin of 40 rows at 12.5", p)
				}
			}
		})
	}
}

func TestCellText(t *testing.T) {
	tests := map[string]struct {
		sql  string
		want string // "" with null: no value
		null bool
	}{
		"null":        {sql: "null::text", null: true},
		"text":        {sql: "'Lyon'", want: "Lyon"},
		"date":        {sql: "date '2026-01-02'", want: "2026-01-02"},
		"timestamptz": {sql: "timestamptz '2026-01-02 03:04:05.5+02'", want: "2026-01-02T01:04:05.5Z"},
		"bool":        {sql: "true", want: "true"},
		"float8":      {sql: "1.25::float8", want: "1.25"},
		"int8":        {sql: "42::int8", want: "42"},
		"numeric":     {sql: "12.50::numeric(12, 2)", want: "12.50"},
		"text array":  {sql: "array['age:out_of_range', 'country:unknown']", want: `["age:out_of_range","country:unknown"]`},
		"empty array": {sql: "'{}'::text[]", want: "[]"},
		"uuid":        {sql: "'6ba7b810-9dad-11d1-80b4-00c04fd430c8'::uuid", want: "6ba7b810-9dad-11d1-80b4-00c04fd430c8"},
		"bytea":       {sql: `'\xff00'::bytea`, want: "ff00"},
		"jsonb":       {sql: `'{"a": 1}'::jsonb`, want: `{"a":1}`},
	}
	db := connect(t)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var v any
			if err := db.QueryRow(t.Context(), "select "+tc.sql).Scan(&v); err != nil {
				t.Fatal(err)
			}
			got, ok := cellText(v)
			if ok == tc.null || got != tc.want {
				t.Errorf("cellText(%s = %#v) = %q, %v; want %q, %v", tc.sql, v, got, ok, tc.want, !tc.null)
			}
		})
	}
}
