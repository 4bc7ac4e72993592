package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/datamill/datamill/pkg/testkit"
)

func TestParseTextArray(t *testing.T) {
	for in, want := range map[string][]string{
		"{}":                          {},
		" { } ":                       {},
		"{DE,EU}":                     {"DE", "EU"},
		`{"New York",US}`:             {"New York", "US"},
		`{"a,b","{x}","q\"t","b\\s"}`: {"a,b", "{x}", `q"t`, `b\s`},
		`{NULL,DE,null}`:              {"DE"},
		`{"NULL",""}`:                 {"NULL", ""},
		"{ DE , EU }":                 {"DE", "EU"},
		`{a\,b}`:                      {"a,b"},
		"{Zürich}":                    {"Zürich"},
	} {
		got, err := parseTextArray(in)
		if err != nil {
			t.Errorf("parseTextArray(%q) = %v", in, err)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("parseTextArray(%q) (-want +got):\n%s", in, diff)
		}
	}
	for _, in := range []string{"", "DE,EU", "{DE", "{{a},{b}}", `{"open}`, `{"a"b}`, "{a,,b}", `{a\}`, `{a"b}`} {
		if got, err := parseTextArray(in); err == nil {
			t.Errorf("parseTextArray(%q) = %q, want an error", in, got)
		}
	}
}

// What PostgreSQL writes of a text[] reads back as its items, and what
// formatTextArray writes PostgreSQL reads as the same items.
func TestTextArraysRoundTripThroughPostgreSQL(t *testing.T) {
	conn, err := pgx.Connect(t.Context(), testkit.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	for name, items := range map[string][]string{
		"codes":     {"DE", "EU"},
		"empty":     {},
		"awkward":   {"New York", "a,b", "{x}", `q"t`, `b\s`, "", "NULL", "null", " lead", "Zürich"},
		"one space": {" "},
	} {
		var pgText string
		if err := conn.QueryRow(t.Context(), "select $1::text[]::text", items).Scan(&pgText); err != nil {
			t.Fatal(err)
		}
		got, err := parseTextArray(pgText)
		if err != nil {
			t.Errorf("%s: parseTextArray(%q) = %v", name, pgText, err)
		} else if diff := cmp.Diff(items, got); diff != "" {
			t.Errorf("%s: PostgreSQL's %q read back (-want +got):\n%s", name, pgText, diff)
		}
		ours := formatTextArray(items)
		var back []string
		if err := conn.QueryRow(t.Context(), "select $1::text::text[]", ours).Scan(&back); err != nil {
			t.Errorf("%s: PostgreSQL refuses %q: %v", name, ours, err)
		} else if diff := cmp.Diff(items, back); diff != "" {
			t.Errorf("%s: %q read by PostgreSQL (-want +got):\n%s", name, ours, diff)
		}
		if ours != pgText {
			t.Errorf("%s: formatTextArray = %q, PostgreSQL writes %q", name, ours, pgText)
		}
	}
	// A text[] with a NULL item, read as the table's rows read it.
	var row []any
	if err := conn.QueryRow(t.Context(), "select array['DE', null, 'New York']::text[]").Scan(&row); err != nil {
		t.Fatal(err)
	}
	if got, want := formatTextArray(row), `{DE,NULL,"New York"}`; got != want {
		t.Errorf("formatTextArray(%v) = %q, want %q", row, got, want)
	}
}

// FuzzParseTextArray: reading never panics, and a list read is written
// back as text that reads as the same list.
func FuzzParseTextArray(f *testing.F) {
	for _, s := range []string{"{}", "{DE,EU}", `{"New York",NULL}`, `{"a\"b",c\,d}`, "{{a}}", `{"open`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		items, err := parseTextArray(s)
		if err != nil {
			return
		}
		again, err := parseTextArray(formatTextArray(items))
		if err != nil {
			t.Fatalf("%q read as %q, written as %q, does not read: %v", s, items, formatTextArray(items), err)
		}
		if !cmp.Equal(items, again) {
			t.Errorf("%q read as %q, written and read again as %q", s, items, again)
		}
	})
}
