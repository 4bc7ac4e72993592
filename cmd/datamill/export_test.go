package main

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"

	"github.com/datamill/datamill/pkg/testkit"
)

// exportTable creates, as the users dataset's table, a table with a
// column of every type the loader derives from a clean schema, and of a
// type it does not (numeric), with a row of values, a row of NULLs and a
// row of edge values; it returns the database's URL.
func exportTable(t testing.TB) string {
	t.Helper()
	url := testkit.Postgres(t)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	_, err = conn.Exec(t.Context(), `set timezone = 'UTC';
		create table users (id text primary key, n integer, big bigint, ratio double precision, ok boolean,
			day date, at timestamp with time zone, tags text[], amount numeric(10,2), note text);
		insert into users values
			('a', 7, 9000000000, 1.25, true, '2024-02-29', '2024-03-01 10:20:30.123456+00', '{x,"y z","",NULL}', 12.50, 'hi'),
			('b', null, null, null, null, null, null, null, null, null),
			('c, "quoted"', 0, 0, 0, false, '1970-01-01', '1999-12-31 23:59:59+00', '{}', 0, '')`)
	if err != nil {
		t.Fatal(err)
	}
	return url
}

func TestExportCSV(t *testing.T) {
	url := exportTable(t)
	file := filepath.Join(t.TempDir(), "users.csv")
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"export", "users", "--format", "csv", "--out", file}, []string{"DATABASE_URL=" + url}, &out, &errOut); err != nil {
		t.Fatalf("export: %v: %s", err, errOut.String())
	}
	if !strings.Contains(errOut.String(), "3 rows") {
		t.Errorf("export said %q, want the 3 rows it wrote", errOut.String())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	got, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatalf("read back %s: %v\n%s", file, err, b)
	}
	want := [][]string{
		{"id", "n", "big", "ratio", "ok", "day", "at", "tags", "amount", "note"},
		{"a", "7", "9000000000", "1.25", "t", "2024-02-29", "2024-03-01 10:20:30.123456+00", `{x,"y z","",NULL}`, "12.50", "hi"},
		{"b", "", "", "", "", "", "", "", "", ""},
		{`c, "quoted"`, "0", "0", "0", "f", "1970-01-01", "1999-12-31 23:59:59+00", "{}", "0.00", ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CSV export (-want +got):\n%s\n%s", diff, b)
	}
}

func TestExportParquet(t *testing.T) {
	url := exportTable(t)
	file := filepath.Join(t.TempDir(), "users.parquet")
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"export", "users", "--format", "parquet", "--out", file}, []string{"DATABASE_URL=" + url}, &out, &errOut); err != nil {
		t.Fatalf("export: %v: %s", err, errOut.String())
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatalf("open %s as Parquet: %v", file, err)
	}

	// Typed from the table's types.
	types := map[string]string{}
	for _, field := range pf.Schema().Fields() {
		typ := field.Type().String()
		if !field.Leaf() {
			typ = "LIST<" + field.Fields()[0].Fields()[0].Type().String() + ">"
		}
		types[field.Name()] = typ
	}
	wantTypes := map[string]string{
		"id": "STRING", "n": "INT(32,true)", "big": "INT(64,true)", "ratio": "DOUBLE", "ok": "BOOLEAN",
		"day": "DATE", "at": "TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)", "tags": "LIST<STRING>", "amount": "STRING",
		"note": "STRING",
	}
	if diff := cmp.Diff(wantTypes, types); diff != "" {
		t.Errorf("Parquet column types (-want +got):\n%s\n%s", diff, pf.Schema())
	}

	r := parquet.NewGenericReader[map[string]any](pf, pf.Schema())
	defer r.Close()
	got := []map[string]any{{}, {}, {}, {}}
	n, _ := r.Read(got)
	got = got[:n]
	day := func(y int, m time.Month, d int) int32 {
		return int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
	}
	micros := func(s string) int64 {
		at, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return at.UnixMicro()
	}
	want := []map[string]any{
		{
			"id": "a", "n": int32(7), "big": int64(9000000000), "ratio": 1.25, "ok": true, "day": day(2024, 2, 29),
			"at": micros("2024-03-01T10:20:30.123456Z"), "tags": []any{"x", "y z", "", nil}, "amount": "12.50", "note": "hi",
		},
		{"id": "b", "n": nil, "big": nil, "ratio": nil, "ok": nil, "day": nil, "at": nil, "tags": nil, "amount": nil, "note": nil},
		{
			"id": `c, "quoted"`, "n": int32(0), "big": int64(0), "ratio": 0.0, "ok": false, "day": day(1970, 1, 1),
			"at": micros("1999-12-31T23:59:59Z"), "tags": []any{}, "amount": "0.00", "note": "",
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parquet export read back (-want +got):\n%s", diff)
	}
}

func TestExportRefuses(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string // in the error
	}{
		{"unknown dataset", []string{"export", "nosuch"}, []string{`unknown dataset "nosuch"`, "jobs", "users"}},
		{"unknown format", []string{"export", "users", "--format", "xlsx"}, []string{`"xlsx"`, "csv or parquet"}},
		{"no database", []string{"export", "users"}, []string{"DATABASE_URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(t.Context(), tt.args, nil, &out, &errOut)
			if err == nil {
				t.Fatalf("%v: no error, want one naming %q", tt.args, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v: error %q does not name %q", tt.args, err, w)
				}
			}
		})
	}
}

// TestExportParquetRowGroups exports a table of more rows than a row
// group holds: the rows come in row groups of exportRowGroup, so that the
// writer never holds the whole table, and all of them are there.
func TestExportParquetRowGroups(t *testing.T) {
	url := testkit.Postgres(t)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	const rows = 2*exportRowGroup + 10
	if _, err := conn.Exec(t.Context(), fmt.Sprintf(`create table jobs (id text primary key, n bigint);
		insert into jobs select 'j' || i, i from generate_series(1, %d) i`, rows)); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "jobs.parquet")
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"export", "jobs", "--format", "parquet", "--out", file}, []string{"DATABASE_URL=" + url}, &out, &errOut); err != nil {
		t.Fatalf("export: %v: %s", err, errOut.String())
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int64
	for _, rg := range pf.RowGroups() {
		sizes = append(sizes, rg.NumRows())
	}
	if want := []int64{exportRowGroup, exportRowGroup, 10}; !slices.Equal(sizes, want) {
		t.Errorf("row groups of %d rows: %v, want %v", rows, sizes, want)
	}
	if pf.NumRows() != rows {
		t.Errorf("%d rows exported, want %d", pf.NumRows(), rows)
	}
}

func TestExportWithoutTheTable(t *testing.T) {
	url := testkit.Postgres(t)
	var out, errOut bytes.Buffer
	err := run(t.Context(), []string{"export", "jobs"}, []string{"DATABASE_URL=" + url}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), `no table jobs`) {
		t.Errorf("export of a dataset whose table is missing: %v, want it to say there is no table jobs", err)
	}
	if out.Len() > 0 {
		t.Errorf("export wrote %q without a table", out.String())
	}
}
