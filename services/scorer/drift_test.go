package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/pg"
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
	pool, err := pg.Open(t.Context(), pg.Config{URL: config.ToMap(s.env)["DATABASE_URL"], MaxConns: 2})
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
