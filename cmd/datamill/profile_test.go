package main

import (
	"bytes"
	"crypto/rand"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/testkit"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/")

// golden compares got with the file at path, or rewrites the file with
// -update.
func golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to write it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("output differs from %s (-want +got):\n%s", path, diff)
	}
}

func TestProfileFileGolden(t *testing.T) {
	tests := map[string]struct {
		args   []string
		golden string
	}{
		"json":  {[]string{"profile", "testdata/profile/people.csv", "--json"}, "testdata/profile/people.golden.json"},
		"table": {[]string{"profile", "testdata/profile/people.csv"}, "testdata/profile/people.golden.txt"},
	}
	for name, tc := range tests {
		var out, errOut bytes.Buffer
		if err := run(t.Context(), tc.args, nil, &out, &errOut); err != nil {
			t.Fatalf("%s: %v: %s", name, err, errOut.String())
		}
		golden(t, tc.golden, out.Bytes())
	}
}

// The same records as NDJSON or a JSON array give the same profile as the
// CSV, but for the column order (a CSV's header order, else sorted) and
// the column without any value, which JSON records only name as null
// (pkg/ingest reads a null as no value).
func TestProfileReadsEveryFormat(t *testing.T) {
	var csvOut bytes.Buffer
	if err := run(t.Context(), []string{"profile", "testdata/profile/people.csv", "--json"}, nil, &csvOut, &csvOut); err != nil {
		t.Fatal(err)
	}
	want := decodeReport(t, csvOut.Bytes())
	want["columns"] = columnsByName(want["columns"].([]any))
	delete(want["columns"].(map[string]any), "notes")
	rows := csvRows(t, "testdata/profile/people.csv")
	dir := t.TempDir()
	var ndjson bytes.Buffer
	for _, r := range rows {
		b, _ := json.Marshal(r)
		ndjson.Write(append(b, '\n'))
	}
	array, _ := json.Marshal(rows)
	files := map[string][]byte{"people.ndjson": ndjson.Bytes(), "people.json": array}
	for name, b := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := run(t.Context(), []string{"profile", path, "--json"}, nil, &out, &out); err != nil {
			t.Fatalf("%s: %v: %s", name, err, out.String())
		}
		got := decodeReport(t, out.Bytes())
		got["source"] = want["source"]
		got["columns"] = columnsByName(got["columns"].([]any))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("profile of %s differs from the CSV's (-csv +%s):\n%s", name, name, diff)
		}
	}
}

func decodeReport(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("profile --json printed no JSON object: %v\n%s", err, b)
	}
	return m
}

// columnsByName keys a report's columns by name.
func columnsByName(cols []any) map[string]any {
	out := map[string]any{}
	for _, c := range cols {
		if m, ok := c.(map[string]any); ok {
			out[m["name"].(string)] = m
		}
	}
	return out
}

