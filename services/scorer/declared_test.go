package main

import (
	"encoding/csv"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/services/scorer/internal/model"
)

// jobsDataset writes a dataset that is not built in, jobs, into a
// DATASETS_DIR: its raw and clean schemas and its dataset.yaml, whose
// model predicts whether an offer got applied to (yes/no) from numeric
// (with blanks), categorical, date, boolean and text columns.
func jobsDataset(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "jobs"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"clean.avsc": `{"type": "record", "name": "Clean", "namespace": "datamill.jobs", "datamill.key": "id", "fields": [
			{"name": "id", "type": "long"}, {"name": "salary", "type": ["null", "double"]}, {"name": "city", "type": ["null", "string"]},
			{"name": "posted", "type": ["null", {"type": "int", "logicalType": "date"}]}, {"name": "remote", "type": ["null", "boolean"]},
			{"name": "title", "type": ["null", "string"]}, {"name": "applied", "type": ["null", "string"]},
			{"name": "event_id", "type": "string"}, {"name": "source", "type": ["null", "string"], "default": null},
			{"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-micros"}}, {"name": "content_hash", "type": "string"}]}`,
		"raw.avsc": `{"type": "record", "name": "Raw", "namespace": "datamill.jobs", "fields": [
			{"name": "id", "type": ["null", "string"], "default": null}, {"name": "salary", "type": ["null", "string"], "default": null},
			{"name": "city", "type": ["null", "string"], "default": null}, {"name": "posted", "type": ["null", "string"], "default": null},
			{"name": "remote", "type": ["null", "string"], "default": null}, {"name": "title", "type": ["null", "string"], "default": null},
			{"name": "applied", "type": ["null", "string"], "default": null},
			{"name": "event_id", "type": "string"}, {"name": "source", "type": "string"},
			{"name": "ingested_at", "type": {"type": "long", "logicalType": "timestamp-micros"}}]}`,
		"dataset.yaml": `
description: Job offers.
sources: [{kind: http}]
model:
  kind: logistic
  name: apply
  label: {column: applied, positive: ["yes"]}
  features:
    - {column: salary, kind: numeric, transform: log1p}
    - {column: posted, kind: numeric, transform: days_since, name: age_days}
    - {column: city, kind: categorical, top: 3}
    - {column: remote, kind: boolean}
    - {column: title, kind: tokens, buckets: 16}
  train: {test_share: 0.25}
`,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, "jobs", name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// jobRow is one offer; offers that are remote, well paid and for Go get
// applied to more.
type jobRow struct {
	id                                  int
	salary, city, posted, remote, title string
	applied                             string
}

func jobRows(n int) []jobRow {
	rng := rand.New(rand.NewPCG(8, 9))
	ref := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	var out []jobRow
	for i := range n {
		pay := 30000 + rng.Float64()*70000
		remote := rng.IntN(2) == 0
		title := []string{"Go engineer", "Java developer", "Senior Go developer", "Accountant"}[rng.IntN(4)]
		z := -2 + 1.5*float64(map[bool]int{true: 1}[remote]) + (pay-65000)/20000 + 1.5*float64(map[bool]int{true: 1}[strings.Contains(title, "Go")])
		r := jobRow{
			id: i + 1, salary: fmt.Sprintf("%.0f", pay), city: []string{"Paris", "Lyon", "Berlin", "Madrid", "Oslo"}[rng.IntN(5)],
			posted: ref.AddDate(0, 0, -rng.IntN(60)).Format(time.DateOnly), remote: fmt.Sprint(remote), title: title, applied: "no",
		}
		if rng.Float64() < 1/(1+math.Exp(-z)) {
			r.applied = "yes"
		}
		if i%9 == 0 {
			r.salary = "" // blanks in a numeric column
		}
		if i%11 == 0 {
			r.remote = ""
		}
		out = append(out, r)
	}
	return out
}

func writeJobsCSV(t testing.TB, rows []jobRow) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jobs.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"id", "salary", "city", "posted", "remote", "title", "applied"})
	for _, r := range rows {
		_ = w.Write([]string{fmt.Sprint(r.id), r.salary, r.city, r.posted, r.remote, r.title, r.applied})
	}
	w.Flush()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// A dataset that is not built in trains from its declaration: the model,
