package main

import (
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/schemas/users"
	"github.com/datamill/datamill/services/scorer/internal/model"
)

// scorerStack is the embedded stack with the users table, as the loader
// creates it, and the scorer's predictions table.
type scorerStack struct {
	env  []string
	kcfg kafka.Config
	reg  *serde.Registry
	db   *pgx.Conn
}

func newScorerStack(t *testing.T) *scorerStack {
	t.Helper()
	if testkit.RealBroker() {
		t.Fatal("this test uses the fixed topic names of the users dataset: run it on the embedded broker")
	}
	env := testkit.Stack(t, true)
	m := config.ToMap(env)
	pool, err := migrated(t, m["DATABASE_URL"], 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(t.Context(), usersTable); err != nil {
		t.Fatal(err)
	}
	if err := usersDataset(t).createPredictions(t.Context(), pool, "bigint"); err != nil {
		t.Fatal(err)
	}
	db, err := pgx.Connect(t.Context(), m["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(t.Context()) })
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: m["SCHEMA_REGISTRY_URL"]})
	if err != nil {
		t.Fatal(err)
	}
	return &scorerStack{env: testkit.As(env, "scorer"), kcfg: testkit.KafkaConfig(t, m, 3), reg: reg, db: db}
}

// usersDataset is what the scorer knows of the built-in users dataset.
func usersDataset(t testing.TB) *dataset {
	t.Helper()
	ds, err := schemas.BuiltIn().Dataset("users")
	if err != nil {
		t.Fatal(err)
	}
	d, err := newDataset(ds)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// persistedBatch is a batch of persisted records of d holding the clean
// records given, decoded as the scorer decodes them.
func persistedBatch(t testing.TB, d *dataset, cleans ...users.Clean) []stage.Message[persisted] {
	t.Helper()
	batch := make([]stage.Message[persisted], len(cleans))
	for i, c := range cleans {
		b, err := avro.Marshal(d.persistedSchema, &users.Persisted{Record: c, Action: users.LoadActionInserted, PersistedAt: c.EventTime})
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

// persist inserts users [from, to) and produces their persisted events.
func (s *scorerStack) persist(t *testing.T, from, to int) {
	t.Helper()
	codec, err := serde.NewCodec[users.Persisted](t.Context(), s.reg, "persisted.users", schemas.MustSchema("users/persisted"))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kafka.NewClient(s.kcfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(t.Context(), cl, s.kcfg, "persisted.users"); err != nil {
		t.Fatal(err)
	}
	ref := time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for id := from; id < to; id++ {
		signup, login := ref.AddDate(0, 0, -400-id%300), ref.AddDate(0, 0, -(id%200))
		c := users.Clean{
			ID: int64(id), Age: new(int32(20 + id%50)), Gender: new("female"), Country: new([]string{"FR", "DE"}[id%2]),
			SignupDate: &signup, LastLogin: &login, QualityFlags: []string{},
			EventID: fmt.Sprintf("ev-%d", id), EventTime: ref, ContentHash: "h",
		}
		if _, err := s.db.Exec(t.Context(), `insert into users (id, event_id, ingested_at, content_hash, created_event_id) values ($1, $2, $3, 'h', $2)`,
			c.ID, c.EventID, ref); err != nil {
			t.Fatal(err)
		}
		b, err := codec.Encode(&users.Persisted{Record: c, Action: users.LoadActionInserted, PersistedAt: ref})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: "persisted.users", Key: []byte(fmt.Sprint(id)), Value: b})
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// trainModel writes a model artefact into dir and returns it.
func trainModel(t testing.TB, dir string) *model.Model {
	t.Helper()
	if err := run(t.Context(), []string{"scorer", "train", "--csv", usersCSV(t, 1000), "--out", dir}, nil, io.Discard); err != nil {
		t.Fatal(err)
	}
	path, err := model.Latest(dir, "churn")
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestScoresEveryEventOnceAcrossAModelSwap waits without a model, then
// scores a stream during which a newer model appears (and a broken one):
// every persisted event gets exactly one predictions row and one scored
// record, each naming the model that made it.
func TestScoresEveryEventOnceAcrossAModelSwap(t *testing.T) {
	s := newScorerStack(t)
	dir := t.TempDir()
	const n = 3000
	s.persist(t, 1, n/2+1)
	svc := testkit.Start(t, run, append(s.env, "SCORER_MODEL_DIR="+dir, "SCORER_MODEL_POLL=20ms", "STAGE_BATCH_MAX=50", "STAGE_INSTANCE_ID=t"))
	// Once started, it waits for a model, not ready, polling an empty
	// directory.
	waiting := "waiting for a model churn-*.json in " + dir
	for deadline := time.Now().Add(30 * time.Second); ; {
		ready, body := svc.Ready(t)
		if strings.Contains(body, waiting) {
			if ready {
				t.Fatalf("without a model: ready, %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("without a model: %s, want it %s", body, waiting)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var count int
	if err := s.db.QueryRow(t.Context(), `select count(*) from predictions`).Scan(&count); err != nil || count != 0 {
		t.Fatalf("%d predictions (%v) before any model", count, err)
	}

	first := trainModel(t, dir)
	s.persist(t, n/2+1, n+1)
	// Once scoring has begun, a broken artefact, then a newer model.
	deadline := time.Now().Add(time.Minute)
	for count == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no prediction within a minute of the first model")
		}
		time.Sleep(5 * time.Millisecond)
		_ = s.db.QueryRow(t.Context(), `select count(*) from predictions`).Scan(&count)
	}
	if err := os.WriteFile(filepath.Join(dir, "churn-20990101T000000Z.json"), []byte(`{"format": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	second := *first
	second.Version, second.Threshold = "20990102T000000Z", 0.3
	if _, err := second.Save(dir); err != nil {
		t.Fatal(err)
	}

	scored := testkit.Consume(t, s.kcfg, "scored.users", n)
	codec, err := serde.NewCodec[users.Scored](t.Context(), s.reg, "scored.users", schemas.MustSchema("users/scored"))
	if err != nil {
		t.Fatal(err)
	}
	byEvent := map[string]users.Scored{}
	for _, r := range scored {
		var sc users.Scored
		if err := codec.Decode(r.Value, &sc); err != nil {
			t.Fatal(err)
		}
		if _, dup := byEvent[sc.EventID]; dup {
			t.Errorf("event %s scored twice", sc.EventID)
		}
		byEvent[sc.EventID] = sc
	}
	rows, err := s.db.Query(t.Context(), `select event_id, user_id, prediction, probability, model_version from predictions`)
	if err != nil {
		t.Fatal(err)
	}
	versions := map[string]int{}
	var id, version string
	var user int64
	var label int32
	var p float64
	matched := 0
	_, err = pgx.ForEachRow(rows, []any{&id, &user, &label, &p, &version}, func() error {
		versions[version]++
		sc, ok := byEvent[id]
		if ok && sc.ID == user && sc.PredictedLabel == label && sc.Probability == p && sc.ModelVersion == version {
			matched++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if matched != n || len(byEvent) != n {
		t.Errorf("%d predictions rows match their scored record, %d events scored; want %d of each", matched, len(byEvent), n)
	}
	if versions[first.Version] == 0 || versions[second.Version] == 0 || len(versions) != 2 {
		t.Errorf("predictions by model version %v, want both %s and %s (and not the broken artefact)", versions, first.Version, second.Version)
	}
	// The swap happens between batches: each batch is scored by one model.
	if ready, body := svc.Ready(t); !ready {
		t.Errorf("not ready after scoring: %s", body)
	}
	var info strings.Builder
	resp, err := http.Get("http://" + svc.Addr + "/metrics")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		info.Write(b)
	}
	if !strings.Contains(info.String(), `datamill_scorer_model_info{dataset="users",version="`+second.Version+`"} 1`) {
		t.Errorf("metrics do not name the current model %s", second.Version)
	}
}

// A batch replayed after a crash (predictions committed, Kafka not) gets
// back the predictions it was first given, even under another model.
func TestReplayedBatchRepublishesTheStoredPredictions(t *testing.T) {
	s := newScorerStack(t)
	s.persist(t, 1, 21)
	dir := t.TempDir()
	first := trainModel(t, dir)
	pool, err := migrated(t, config.ToMap(s.env)["DATABASE_URL"], 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ms := &models{dataset: "users", dir: dir, name: "churn", log: zap.NewNop(), info: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x"}, []string{"dataset", "version"})}
	if err := ms.poll(); err != nil {
		t.Fatal(err)
	}
	d := usersDataset(t)
	sc := &scoring{dataset: d, pool: pool, models: ms, risk: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "y"})}
	var cleans []users.Clean
	for id := 1; id <= 20; id++ {
		cleans = append(cleans, users.Clean{
			ID: int64(id), EventID: fmt.Sprintf("ev-%d", id), Age: new(int32(30)), QualityFlags: []string{},
		})
	}
	batch := persistedBatch(t, d, cleans...)
	once, err := sc.handler(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	second := *first
	second.Version, second.Threshold, second.Intercept = "20990101T000000Z", 0.01, first.Intercept+3
	ms.current.Store(&second)
	again, err := sc.handler(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	for i := range once.Outputs {
		if a, b := once.Outputs[i].Value, again.Outputs[i].Value; a != b || a.ModelVersion != first.Version {
			t.Errorf("event %d: first %+v, replayed %+v", i, a, b)
		}
	}
	var n int
	if err := pool.QueryRow(t.Context(), `select count(*) from predictions`).Scan(&n); err != nil || n != 20 {
		t.Errorf("%d predictions rows (%v), want 20", n, err)
	}
}

// TestABatchReadsPredictionsByIndexOnly checks that what a batch costs does
// not grow with the predictions table: new and replayed events alike are
// looked up by index, never by scanning the table.
func TestABatchReadsPredictionsByIndexOnly(t *testing.T) {
	s := newScorerStack(t)
	s.persist(t, 1, 21)
	dir := t.TempDir()
	trainModel(t, dir)
	// One connection, so that the statistics flushes below are its own.
	pool, err := migrated(t, config.ToMap(s.env)["DATABASE_URL"], 1)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(t.Context(), `insert into predictions (event_id, user_id, prediction, probability, model_version)
		select 'old-' || g, 1, 0, 0.5, 'v0' from generate_series(1, 20000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(t.Context(), `analyze predictions`); err != nil {
		t.Fatal(err)
	}
	scanned := func() int64 {
		t.Helper()
		// The flush happens once the backend is idle after this statement.
		if _, err := pool.Exec(t.Context(), `select pg_stat_force_next_flush()`); err != nil {
			t.Fatal(err)
		}
		var n int64
		if err := pool.QueryRow(t.Context(), `select seq_tup_read from pg_stat_user_tables where relname = 'predictions'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	ms := &models{dataset: "users", dir: dir, name: "churn", log: zap.NewNop(), info: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x"}, []string{"dataset", "version"})}
	if err := ms.poll(); err != nil {
		t.Fatal(err)
	}
	d := usersDataset(t)
	sc := &scoring{dataset: d, pool: pool, models: ms, risk: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "y"})}
	var cleans []users.Clean
	for n := range 2000 { // the default STAGE_BATCH_MAX
		cleans = append(cleans, users.Clean{
			ID: int64(1 + n%20), EventID: fmt.Sprintf("ev-%d", n), Age: new(int32(30)), QualityFlags: []string{},
		})
	}
	batch := persistedBatch(t, d, cleans...)
	before := scanned()
	for range 2 { // new events, then the same replayed
		res, err := sc.handler(t.Context(), batch)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Outputs) != len(batch) {
			t.Fatalf("%d outputs for %d events", len(res.Outputs), len(batch))
		}
	}
	if n := scanned() - before; n != 0 {
		t.Errorf("two batches read %d predictions rows by scanning: want index lookups only", n)
	}
}

// BenchmarkDecodeAndScore is the stream's work on one persisted users
// record but the database: decode it, compute its features and score it,
// into the generated type (as the scorer did before it served any
// dataset) and into the struct type built from the derived schema.
func BenchmarkDecodeAndScore(b *testing.B) {
	m := trainModel(b, b.TempDir())
	d := usersDataset(b)
	ref := time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)
	var bodies [][]byte
	for id := range 1000 {
		signup, login := ref.AddDate(0, 0, -400-id%300), ref.AddDate(0, 0, -(id%200))
		c := users.Clean{
			ID: int64(id + 1), Age: new(int32(20 + id%50)), Gender: new("female"), Country: new([]string{"FR", "DE"}[id%2]),
			SignupDate: &signup, LastLogin: &login, MonthlySpend: new(big.NewRat(int64(1000+id), 100)), QualityFlags: []string{},
			EventID: fmt.Sprintf("ev-%d", id), EventTime: ref, ContentHash: "h",
		}
		body, err := avro.Marshal(d.persistedSchema, &users.Persisted{Record: c, Action: users.LoadActionInserted, PersistedAt: ref})
		if err != nil {
			b.Fatal(err)
		}
		bodies = append(bodies, body)
	}
	b.Run("generated", func(b *testing.B) {
		fields := model.FieldsOf(reflect.TypeFor[users.Clean]())
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			var p users.Persisted
			if err := avro.Unmarshal(d.persistedSchema, bodies[i%len(bodies)], &p); err != nil {
				b.Fatal(err)
			}
			_ = m.Predict(m.Score(fields.Record(&p.Record)))
			i++
		}
	})
	b.Run("derived", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			p := reflect.New(d.persistedType)
			if err := avro.Unmarshal(d.persistedSchema, bodies[i%len(bodies)], p.Interface()); err != nil {
				b.Fatal(err)
			}
			c := cleanOf(p)
			_ = predict(m, d.record(c), d.keyOf(c), c.Field(d.eventIDField).String())
			i++
		}
	})
}

// Each dataset the scorer serves waits for its own table and model: users
// is scored while jobs, declared in DATASETS_DIR with a model, waits for
// its table, not ready for it; plain, which declares no model, is served
// by no stage.
func TestADatasetThatWaitsHoldsUpNoOther(t *testing.T) {
	s := newScorerStack(t)
	s.persist(t, 1, 101)
	dir := t.TempDir()
	trainModel(t, dir)
	datasets := jobsDataset(t)
	if err := os.CopyFS(filepath.Join(datasets, "plain"), os.DirFS(filepath.Join(datasets, "jobs"))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(datasets, "plain", "dataset.yaml"), []byte("description: no model\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	svc := testkit.Start(t, run, append(s.env, "SCORER_MODEL_DIR="+dir, "SCORER_MODEL_POLL=50ms",
		"DATASETS=jobs,plain,users", "DATASETS_DIR="+datasets))
	if got := len(testkit.Consume(t, s.kcfg, "scored.users", 100)); got != 100 {
		t.Fatalf("%d scored users records, want 100 while jobs waits", got)
	}
	ready, body := svc.Ready(t)
	if ready || !strings.Contains(body, "no jobs table with its key id yet") || !strings.Contains(body, `"name":"stage_users","ready":true`) {
		t.Errorf("/readyz = %v %s; want not ready, waiting for the jobs table, and the users stage ready", ready, body)
	}
	if strings.Contains(body, "plain") {
		t.Errorf("/readyz names plain, which declares no model: %s", body)
	}
}