// csvRows reads a small CSV file as objects, blank values as nulls.
func csvRows(t testing.TB, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	for _, r := range records[1:] {
		row := map[string]any{}
		for i, v := range r {
			row[records[0][i]] = v
			if v == "" {
				row[records[0][i]] = nil
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// A topic holds what produce published: its profile is the file's, plus
// the envelope's columns.
func TestProfileTopicIsTheFilesProfile(t *testing.T) {
	ds := "people_" + strings.ToLower(rand.Text()[:8])
	dir := testkit.SchemaDir(t, map[string]string{
		ds + "/raw":   mustRead(t, "../../schemas/avro/users/raw.avsc"),
		ds + "/clean": mustRead(t, "../../schemas/avro/users/clean.avsc"),
	})
	file := filepath.Join(t.TempDir(), "users.csv")
	var out bytes.Buffer
	if err := run(t.Context(), []string{"gen", "users", "--rows", "300", "--out", file}, nil, &out, &out); err != nil {
		t.Fatalf("gen: %v: %s", err, out.String())
	}
	kcfg := testkit.Kafka(t)
	ensureTopics(t, kcfg, "raw."+ds)
	env := append(testkit.KafkaEnv(kcfg), "SCHEMA_REGISTRY_URL="+testkit.Registry(t), "SCHEMAS_DIR="+dir, "DATASETS_DIR="+dir)
	if err := run(t.Context(), []string{"produce", ds, file}, env, &out, &out); err != nil {
		t.Fatalf("produce: %v: %s", err, out.String())
	}
	profileOf := func(target string, args ...string) (map[string]any, []string) {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run(t.Context(), append([]string{"profile", target, "--json"}, args...), env, &out, &errOut); err != nil {
			t.Fatalf("profile %s: %v: %s", target, err, errOut.String())
		}
		r := decodeReport(t, out.Bytes())
		var order []string
		for _, c := range r["columns"].([]any) {
			order = append(order, c.(map[string]any)["name"].(string))
		}
		r["columns"] = columnsByName(r["columns"].([]any))
		return r, order
	}
	want, fileOrder := profileOf(file)
	for _, target := range []string{"raw." + ds, "raw"} {
		got, order := profileOf(target, "--dataset", ds)
		// The columns in the raw schema's order: the file's, then the envelope.
		if diff := cmp.Diff(append(fileOrder, "event_id", "source", "ingested_at"), order); diff != "" {
			t.Errorf("columns of %s (-want +got):\n%s", target, diff)
		}
		cols := got["columns"].(map[string]any)
		for _, envelope := range []string{"event_id", "source", "ingested_at"} {
			if cols[envelope] == nil {
				t.Errorf("profile of %s has no column %s", target, envelope)
			}
			delete(cols, envelope)
		}
		// The envelope's unique event ids are a key candidate too.
		got["keys"] = want["keys"]
		if got["source"] != "raw."+ds || got["rows"] != float64(300) {
			t.Errorf("profile of %s: source %v, %v rows; want raw.%s, 300", target, got["source"], got["rows"], ds)
		}
		got["source"] = want["source"]
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("profile of %s differs from the file's (-file +topic):\n%s", target, diff)
		}
	}
}

func TestProfileTable(t *testing.T) {
	dbURL := testkit.Postgres(t)
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	_, err = conn.Exec(t.Context(), `create schema shop;
		create table shop.orders (id bigint primary key, amount numeric(12,2), day date, paid boolean, status text, at timestamptz, note text);
		insert into shop.orders
		select i, i * 1.5, date '2024-01-01' + i, i % 3 = 0, (array['new', 'sent', 'done'])[i % 3 + 1],
		       timestamptz '2024-01-01 10:00:00+00' + i * interval '1 hour', null
		from generate_series(1, 40) i;
		update shop.orders set amount = 1000 where id = 40;
		create table orders as select id, status from shop.orders`)
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"profile", "table:shop.orders", "--json"}, []string{"DATABASE_URL=" + dbURL}, &out, &errOut); err != nil {
		t.Fatalf("profile: %v: %s", err, errOut.String())
	}
	var got struct {
		Source string
		Rows   int
		Keys   struct{ Best string }
		Column []struct {
			Name, Type string
			Missing    int
			Numeric    *struct{ Min, Max float64 }
			Dates      *struct{ Min, Max string }
		} `json:"columns"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, c := range got.Column {
		s := c.Name + ":" + c.Type
		if c.Numeric != nil {
			s += fmt.Sprintf(" %v…%v", c.Numeric.Min, c.Numeric.Max)
		}
		if c.Dates != nil {
			s += " " + c.Dates.Min + "…" + c.Dates.Max
		}
		if c.Missing > 0 {
			s += fmt.Sprintf(" missing %d", c.Missing)
		}
		cols = append(cols, s)
	}
	want := []string{
		"id:int 1…40", "amount:decimal 1.5…1000", "day:date 2024-01-02…2024-02-10", "paid:bool", "status:enum-like",
		"at:timestamp 2024-01-01T11:00:00Z…2024-01-03T02:00:00Z", "note:empty missing 40",
	}
	if got.Source != "table shop.orders" || got.Rows != 40 || got.Keys.Best != "id" {
		t.Errorf("profile of shop.orders: source %q, %d rows, key %q; want table shop.orders, 40, id", got.Source, got.Rows, got.Keys.Best)
	}
	if diff := cmp.Diff(want, cols); diff != "" {
		t.Errorf("columns of shop.orders (-want +got):\n%s", diff)
	}

	// --dataset alone names the dataset's table.
	out.Reset()
	if err := run(t.Context(), []string{"profile", "--dataset", "orders"}, []string{"DATABASE_URL=" + dbURL}, &out, &errOut); err != nil {
		t.Fatalf("profile --dataset orders: %v: %s", err, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "table orders: 40 rows\n") || !strings.Contains(out.String(), "key: id ") {
		t.Errorf("profile --dataset orders printed:\n%s", out.String())
	}
}

// Records a file cannot give are counted, and the others profiled.
func TestProfileCountsUnreadableRecords(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.csv")
	if err := os.WriteFile(file, []byte("id,name\n1,a\n2,b,extra\n3,\"c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"profile", file}, nil, &out, &out); err != nil {
		t.Fatalf("profile: %v: %s", err, out.String())
	}
	if !strings.HasPrefix(out.String(), file+": 1 row, 2 unreadable records\n") {
		t.Errorf("profile of a CSV with 1 good and 2 bad records printed:\n%s", out.String())
	}
}

// ensureTopics creates topics of three partitions.
func ensureTopics(t testing.TB, kcfg kafka.Config, topics ...string) {
	t.Helper()
	kcfg.Partitions, kcfg.ReplicationFactor = 3, -1
	cl, err := kafka.NewClient(kcfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(t.Context(), cl, kcfg, topics...); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestProfileUsageAndErrors(t *testing.T) {
	tests := map[string]struct {
		args    []string
		wantErr error
		want    string
	}{
		"no target":                   {[]string{"profile"}, errUsage, "usage: datamill profile"},
		"two targets":                 {[]string{"profile", "a.csv", "b.csv"}, errUsage, "usage: datamill profile"},
		"no table without a database": {[]string{"profile", "nothing_here"}, nil, "DATABASE_URL"},
		"a step without a dataset":    {[]string{"profile", "clean"}, nil, "--dataset"},
		"an unknown format":           {[]string{"profile", "file:testdata/profile/people.csv", "--format", "xml"}, nil, "format"},
	}
	for name, tc := range tests {
		var out bytes.Buffer
		err := run(t.Context(), tc.args, nil, &out, &out)
		switch {
		case err == nil:
			t.Errorf("%s: profile %q succeeded, want an error", name, tc.args)
		case tc.wantErr != nil && err != tc.wantErr, !strings.Contains(err.Error()+out.String(), tc.want):
			t.Errorf("%s: profile %q = %v, %q; want %v mentioning %s", name, tc.args, err, out.String(), tc.wantErr, tc.want)
		}
	}
}
