package main

import (
	"encoding/csv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The rows are the jobs table's: a salary exactly when one is stated
// (never on arbeitnow), titles normalised without gender markers, and
// locations in PostgreSQL's text[] form.
func TestRowsAreInTheFormOfTheJobsTable(t *testing.T) {
	var out strings.Builder
	if err := run([]string{"--offers", "400", "--seed", "3"}, &out); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(out.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(columns, rows[0]); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	if len(rows) < 401 {
		t.Fatalf("%d rows for 400 offers", len(rows)-1)
	}
	stated := 0
	for _, r := range rows[1:] {
		row := map[string]string{}
		for i, c := range columns {
			row[c] = r[i]
		}
		if (row["salary_annual"] != "") != (row["salary_stated"] == "true") || (row["source_name"] == "arbeitnow" && row["salary_annual"] != "") {
			t.Errorf("row %s: salary %q, stated %s", row["id"], row["salary_annual"], row["salary_stated"])
		}
		if row["salary_stated"] == "true" {
			stated++
		}
		if strings.ContainsAny(row["title_norm"], "()ABCDEFGHIJKLMNOPQRSTUVWXYZ") || row["title_norm"] == "" {
			t.Errorf("row %s: title %q normalised as %q", row["id"], row["title"], row["title_norm"])
		}
		if l := row["locations"]; !strings.HasPrefix(l, "{") || !strings.HasSuffix(l, "}") || len(l) < 4 {
			t.Errorf("row %s: locations %q", row["id"], l)
		}
		if row["seniority"] == "" || row["job_family"] == "" {
			t.Errorf("row %s: seniority %q, family %q", row["id"], row["seniority"], row["job_family"])
		}
	}
	if stated < len(rows)/3 || stated == len(rows)-1 {
		t.Errorf("%d of %d offers state a salary", stated, len(rows)-1)
	}
}
