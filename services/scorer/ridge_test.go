package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/services/scorer/internal/model"
)

// offersDir writes a DATASETS_DIR with a dataset offers, keyed by a text,
// whose ridge model, salary, predicts an offer's pay from the tokens of
// its title and of its list of locations.
func offersDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"raw.avsc": `{"type": "record", "name": "Raw", "namespace": "datamill.offers", "fields": [
			{"name": "id", "type": ["null", "string"], "default": null}, {"name": "title", "type": ["null", "string"], "default": null},
			{"name": "pay", "type": ["null", "string"], "default": null}, {"name": "location", "type": ["null", "string"], "default": null},
			{"name": "event_id", "type": "string"}, {"name": "source", "type": "string"},
			{"name": "ingested_at", "type": {"type": "long", "logicalType": "timestamp-micros"}}]}`,
		"clean.avsc": `{"type": "record", "name": "Clean", "namespace": "datamill.offers", "datamill.key": "id", "fields": [
			{"name": "id", "type": "string", "datamill.clean": {"type": "string", "required": true}},
			{"name": "title", "type": ["null", "string"], "default": null, "datamill.clean": {"type": "string"}},
			{"name": "pay", "type": ["null", "double"], "default": null, "datamill.clean": {"type": "double"}},
			{"name": "locations", "type": {"type": "array", "items": "string"}, "default": []},
			{"name": "quality_flags", "type": {"type": "array", "items": "string"}, "default": []},
			{"name": "event_id", "type": "string"}, {"name": "source", "type": ["null", "string"], "default": null},
			{"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-micros"}}, {"name": "content_hash", "type": "string"}]}`,
		"dataset.yaml": `model:
  kind: ridge
  name: salary
  label: {column: pay}
  features:
    - {column: title, kind: tokens, buckets: 32}
    - {column: locations, kind: tokens, buckets: 32}
  train: {l2: 0.1}
`,
	}
	if err := os.MkdirAll(filepath.Join(dir, "offers"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, "offers", name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// offer is a row of the offers table: pay follows the title's seniority
// and whether the locations hold US; a third of the offers state none.
type offer struct {
	id, title string
	pay       *float64
	locations []string
}

func offers(n int) []offer {
	rng := rand.New(rand.NewPCG(5, 6))
	places := [][]string{{"DE"}, {"DE", "EU"}, {"US"}, {"New York", "US"}, {}, {"FR", "EU"}}
	var out []offer
	for i := range n {
		o := offer{id: fmt.Sprintf("board:%d", i), locations: places[rng.IntN(len(places))]}
		senior := rng.IntN(2) == 0
		o.title = []string{"Go engineer", "Data engineer"}[rng.IntN(2)]
		pay := 50000 + 2000*rng.NormFloat64()
		if senior {
			o.title = "Senior " + o.title
			pay += 20000
		}
		if slices.Contains(o.locations, "US") {
			pay += 40000
		}
		if i%3 != 0 {
			o.pay = &pay
		}
		out = append(out, o)
	}
	return out
}

// offersCSV writes offers as PostgreSQL exports the offers table:
// locations in the text form of a text[].
func offersCSV(t testing.TB, rows []offer) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "offers.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"id", "title", "pay", "locations"})
	for _, o := range rows {
		pay := ""
		if o.pay != nil {
			pay = fmt.Sprint(*o.pay)
		}
		locs := "{" + strings.Join(o.locations, ",") + "}"
		if slices.Contains(o.locations, "New York") {
			locs = strings.Replace(locs, "New York", `"New York"`, 1)
		}
		_ = w.Write([]string{o.id, o.title, pay, locs})
	}
	w.Flush()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// A CSV export whose list column is in PostgreSQL's text[] form trains a
// tokens feature over the list's items, and the exported split writes the
// lists back in the same form, so that it reads as it was read.
func TestTrainOnAListColumnFromCSVAndExportIt(t *testing.T) {
	rows := offers(900)
	models, split := t.TempDir(), t.TempDir()
	var out strings.Builder
	err := run(t.Context(), []string{"scorer", "train", "--dataset", "offers", "--csv", offersCSV(t, rows), "--out", models, "--export-split", split},
		[]string{"DATASETS_DIR=" + offersDir(t)}, &out)
	if err != nil {
		t.Fatal(err)
	}
	path, err := model.Latest(models, "salary")
	if err != nil || path == "" {
		t.Fatalf("no artefact salary-* in %s (%v)", models, err)
	}
	m, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	// Without the locations' tokens the US offers' 40,000 would stay
	// unexplained: R² would be far lower.
	if m.Training.Rows != 600 || m.Test.R2 < 0.97 || m.Test.MAE > 3000 {
		t.Errorf("ridge on %d rows: test MAE %.0f, R² %.3f; want 600 rows learnt from the title and the locations", m.Training.Rows, m.Test.MAE, m.Test.R2)
	}
	if !strings.Contains(out.String(), fmt.Sprintf("MAE %.4f, R² %.4f", m.Test.MAE, m.Test.R2)) {
		t.Errorf("report:\n%s", out.String())
	}
	var exported []string
	for _, name := range []string{"train", "test"} {
		recs := readAll(t, filepath.Join(split, name+".csv"))
		if !slices.Equal(recs[0], []string{"pay", "title", "locations"}) {
			t.Fatalf("%s.csv header %v", name, recs[0])
		}
		for _, r := range recs[1:] {
			exported = append(exported, r[2])
		}
	}
	var want []string
	for _, o := range rows {
		if o.pay != nil {
			want = append(want, formatTextArray(o.locations))
		}
	}
	slices.Sort(want)
	slices.Sort(exported)
	if diff := cmp.Diff(want, exported); diff != "" {
		t.Errorf("the split's locations (-the input's +exported):\n%s", diff)
	}
	// The exported rows read back as the same lists, with the same
	// features as the ones the scorer exported.
	decl, _, _, lists, err := declaration("", "offers", trainSettings{Schemas: schemas.Config{Dir: offersDir(t)}})
	if err != nil {
		t.Fatal(err)
	}
	back, err := readCSV(filepath.Join(split, "test.csv"), decl, lists)
	if err != nil {
		t.Fatal(err)
	}
	features := readAll(t, filepath.Join(split, "test_features.csv"))
	for i, r := range back {
		got := m.Preprocessing.Vector(nil, r)
		for j, v := range got {
			if fmt.Sprint(v) != features[i+1][j] {
				t.Fatalf("test row %d read back: feature %s %v, exported %s", i, m.Features[j], v, features[i+1][j])
			}
		}
	}
	if _, ok := back[0].Value("locations").([]string); !ok {
		t.Errorf("locations read back as %T, want a list", back[0].Value("locations"))
	}
}

// The same model trains on the offers table, whose locations are a text[]
// read as a list of any: its tokens are the items', and the exported
// split writes each list as PostgreSQL would.
func TestTrainOnAListColumnOfTheTable(t *testing.T) {
	url := testkit.Postgres(t)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	if _, err := conn.Exec(t.Context(), `create table offers (id text primary key, title text, pay double precision, locations text[] not null default '{}')`); err != nil {
		t.Fatal(err)
	}
	rows := offers(900)
	var want []string
	for _, o := range rows {
		if _, err := conn.Exec(t.Context(), `insert into offers values ($1, $2, $3, $4)`, o.id, o.title, o.pay, o.locations); err != nil {
			t.Fatal(err)
		}
		if o.pay != nil {
			want = append(want, formatTextArray(o.locations))
		}
	}
	models, split := t.TempDir(), t.TempDir()
	err = run(t.Context(), []string{"scorer", "train", "--dataset", "offers", "--out", models, "--export-split", split},
		[]string{"DATABASE_URL=" + url, "DATASETS_DIR=" + offersDir(t)}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	path, _ := model.Latest(models, "salary")
	m, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.Training.Rows != 600 || m.Test.R2 < 0.97 {
		t.Errorf("ridge on %d rows of the table: test MAE %.0f, R² %.3f; want 600 rows learnt from the title and the locations", m.Training.Rows, m.Test.MAE, m.Test.R2)
	}
	var exported []string
	for _, name := range []string{"train", "test"} {
		for _, r := range readAll(t, filepath.Join(split, name+".csv"))[1:] {
			exported = append(exported, r[2])
		}
	}
	slices.Sort(want)
	slices.Sort(exported)
	if diff := cmp.Diff(want, exported); diff != "" {
		t.Errorf("the split's locations (-the table's +exported):\n%s", diff)
	}
}