// name, features and label are the ones dataset.yaml in DATASETS_DIR
// declares, and they learn.
func TestTrainADeclaredDatasetFromCSV(t *testing.T) {
	dir, models, split := jobsDataset(t), t.TempDir(), t.TempDir()
	var out strings.Builder
	err := run(t.Context(), []string{"scorer", "train", "--dataset", "jobs", "--csv", writeJobsCSV(t, jobRows(3000)), "--out", models, "--export-split", split},
		[]string{"DATASETS_DIR=" + dir}, &out)
	if err != nil {
		t.Fatal(err)
	}
	path, err := model.Latest(models, "apply")
	if err != nil || path == "" {
		t.Fatalf("no artefact apply-* in %s (%v)", models, err)
	}
	m, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.Dataset != "jobs" || m.Kind != model.Logistic || m.Label.Column != "applied" || m.Training.Rows != 3000 || m.Test.Rows < 749 || m.Test.Rows > 751 {
		t.Errorf("artefact %s of %s, %s of %s, %d rows, %d tested", m.Name, m.Dataset, m.Kind, m.Label.Column, m.Training.Rows, m.Test.Rows)
	}
	if m.Test.AUC < 0.75 {
		t.Errorf("test ROC-AUC %.3f: the declared features do not learn what makes an offer applied to", m.Test.AUC)
	}
	for _, f := range []string{"salary", "salary_missing", "age_days", "city=other", "city=missing", "remote=true", "remote=missing", "title#15"} {
		if !slices.Contains(m.Features, f) {
			t.Errorf("no feature %s among %v", f, m.Features)
		}
	}
	if len(m.Features) != 2*2+(3+2)+3+16 {
		t.Errorf("%d features %v", len(m.Features), m.Features)
	}
	if !strings.Contains(out.String(), "logistic regression of applied on 3000 jobs rows") {
		t.Errorf("report:\n%s", out.String())
	}
	if recs := readAll(t, filepath.Join(split, "test.csv")); len(recs) != m.Test.Rows+1 || !slices.Equal(recs[0], []string{"applied", "salary", "posted", "city", "remote", "title"}) {
		t.Errorf("test split: %d rows, header %v", len(recs), recs[0])
	}
}

// The same dataset's table trains a ridge model of the salary through a
// declaration given on the command line: rows without a salary are left
// out, and the model predicts salaries.
func TestTrainARidgeModelFromADeclaredTable(t *testing.T) {
	url := testkit.Postgres(t)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	if _, err := conn.Exec(t.Context(), `create table jobs (id bigint primary key, salary numeric(12, 2), city text, posted date,
		remote boolean, title text, applied text)`); err != nil {
		t.Fatal(err)
	}
	rows := jobRows(1000)
	labelled := 0
	for _, r := range rows {
		if r.salary != "" {
			labelled++
		}
		if _, err := conn.Exec(t.Context(), `insert into jobs values ($1, nullif($2, '')::numeric, $3, $4::date, nullif($5, '')::boolean, $6, $7)`,
			r.id, r.salary, r.city, r.posted, r.remote, r.title, r.applied); err != nil {
			t.Fatal(err)
		}
	}
	decl := filepath.Join(t.TempDir(), "dataset.yaml")
	if err := os.WriteFile(decl, []byte(`model:
  kind: ridge
  name: pay
  label: {column: salary}
  features:
    - {column: applied, kind: categorical}
    - {column: remote, kind: boolean}
    - {column: title, kind: tokens, buckets: 8}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	models := t.TempDir()
	var out strings.Builder
	err = run(t.Context(), []string{"scorer", "train", "--dataset", "jobs", "--declaration", decl, "--out", models},
		[]string{"DATABASE_URL=" + url, "DATASETS_DIR=" + jobsDataset(t)}, &out)
	if err != nil {
		t.Fatal(err)
	}
	path, _ := model.Latest(models, "pay")
	m, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != model.Ridge || m.Training.Rows != labelled || m.Test.RMSE <= 0 || m.Test.RMSE > 25000 || m.Test.R2 <= 0 {
		t.Errorf("ridge model: %s, %d rows (want %d labelled), test %+v", m.Kind, m.Training.Rows, labelled, m.Test)
	}
	if !strings.Contains(out.String(), fmt.Sprintf("RMSE %.4f", m.Test.RMSE)) {
		t.Errorf("report:\n%s", out.String())
	}
}
