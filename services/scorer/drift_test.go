package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas/users"
	"github.com/datamill/datamill/services/scorer/internal/model"
)

// psiOf is the exported PSI of a feature, and whether it is exported.
func psiOf(g *prometheus.GaugeVec, dataset, feature string) (float64, bool) {
	c, err := g.GetMetricWithLabelValues(dataset, feature)
	if err != nil {
		return 0, false
	}
	return testutil.ToFloat64(c), true
}

// Records like the training ones do not drift; records whose users stopped
// logging in do, on the days since login; the window starts again when
// full and when the model changes.
func TestDriftOfRecentRecords(t *testing.T) {
	m := trainModel(t, t.TempDir())
	decl, _, _, _, err := declaration("", "users", trainSettings{})
	if err != nil {
		t.Fatal(err)
	}
	records, err := readCSV(usersCSV(t, 1000), decl, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := newDriftGauge()
	d := &drift{dataset: "users", window: 500, psi: g}

	d.observe(m, records[:50])
	if n := testutil.CollectAndCount(g); n != 0 {
		t.Errorf("%d PSI series after 50 records, want none before %d", n, minDriftRecords)
	}
	d.observe(m, records[50:500])
	for _, f := range m.Preprocessing.Features {
		if v, ok := psiOf(g, "users", f.Name); !ok || v > 0.1 {
			t.Errorf("records like the training ones: PSI of %s = %v (exported %v)", f.Name, v, ok)
		}
	}
	// The window was full: the next one holds only the records that
	// follow, whose users last logged in 200 days earlier.
	var stale []model.Record
	for _, r := range records[500:] {
		c := model.Map{}
		for k, v := range r.(model.Map) {
			c[k] = v
		}
		if at, ok := model.Date(c["last_login"]); ok {
			c["last_login"] = at.AddDate(0, 0, -200)
		}
		stale = append(stale, c)
	}
	d.observe(m, stale)
	if v, _ := psiOf(g, "users", "days_since_login"); v < 0.25 {
		t.Errorf("logins 200 days older: PSI of days_since_login = %v, want above 0.25", v)
	}
	if v, _ := psiOf(g, "users", "age"); v > 0.1 {
		t.Errorf("ages unchanged: PSI of age = %v", v)
	}
	// A new model starts a new window.
	next := *m
	next.Version = "20990101T000000Z"
	d.observe(&next, records[:100])
	if v, _ := psiOf(g, "users", "days_since_login"); v > 0.1 {
		t.Errorf("a new model's window of ordinary records: PSI of days_since_login = %v", v)
	}
}

// The stream's batches feed the drift of their dataset.
func TestScoringFeedsTheDrift(t *testing.T) {
	s := newScorerStack(t)
	s.persist(t, 1, 201) // the users rows the predictions refer to
	dir := t.TempDir()
	trainModel(t, dir)
	pool, err := migrated(t, config.ToMap(s.env)["DATABASE_URL"], 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ms := &models{dataset: "users", dir: dir, name: "churn", log: zap.NewNop(), info: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x"}, []string{"dataset", "version"})}
	if err := ms.poll(); err != nil {
		t.Fatal(err)
	}
	g := newDriftGauge()
	d := usersDataset(t)
	sc := &scoring{dataset: d, pool: pool, models: ms, risk: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "y"}), drift: &drift{dataset: "users", window: 1000, psi: g}}
	var cleans []users.Clean
	login := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	for id := 1; id <= 200; id++ { // every user 30, no gender
		cleans = append(cleans, users.Clean{
			ID: int64(id), EventID: fmt.Sprintf("ev-%d", id), Age: new(int32(30)), LastLogin: &login, QualityFlags: []string{},
		})
	}
	batch := persistedBatch(t, d, cleans...)
	if _, err := sc.handler(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(g); n != len(ms.current.Load().Preprocessing.Features) {
		t.Errorf("%d PSI series, want one per feature", n)
	}
	for _, f := range []string{"age", "gender"} {
		if v, _ := psiOf(g, "users", f); v < 0.25 {
			t.Errorf("every user 30 and without a gender: PSI of %s = %v, want above 0.25", f, v)
		}
	}
}

// driftRow is a row of scorer_drift.
type driftRow struct {
	version, feature string
	psi              float64
	records          int
	at               time.Time
}

// driftRows reads scorer_drift in the order it was written.
func driftRows(t testing.TB, pool *pgxpool.Pool) []driftRow {
	t.Helper()
	rows, err := pool.Query(t.Context(), `select model_version, feature, psi, records, measured_at from scorer_drift where dataset = 'users' order by id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []driftRow
	for rows.Next() {
		var r driftRow
		if err := rows.Scan(&r.version, &r.feature, &r.psi, &r.records, &r.at); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// gaugeValues is the exported PSI of every drifting feature of m.
func gaugeValues(t testing.TB, g *prometheus.GaugeVec, m *model.Model) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for i, f := range m.Preprocessing.Features {
		if m.Preprocessing.Drifts(i) {
			v, ok := psiOf(g, "users", f.Name)
			if !ok {
				t.Fatalf("no PSI exported for %s", f.Name)
			}
			out[f.Name] = v
		}
	}
	return out
}

// checkMeasurement checks that rows are one measurement: a row per feature
// of want, with its PSI, the records and time given.
func checkMeasurement(t testing.TB, rows []driftRow, version string, want map[string]float64, records int, at time.Time) {
	t.Helper()
	if len(rows) != len(want) {
		t.Fatalf("%d rows %v; want one per drifting feature, %d", len(rows), rows, len(want))
	}
	for _, r := range rows {
		w, ok := want[r.feature]
		if !ok || math.Abs(r.psi-w) > 1e-12 || r.records != records || !r.at.Equal(at) || r.version != version {
			t.Errorf("row %+v; want %s psi %v over %d records at %s of %s", r, r.feature, w, records, at, version)
		}
	}
}

// Each window's measurements become rows of scorer_drift, with the PSI the
// gauge showed: the last of each window that ended, then the current
// window's last, each written once.
func TestDriftRecordedInTheTable(t *testing.T) {
	m := trainModel(t, t.TempDir())
	decl, _, _, _, err := declaration("", "users", trainSettings{})
	if err != nil {
		t.Fatal(err)
	}
	records, err := readCSV(usersCSV(t, 1000), decl, nil)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := migrated(t, testkit.Postgres(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	g := newDriftGauge()
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := &drift{dataset: "users", window: 200, psi: g, now: func() time.Time { return clock }}
	rec := &driftRecorder{pool: pool, log: zap.NewNop()}
	rec.add(d)

	if n, err := rec.record(t.Context()); err != nil || n != 0 {
		t.Fatalf("nothing measured: record = %d, %v", n, err)
	}
	d.observe(m, records[:150])
	first := gaugeValues(t, g, m)
	if n, err := rec.record(t.Context()); err != nil || n != 1 {
		t.Fatalf("one measurement: record = %d, %v", n, err)
	}
	checkMeasurement(t, driftRows(t, pool), m.Version, first, 150, clock)

	// The window ends full after 300 records; the next one holds 120.
	clock = clock.Add(time.Minute)
	d.observe(m, records[150:300])
	full, fullAt := gaugeValues(t, g, m), clock
	clock = clock.Add(time.Minute)
	d.observe(m, records[300:420])
	current := gaugeValues(t, g, m)
	if n, err := rec.record(t.Context()); err != nil || n != 2 {
		t.Fatalf("an ended window and the current one: record = %d, %v", n, err)
	}
	rows := driftRows(t, pool)
	checkMeasurement(t, rows[len(first):len(first)+len(full)], m.Version, full, 300, fullAt)
	checkMeasurement(t, rows[len(first)+len(full):], m.Version, current, 120, clock)
	if n, err := rec.record(t.Context()); err != nil || n != 0 {
		t.Errorf("nothing measured since: record = %d, %v", n, err)
	}
	if got := len(driftRows(t, pool)); got != len(rows) {
		t.Errorf("%d rows after a write with nothing new; want %d", got, len(rows))
	}
	var indexed bool
	if err := pool.QueryRow(t.Context(), `select exists (select from pg_indexes where tablename = 'scorer_drift' and indexdef like '%(dataset, measured_at)%')`).Scan(&indexed); err != nil || !indexed {
		t.Errorf("no index on scorer_drift (dataset, measured_at) (%v)", err)
	}
}

// While scorer_drift refuses the rows, scoring goes on and the recorder
// keeps the measurements; once it takes them, they are written.
func TestDriftWriteFailureDoesNotStopScoring(t *testing.T) {
	s := newScorerStack(t)
	s.persist(t, 1, 401)
	dir := t.TempDir()
	trainModel(t, dir)
	pool, err := migrated(t, config.ToMap(s.env)["DATABASE_URL"], 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// A table that refuses every PSI: a real failure of every write.
	if _, err := pool.Exec(t.Context(), `alter table scorer_drift add constraint refused check (psi < -1)`); err != nil {
		t.Fatal(err)
	}
	ms := &models{dataset: "users", dir: dir, name: "churn", log: zap.NewNop(), info: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x"}, []string{"dataset", "version"})}
	if err := ms.poll(); err != nil {
		t.Fatal(err)
	}
	d := usersDataset(t)
	dr := &drift{dataset: "users", window: 100, psi: newDriftGauge()}
	sc := &scoring{dataset: d, pool: pool, models: ms, risk: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "y"}), drift: dr}
	rec := &driftRecorder{pool: pool, log: zap.NewNop()}
	rec.add(dr)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { rec.run(ctx, 10*time.Millisecond) })
	defer func() { cancel(); wg.Wait() }()

	login := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	batch := func(from, to int) []stage.Message[persisted] {
		var cleans []users.Clean
		for id := from; id < to; id++ {
			cleans = append(cleans, users.Clean{
				ID: int64(id), EventID: fmt.Sprintf("ev-%d", id), Age: new(int32(30)), LastLogin: &login, QualityFlags: []string{},
			})
		}
		return persistedBatch(t, d, cleans...)
	}
	for i := range 4 { // four full windows, while the writes fail
		res, err := sc.handler(t.Context(), batch(1+100*i, 101+100*i))
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		if len(res.Outputs) != 100 {
			t.Fatalf("batch %d: %d scored records, want 100", i, len(res.Outputs))
		}
	}
	// The recorder tried (and failed) at least once after the last batch.
	for deadline := time.Now().Add(10 * time.Second); ; {
		rec.writing.Lock()
		n := len(rec.pending)
		rec.writing.Unlock()
		if n == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d measurements pending; want the 4 windows refused", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var predictions int
	if err := pool.QueryRow(t.Context(), `select count(*) from predictions`).Scan(&predictions); err != nil || predictions != 400 {
		t.Errorf("%d predictions (%v); want the 400 scored while drift was refused", predictions, err)
	}
	if _, err := pool.Exec(t.Context(), `alter table scorer_drift drop constraint refused`); err != nil {
		t.Fatal(err)
	}
	features := len(gaugeValues(t, dr.psi, ms.current.Load()))
	for deadline := time.Now().Add(10 * time.Second); ; {
		if n := len(driftRows(t, pool)); n == 4*features {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("%d rows in scorer_drift once it accepts them; want %d (4 windows of %d features)", n, 4*features, features)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gaugeLines reads the datamill_scorer_feature_psi series of the users
// from a running scorer's /metrics, by feature.
func gaugeLines(t testing.TB, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	prefix := `datamill_scorer_feature_psi{dataset="users",feature="`
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), prefix)
		if !ok {
			continue
		}
		feature, value, ok := strings.Cut(rest, `"} `)
		if !ok {
			t.Fatalf("metrics line %q", line)
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[feature] = v
	}
	return out
}

// The running scorer writes the drift it measured when it stops, even
// before its first SCORER_DRIFT_INTERVAL: the rows hold the PSI its gauge
// showed.
func TestTheScorerRecordsDriftWhenItStops(t *testing.T) {
	s := newScorerStack(t)
	dir := t.TempDir()
	m := trainModel(t, dir)
	s.persist(t, 1, 301)
	svc := testkit.Start(t, run, append(s.env, "SCORER_MODEL_DIR="+dir, "SCORER_MODEL_POLL=20ms", "SCORER_SELF_TRAIN=false",
		"SCORER_RECONCILE_INTERVAL=0", "SCORER_DRIFT_INTERVAL=1h"))
	for deadline := time.Now().Add(time.Minute); ; {
		var n int
		if err := s.db.QueryRow(t.Context(), `select count(*) from predictions`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 300 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d predictions within a minute; want 300", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	gauge := gaugeLines(t, svc.Addr)
	if len(gauge) == 0 {
		t.Fatal("no PSI exported after 300 records")
	}
	var written int
	if err := s.db.QueryRow(t.Context(), `select count(*) from scorer_drift`).Scan(&written); err != nil || written > 0 {
		t.Fatalf("scorer_drift holds %d rows (%v) before the first interval or the end", written, err)
	}
	if err := svc.Stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	pool, err := migrated(t, config.ToMap(s.env)["DATABASE_URL"], 1)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	rows := driftRows(t, pool)
	if len(rows) != len(gauge) {
		t.Fatalf("%d rows %v; want one per exported feature, %d", len(rows), rows, len(gauge))
	}
	for _, r := range rows {
		if r.psi != gauge[r.feature] || r.records != 300 || r.version != m.Version {
			t.Errorf("row %+v; want %s's PSI %v over 300 records of %s", r, r.feature, gauge[r.feature], m.Version)
		}
	}
}

// A write that waits on the database holds up no dataset's stage start,
// which adds its drift to the recorder.
func TestASlowDriftWriteHoldsUpNoStageStart(t *testing.T) {
	m := trainModel(t, t.TempDir())
	decl, _, _, _, err := declaration("", "users", trainSettings{})
	if err != nil {
		t.Fatal(err)
	}
	records, err := readCSV(usersCSV(t, 200), decl, nil)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := migrated(t, testkit.Postgres(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	rec := &driftRecorder{pool: pool, log: zap.NewNop()}
	d := &drift{dataset: "users", window: 1000, psi: newDriftGauge()}
	rec.add(d)
	d.observe(m, records)
	if _, err := rec.record(t.Context()); err != nil {
		t.Fatal(err)
	}
	d.observe(m, records)
	// Another session locks the table: the next write waits for it.
	tx, err := pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(t.Context())) }()
	if _, err := tx.Exec(t.Context(), `lock table scorer_drift in access exclusive mode`); err != nil {
		t.Fatal(err)
	}
	written := make(chan error, 1)
	go func() { _, err := rec.record(t.Context()); written <- err }()
	for deadline := time.Now().Add(10 * time.Second); ; {
		var waiting bool
		if err := pool.QueryRow(t.Context(), `select exists (select from pg_locks l join pg_class c on c.oid = l.relation
			where c.relname = 'scorer_drift' and not l.granted)`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the write never waited on the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	added := make(chan struct{})
	go func() { rec.add(&drift{dataset: "jobs", window: 1000, psi: newDriftGauge()}); close(added) }()
	select {
	case <-added:
	case err := <-written:
		t.Fatalf("the write ended (%v) while the table was locked", err)
	case <-time.After(10 * time.Second):
		t.Error("a dataset's drift was not added while a write waited")
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-written; err != nil {
		t.Errorf("the write once the lock was released: %v", err)
	}
	<-added
}
