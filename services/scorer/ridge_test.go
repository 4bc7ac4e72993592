package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hamba/avro/v2"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/stage"
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

// offersDataset is what the scorer knows of the offers dataset.
func offersDataset(t testing.TB) *dataset {
	t.Helper()
	cat, err := schemas.Open(offersDir(t))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := cat.Dataset("offers")
	if err != nil {
		t.Fatal(err)
	}
	d, err := newDataset(ds)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// offersBatch is a batch of persisted offers records holding the offers
// given, event ids ev-<id>, decoded as the scorer decodes them.
func offersBatch(t testing.TB, d *dataset, rows []offer) []stage.Message[persisted] {
	t.Helper()
	at := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	batch := make([]stage.Message[persisted], len(rows))
	for i, o := range rows {
		var pay any
		if o.pay != nil {
			pay = *o.pay
		}
		locs := make([]any, len(o.locations))
		for j, l := range o.locations {
			locs[j] = l
		}
		b, err := avro.Marshal(d.persistedSchema, map[string]any{
			schemas.FieldRecord: map[string]any{
				"id": o.id, "title": o.title, "pay": pay, "locations": locs, "quality_flags": []any{},
				"event_id": "ev-" + o.id, "source": nil, "event_time": at, "content_hash": "h",
			},
			schemas.FieldAction: "INSERTED", schemas.FieldPersistedAt: at,
		})
		if err != nil {
			t.Fatal(err)
		}
		v := reflect.New(d.persistedType)
		if err := avro.Unmarshal(d.persistedSchema, b, v.Interface()); err != nil {
			t.Fatal(err)
		}
		batch[i].Value = v
	}
	return batch
}

// A ridge model's scored records, from the stream and from the
// reconciliation alike, carry its estimate (salary_estimate, the
// prediction) and whether the record stated its own label
// (salary_stated), and so do the rows of its predictions table (estimate,
// stated); a replayed batch gets the stored ones back.
func TestARidgeModelsScoredRecordsCarryTheEstimateAndWhetherItWasStated(t *testing.T) {
	pool, err := migrated(t, testkit.Postgres(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(t.Context(), `create table offers (id text primary key, title text, pay double precision,
		locations text[] not null default '{}', event_id text not null, updated_at timestamptz not null default now())`); err != nil {
		t.Fatal(err)
	}
	rows := offers(12) // every third states no pay
	for _, o := range rows {
		if _, err := pool.Exec(t.Context(), `insert into offers values ($1, $2, $3, $4, 'ev-' || $1, now() - interval '1 hour')`, o.id, o.title, o.pay, o.locations); err != nil {
			t.Fatal(err)
		}
	}
	d := offersDataset(t)
	if d.estimateField != "salary_estimate" || d.statedField != "salary_stated" {
		t.Fatalf("offers' scored fields of its ridge model: %q, %q", d.estimateField, d.statedField)
	}
	if err := d.awaitTable(t.Context(), changeOn{pool}, pool, func(string) {}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := run(t.Context(), []string{"scorer", "train", "--dataset", "offers", "--csv", offersCSV(t, offers(900)), "--out", dir},
		[]string{"DATASETS_DIR=" + offersDir(t)}, io.Discard); err != nil {
		t.Fatal(err)
	}
	ms := &models{dataset: "offers", dir: dir, name: "salary", log: zap.NewNop(), info: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x"}, []string{"dataset", "version"})}
	if err := ms.poll(); err != nil {
		t.Fatal(err)
	}
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: testkit.Registry(t)})
	if err != nil {
		t.Fatal(err)
	}
	d.name = testkit.Name(t, "offers") // topics of this test's own
	enc, err := d.codecs(t.Context(), reg)
	if err != nil {
		t.Fatal(err)
	}
	// check says what a scored record of offer o must carry, encoded.
	check := func(how string, o offer, sc scored) {
		t.Helper()
		b, err := enc.AppendEncode(nil, &sc)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := avro.Unmarshal(d.scoredSchema, b[5:], &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"id": o.id, "probability": sc.Probability, "salary_estimate": sc.Probability, "salary_stated": o.pay != nil}
		for k, v := range want {
			if !cmp.Equal(got[k], v) {
				t.Errorf("%s: scored record of %s: %s = %v, want %v (record %v)", how, o.id, k, got[k], v, got)
			}
		}
		if sc.Probability < 30000 || sc.Probability > 150000 {
			t.Errorf("%s: %s estimated at %.0f", how, o.id, sc.Probability)
		}
	}

	// The stream scores the first eight offers, twice.
	sc := &scoring{dataset: d, pool: pool, models: ms, risk: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "y"})}
	batch := offersBatch(t, d, rows[:8])
	once, err := sc.handler(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	again, err := sc.handler(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range rows[:8] {
		check("stream", o, once.Outputs[i].Value)
		if a, b := once.Outputs[i].Value, again.Outputs[i].Value; !cmp.Equal(a, b) {
			t.Errorf("offer %s: first %+v, replayed %+v", o.id, a, b)
		}
	}
	// The reconciliation scores the other four.
	var published []*kgo.Record
	keys, err := serde.NewKeyCodec(t.Context(), reg, "scored."+d.name)
	if err != nil {
		t.Fatal(err)
	}
	r := &reconciler{
		dataset: d, pool: pool, models: ms, log: zap.NewNop(), topic: "scored." + d.name, encoder: enc, keys: keys,
		produce: func(_ context.Context, recs ...*kgo.Record) error { published = append(published, recs...); return nil },
		age:     time.Minute, page: 100, reconciled: prometheus.NewCounter(prometheus.CounterOpts{Name: "z"}),
	}
	if n, err := r.pass(t.Context()); err != nil || n != 4 {
		t.Fatalf("reconciliation: %d rows (%v), want the 4 the stream did not score", n, err)
	}
	byID := map[string]offer{}
	for _, o := range rows {
		byID[o.id] = o
	}
	for _, rec := range published {
		var got map[string]any
		if err := avro.Unmarshal(d.scoredSchema, rec.Value[5:], &got); err != nil {
			t.Fatal(err)
		}
		o := byID[got["id"].(string)]
		if got["salary_estimate"] != got["probability"] || got["salary_stated"] != (o.pay != nil) {
			t.Errorf("reconciled scored record %v, want salary_estimate = probability and salary_stated %v", got, o.pay != nil)
		}
	}
	// The table holds both for every offer.
	tableRows, err := pool.Query(t.Context(), `select o.id, p.estimate, p.stated, p.probability from offers o join offers_predictions p on p.offer_id = o.id order by o.id`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for tableRows.Next() {
		var id string
		var estimate *float64
		var stated *bool
		var prob float64
		if err := tableRows.Scan(&id, &estimate, &stated, &prob); err != nil {
			t.Fatal(err)
		}
		n++
		if estimate == nil || *estimate != prob || stated == nil || *stated != (byID[id].pay != nil) {
			t.Errorf("predictions row of %s: estimate %v, stated %v, probability %v; want the estimate and stated %v", id, estimate, stated, prob, byID[id].pay != nil)
		}
	}
	if err := tableRows.Err(); err != nil || n != 12 {
		t.Errorf("%d predictions rows (%v), want 12", n, err)
	}
}

// jobsCleanCSV writes n offers as a CSV export of the built-in jobs table
// (every column the salary model reads, and others), whose annual salary
// follows the family, the seniority and the locations; a third state
// none.
func jobsCleanCSV(t testing.TB, n int) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(19, 5))
	families := map[string]float64{"backend": 62000, "design": 52000, "support": 38000}
	seniority := map[string]float64{"junior": 0.72, "mid": 1, "senior": 1.3}
	places := map[string]float64{"{DE}": 1, "{US}": 1.8, `{"EU",FR}`: 0.9, "{}": 1}
	pick := func(m map[string]float64) (string, float64) {
		keys := slices.Sorted(maps.Keys(m))
		k := keys[rng.IntN(len(keys))]
		return k, m[k]
	}
	path := filepath.Join(t.TempDir(), "jobs.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"id", "source_name", "title", "title_norm", "seniority", "job_family", "locations", "tags", "salary_annual", "salary_stated", "description"})
	for i := range n {
		family, base := pick(families)
		sen, factor := pick(seniority)
		locs, place := pick(places)
		salary, stated := fmt.Sprintf("%.0f", base*factor*place*(1+0.05*rng.NormFloat64())), "true"
		if i%3 == 0 {
			salary, stated = "", "false"
		}
		title := sen + " " + family + " engineer"
		_ = w.Write([]string{
			fmt.Sprintf("remotive:%d", i), []string{"remotive", "remoteok"}[i%2], title, title, sen, family, locs,
			[]string{"Go, Kafka", "React", ""}[rng.IntN(3)], salary, stated, "<p>an offer</p>",
		})
	}
	w.Flush()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// scorer train --dataset jobs trains the jobs dataset's declared salary
// model on a CSV export of its table: a ridge regression of salary_annual
// on the offers that state one, reported with its test MAE and R².
func TestTrainTheJobsSalaryModelFromAnExportOfItsTable(t *testing.T) {
	models := t.TempDir()
	var out strings.Builder
	if err := run(t.Context(), []string{"scorer", "train", "--dataset", "jobs", "--csv", jobsCleanCSV(t, 1500), "--out", models}, nil, &out); err != nil {
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
	if m.Kind != model.Ridge || m.Label.Column != "salary_annual" || m.Training.Rows != 1000 || m.Test.R2 < 0.9 {
		t.Errorf("jobs model: %s of %s on %d rows, test MAE %.0f, R² %.3f; want a ridge of salary_annual on the 1000 stated, learnt",
			m.Kind, m.Label.Column, m.Training.Rows, m.Test.MAE, m.Test.R2)
	}
	for _, f := range []string{"title_norm#0", "job_family=backend", "seniority=senior", "locations#63", "tags#63", "source_name=remoteok"} {
		if !slices.Contains(m.Features, f) {
			t.Errorf("no feature %s among the jobs model's", f)
		}
	}
	report := fmt.Sprintf("ridge regression of salary_annual on 1000 jobs rows (%d in the test split)", m.Test.Rows)
	if !strings.Contains(out.String(), report) || !strings.Contains(out.String(), fmt.Sprintf("MAE %.4f, R² %.4f", m.Test.MAE, m.Test.R2)) {
		t.Errorf("report:\n%s\nwant %q and the test MAE and R²", out.String(), report)
	}
}

// The scorer serves the built-in jobs dataset: its predictions table,
// keyed by job_id, keeps the salary model's estimate and whether the offer
// stated its salary, its scored records carry salary_estimate and
// salary_stated, and the reconciliation reads each row's salary_annual.
func TestTheScorerServesTheJobsSalaryModel(t *testing.T) {
	ds, err := schemas.BuiltIn().Dataset("jobs")
	if err != nil {
		t.Fatal(err)
	}
	d, err := newDataset(ds)
	if err != nil {
		t.Fatal(err)
	}
	if d.predictions != "jobs_predictions" || d.keyColumn != "job_id" || !d.textKey || d.estimateField != "salary_estimate" || d.statedField != "salary_stated" {
		t.Errorf("jobs: predictions %s keyed by %s (text %v), scored fields %q, %q", d.predictions, d.keyColumn, d.textKey, d.estimateField, d.statedField)
	}
	if _, cols := d.selectRows(); len(cols) == 0 || cols[0] != "salary_annual" || !slices.Contains(cols, "locations") {
		t.Errorf("the reconciliation reads %v, want salary_annual first and the features' columns", cols)
	}
	for stated, r := range map[bool]model.Map{true: {"salary_annual": 52000.0}, false: {"salary_annual": (*float64)(nil)}} {
		if got := d.stated(r); got != stated {
			t.Errorf("stated(%v) = %v, want %v", r, got, stated)
		}
	}
}
