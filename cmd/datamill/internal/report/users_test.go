package report

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datamill/datamill/pkg/testkit"
)

// usersDDL is the users table as the loader creates it and the
// predictions table as the scorer does.
const usersDDL = `
create table users (
    id               bigint primary key,
    age              integer,
    gender           text,
    country          text,
    city             text,
    email            text,
    signup_date      date,
    last_login       date,
    account_status   text,
    monthly_spend    numeric(12, 2),
    quality_flags    text[] not null default '{}',
    event_id         text not null,
    source           text,
    ingested_at      timestamptz not null,
    content_hash     text not null
);
create table predictions (
    id            bigint generated always as identity primary key,
    user_id       bigint not null references users (id),
    prediction    integer not null check (prediction in (0, 1)),
    probability   double precision not null check (probability between 0 and 1),
    model_version text not null,
    event_id      text not null unique,
    created_at    timestamptz not null default now()
)`

// registryDDL is the scorer's model registry (services/scorer).
const registryDDL = `
create table scorer_models (
    id               bigint generated always as identity primary key,
    dataset          text not null,
    name             text not null,
    version          text not null,
    kind             text not null,
    trained_at       timestamptz not null,
    rows             integer not null,
    data_fingerprint text not null,
    test_metrics     jsonb not null,
    baseline_version text,
    baseline_metrics jsonb,
    promoted         boolean not null,
    reason           text not null,
    artefact         text,
    unique (name, version)
)`

// driftDDL is the scorer's drift table (services/scorer).
const driftDDL = `
create table scorer_drift (
    id            bigint generated always as identity primary key,
    dataset       text not null,
    model_version text not null,
    feature       text not null,
    psi           double precision not null,
    records       integer not null,
    measured_at   timestamptz not null
)`

// connect opens a connection to a new, empty database, closed in
// t.Cleanup, and runs ddl in it.
func connect(t testing.TB, ddl ...string) *pgx.Conn {
	t.Helper()
	db, err := pgx.Connect(t.Context(), testkit.Postgres(t))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { db.Close(t.Context()) })
	for _, d := range ddl {
		if _, err := db.Exec(t.Context(), d); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
	}
	return db
}

// user is a generated user as the test knows it.
type user struct {
	id      int64
	country *string
	signup  *time.Time
	login   time.Time
	status  *string
	latest  float64 // the latest predicted probability; -1: none
}

// reference is the newest last_login of the generated users.
var reference = time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC)

// seedUsers writes n realistic users and their predictions: countries
// skewed (18 of them, so that the top 15 leaves some out), a few without
// a country, signup date or status, churn likelier for short tenures, and
// one or two predictions each, the later one the latest, correlated with
// churn. Users without a prediction exist too.
func seedUsers(t testing.TB, db *pgx.Conn, n int) []user {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 11))
	countries := []string{"FR", "DE", "US", "GB", "ES", "IT", "NL", "BE", "PL", "SE", "PT", "IE", "AT", "CH", "DK", "NO", "FI", "CZ"}
	statuses := []string{"active", "inactive", "suspended"}
	var users []user
	batch := &pgx.Batch{}
	for i := range n {
		u := user{id: int64(i + 1), latest: -1}
		if rng.IntN(30) > 0 {
			// Skewed: country k is about twice as likely as k+3.
			c := countries[min(int(rng.ExpFloat64()*4), len(countries)-1)]
			u.country = &c
		}
		days := rng.IntN(1200)
		if i == 0 {
			days = 400
		}
		if rng.IntN(40) > 0 || i < 3 {
			sd := reference.AddDate(0, 0, -days)
			if i > 0 && i < 3 {
				// On a band's edge: 3 and 12 months exactly.
				sd = reference.AddDate(0, []int{0, -3, -12}[i], 0)
				days = int(reference.Sub(sd).Hours() / 24)
			}
			u.signup = &sd
		}
		u.login = reference.AddDate(0, 0, -rng.IntN(max(days, 1)))
		if i == 0 {
			u.login = reference
		}
		churnP := 0.15 + 0.4*math.Exp(-float64(days)/200)
		churned := rng.Float64() < churnP
		if rng.IntN(20) > 0 {
			s := statuses[rng.IntN(len(statuses))]
			if churned {
				s = "churned"
			}
			u.status = &s
		}
		batch.Queue(`insert into users (id, age, gender, country, city, email, signup_date, last_login, account_status, monthly_spend,
			event_id, source, ingested_at, content_hash) values ($1, $2, $3, $4, 'Lyon', $5, $6, $7, $8, $9, $10, 'http', now(), 'h')`,
			u.id, 18+rng.IntN(60), []string{"female", "male", "other"}[rng.IntN(3)], u.country, fmt.Sprintf("u%d@example.com", u.id),
			u.signup, u.login, u.status, fmt.Sprintf("%.2f", rng.Float64()*200), fmt.Sprintf("e%d", u.id))
		if rng.IntN(10) > 0 {
			// An older prediction that the latest one replaces.
			old := rng.Float64()
			batch.Queue(`insert into predictions (user_id, prediction, probability, model_version, event_id, created_at)
				values ($1, $2, $3, 'v1', $4, $5)`, u.id, boolInt(old >= 0.5), old, fmt.Sprintf("p%d-old", u.id), reference.AddDate(0, 0, -10))
			p := math.Min(math.Max(0.6*churnP+0.4*rng.Float64()+map[bool]float64{true: 0.1, false: -0.05}[churned], 0), 1)
			u.latest = p
			batch.Queue(`insert into predictions (user_id, prediction, probability, model_version, event_id, created_at)
				values ($1, $2, $3, 'v2', $4, $5)`, u.id, boolInt(p >= 0.5), p, fmt.Sprintf("p%d", u.id), reference)
		}
		users = append(users, u)
	}
	if err := db.SendBatch(t.Context(), batch).Close(); err != nil {
		t.Fatalf("seed users: %v", err)
	}
	return users
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func chartOf(t testing.TB, s Section, id string) Chart {
	t.Helper()
	for _, c := range s.Charts {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("section %s has no chart %s; it has %v", s.ID, id, chartIDs(s))
	return Chart{}
}

func chartIDs(s Section) []string {
	var ids []string
	for _, c := range s.Charts {
		ids = append(ids, c.ID)
	}
	return ids
}

func tableOf(t testing.TB, s Section, id string) Table {
	t.Helper()
	for _, tb := range s.Tables {
		if tb.ID == id {
			return tb
		}
	}
	t.Fatalf("section %s has no table %s", s.ID, id)
	return Table{}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestUsersChurnByCountryAndTenure(t *testing.T) {
	db := connect(t, usersDDL)
	users := seedUsers(t, db, 600)
	s, err := Users(t.Context(), db)
	if err != nil {
		t.Fatalf("Users: %v", err)
	}

	// By country: the 15 with the most users, most first, each rate the
	// churned share of the users whose status is known.
	type tally struct{ users, known, churned int }
	byCountry := map[string]*tally{}
	for _, u := range users {
		if u.country == nil {
			continue
		}
		c := byCountry[*u.country]
		if c == nil {
			c = &tally{}
			byCountry[*u.country] = c
		}
		c.users++
		if u.status != nil {
			c.known++
			if *u.status == "churned" {
				c.churned++
			}
		}
	}
	var names []string
	for c := range byCountry {
		names = append(names, c)
	}
	if len(names) <= 15 {
		t.Fatalf("the seed has %d countries; the test needs more than 15", len(names))
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Or(cmp.Compare(byCountry[b].users, byCountry[a].users), cmp.Compare(a, b))
	})
	country := chartOf(t, s, "users-churn-country")
	if country.Kind != HBar || len(country.Series) != 1 || len(country.Series[0].Points) != 15 {
		t.Fatalf("churn by country: kind %s, series %+v; want 15 bars", country.Kind, country.Series)
	}
	for i, p := range country.Series[0].Points {
		c := byCountry[names[i]]
		want := 100 * float64(c.churned) / float64(c.known)
		if p.Label != names[i] || !near(p.Y, want) {
			t.Errorf("bar %d: %s %.4f; want %s %.4f (%d churned of %d known)", i, p.Label, p.Y, names[i], want, c.churned, c.known)
		}
	}

	// By tenure: the bands of signup_date before the newest date.
	bands := make([]tally, len(tenureBands))
	for _, u := range users {
		if u.signup == nil {
			continue
		}
		b := len(tenureBands) - 1
		for i, tb := range tenureBands {
			if tb.Months > 0 && u.signup.After(reference.AddDate(0, -tb.Months, 0)) {
				b = i
				break
			}
		}
		bands[b].users++
		if u.status != nil {
			bands[b].known++
			if *u.status == "churned" {
				bands[b].churned++
			}
		}
	}
	tenure := chartOf(t, s, "users-churn-tenure")
	if len(tenure.Series) != 1 || len(tenure.Series[0].Points) != len(tenureBands) {
		t.Fatalf("churn by tenure: %+v; want %d bars", tenure.Series, len(tenureBands))
	}
	for i, p := range tenure.Series[0].Points {
		want := 100 * float64(bands[i].churned) / float64(bands[i].known)
		if p.Label != tenureBands[i].Label || !near(p.Y, want) {
			t.Errorf("tenure bar %d: %s %.4f; want %s %.4f", i, p.Label, p.Y, tenureBands[i].Label, want)
		}
	}
	if got := tableOf(t, s, "users-churn-tenure-table").Title; !strings.Contains(got, "2026-06-15") {
		t.Errorf("tenure table %q does not name the reference date 2026-06-15", got)
	}
}

func TestUsersPredictions(t *testing.T) {
	db := connect(t, usersDDL)
	users := seedUsers(t, db, 600)
	s, err := Users(t.Context(), db)
	if err != nil {
		t.Fatalf("Users: %v", err)
	}

	// The histogram counts each user's latest probability once.
	hist := chartOf(t, s, "users-probability")
	counts := make([]float64, 20)
	var scoredUsers, labelled []user
	for _, u := range users {
		if u.latest < 0 {
			continue
		}
		scoredUsers = append(scoredUsers, u)
		counts[min(int(u.latest*20), 19)]++
		if u.status != nil {
			labelled = append(labelled, u)
		}
	}
	if hist.Kind != Histogram || len(hist.Series[0].Points) != 20 {
		t.Fatalf("histogram: %s with %d bins; want 20", hist.Kind, len(hist.Series[0].Points))
	}
	var total float64
	for i, p := range hist.Series[0].Points {
		total += p.Y
		if p.Y != counts[i] {
			t.Errorf("bin %d (%s): %v users; want %v", i, p.Label, p.Y, counts[i])
		}
	}
	if total != float64(len(scoredUsers)) {
		t.Errorf("histogram holds %v users; %d are scored", total, len(scoredUsers))
	}

	// ROC: from (0, 0) to (1, 1), never decreasing, and at threshold 0.5
	// the rates counted pair by pair.
	roc := chartOf(t, s, "users-roc")
	pts := roc.Series[0].Points
	if first, last := pts[0], pts[len(pts)-1]; first.X != 0 || first.Y != 0 || last.X != 1 || last.Y != 1 {
		t.Errorf("ROC runs from (%v, %v) to (%v, %v); want (0, 0) to (1, 1)", first.X, first.Y, last.X, last.Y)
	}
	for i := 1; i < len(pts); i++ {
		if pts[i].X < pts[i-1].X || pts[i].Y < pts[i-1].Y {
			t.Errorf("ROC goes back at point %d: %+v after %+v", i, pts[i], pts[i-1])
		}
	}
	var pos, neg, tp, fp int
	var pairs, wins float64
	for _, u := range labelled {
		churned := *u.status == "churned"
		if churned {
			pos++
		} else {
			neg++
		}
		if u.latest >= 0.5 && churned {
			tp++
		} else if u.latest >= 0.5 {
			fp++
		}
		if !churned {
			continue
		}
		for _, v := range labelled {
			if *v.status == "churned" {
				continue
			}
			pairs++
			switch {
			case u.latest > v.latest:
				wins++
			case u.latest == v.latest:
				wins += 0.5
			}
		}
	}
	i := slices.IndexFunc(pts, func(p Point) bool { return p.Label == "threshold 0.50" })
	if i < 0 {
		t.Errorf("ROC has no point at threshold 0.50: %+v", pts)
	} else if !near(pts[i].X, float64(fp)/float64(neg)) || !near(pts[i].Y, float64(tp)/float64(pos)) {
		t.Errorf("ROC at 0.50: (%v, %v); want (%v, %v)", pts[i].X, pts[i].Y, float64(fp)/float64(neg), float64(tp)/float64(pos))
	}
	fit := tableOf(t, s, "users-predictions-fit")
	wantAUC := fixed(wins/pairs, 4)
	if got := fit.Rows[3]; got[0] != "ROC-AUC" || got[1] != wantAUC {
		t.Errorf("fit row %v; want ROC-AUC %s", got, wantAUC)
	}
	if got := fit.Rows[1][1]; got != fmt.Sprint(len(labelled)) {
		t.Errorf("scored users with a known status: %s; want %d", got, len(labelled))
	}

	// Calibration: ten deciles, each's observed rate as SQL's ntile
	// splits the same latest predictions.
	rows, err := db.Query(t.Context(), `with latest as (
			select distinct on (user_id) user_id, probability from predictions order by user_id, created_at desc, id desc
		), d as (
			select ntile(10) over (order by l.probability) as decile, l.probability, u.account_status = 'churned' as churned
			from latest l join users u on u.id = l.user_id where u.account_status is not null
		) select avg(probability), avg(churned::int)::float8 from d group by decile order by decile`)
	if err != nil {
		t.Fatal(err)
	}
	var want []Point
	var mean, observed float64
	if _, err := pgx.ForEachRow(rows, []any{&mean, &observed}, func() error {
		want = append(want, Point{Label: fmt.Sprintf("decile %d", len(want)+1), X: mean, Y: observed})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	cal := chartOf(t, s, "users-calibration")
	if got := cal.Series[0].Points; len(got) != 10 {
		t.Fatalf("calibration has %d points; want 10", len(got))
	}
	for i, p := range cal.Series[0].Points {
		if p.Label != want[i].Label || math.Abs(p.X-want[i].X) > 1e-9 || math.Abs(p.Y-want[i].Y) > 1e-9 {
			t.Errorf("calibration point %d: %+v; want %+v", i, p, want[i])
		}
	}
}

func TestUsersCurrentModel(t *testing.T) {
	db := connect(t, usersDDL, registryDDL)
	seedUsers(t, db, 50)
	insert := `insert into scorer_models (dataset, name, version, kind, trained_at, rows, data_fingerprint, test_metrics, promoted, reason)
		values ($1, $2, $3, 'logistic', $4, $5, 'f', $6::jsonb, $7, 'r')`
	for _, m := range []struct {
		dataset, version string
		at               time.Time
		metrics          string
		promoted         bool
	}{
		{"users", "20260601", reference.AddDate(0, 0, -14), `{"rows": 80, "roc_auc": 0.71, "confusion": {"tp": 5}}`, true},
		{"users", "20260610", reference.AddDate(0, 0, -5), `{"rows": 90, "roc_auc": 0.78, "accuracy": 0.8, "confusion": {"tp": 9}}`, true},
		{"users", "20260614", reference.AddDate(0, 0, -1), `{"rows": 95, "roc_auc": 0.69}`, false}, // not promoted
		{"jobs", "20260615", reference, `{"rows": 40, "rmse": 9000}`, true},                        // another dataset
	} {
		if _, err := db.Exec(t.Context(), insert, m.dataset, m.dataset, m.version, m.at, 400, m.metrics, m.promoted); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Users(t.Context(), db)
	if err != nil {
		t.Fatalf("Users: %v", err)
	}
	tb := tableOf(t, s, "users-model")
	if !strings.Contains(tb.Title, "20260610") {
		t.Errorf("model table %q; want the newest promoted users model, 20260610", tb.Title)
	}
	got := map[string]string{}
	var order []string
	for _, r := range tb.Rows {
		got[r[0]] = r[1]
		order = append(order, r[0])
	}
	for k, v := range map[string]string{"held-out roc_auc": "0.78", "held-out accuracy": "0.8", "held-out confusion.tp": "9", "training rows": "400"} {
		if got[k] != v {
			t.Errorf("model table %s = %q; want %q (rows %v)", k, got[k], v, tb.Rows)
		}
	}
	if i, j := slices.Index(order, "held-out accuracy"), slices.Index(order, "held-out roc_auc"); i > j {
		t.Errorf("model table order %v: accuracy should come before roc_auc", order)
	}
}

func TestUsersMissingTables(t *testing.T) {
	tests := map[string]struct {
		ddl       []string
		update    string
		wantNotes []string
		charts    int
	}{
		"no users table": {wantNotes: []string{"No users table"}},
		"users, no predictions nor registry": {
			ddl:       []string{strings.Split(usersDDL, "create table predictions")[0]},
			wantNotes: []string{"No predictions table", "No scorer_models table", "No scorer_drift table", "SCORER_DRIFT_INTERVAL", "datamill_scorer_feature_psi"},
			charts:    2,
		},
		"users without signup dates": {
			ddl:       []string{strings.Split(usersDDL, "create table predictions")[0]},
			update:    "update users set signup_date = null",
			wantNotes: []string{"No user has a signup date"},
			charts:    1,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			db := connect(t, tc.ddl...)
			if len(tc.ddl) > 0 {
				if _, err := db.Exec(t.Context(), `insert into users (id, country, signup_date, last_login, account_status, event_id, ingested_at, content_hash)
					values (1, 'FR', '2025-01-01', '2026-01-01', 'churned', 'e1', now(), 'h'), (2, 'FR', '2025-12-01', '2026-01-02', 'active', 'e2', now(), 'h')`); err != nil {
					t.Fatal(err)
				}
			}
			if tc.update != "" {
				if _, err := db.Exec(t.Context(), tc.update); err != nil {
					t.Fatal(err)
				}
			}
			s, err := Users(t.Context(), db)
			if err != nil {
				t.Fatalf("Users: %v", err)
			}
			notes := strings.Join(s.Notes, "\n")
			for _, w := range tc.wantNotes {
				if !strings.Contains(notes, w) {
					t.Errorf("notes lack %q:\n%s", w, notes)
				}
			}
			if len(s.Charts) != tc.charts {
				t.Errorf("%d charts %v; want %d", len(s.Charts), chartIDs(s), tc.charts)
			}
		})
	}
}

// The drift chart holds the latest measurement of each feature of the
// version measured last, largest first; older versions and other datasets
// are left out. An empty table is a note.
func TestUsersFeatureDrift(t *testing.T) {
	db := connect(t, usersDDL, driftDDL)
	seedUsers(t, db, 50)
	s, err := Users(t.Context(), db)
	if err != nil {
		t.Fatalf("Users: %v", err)
	}
	if notes := strings.Join(s.Notes, "\n"); !strings.Contains(notes, "holds no drift of the users") || !strings.Contains(notes, "SCORER_DRIFT_INTERVAL") {
		t.Errorf("an empty scorer_drift: notes lack why there is no drift and when there will be:\n%s", notes)
	}
	if slices.Contains(chartIDs(s), "users-drift") {
		t.Errorf("an empty scorer_drift: a drift chart")
	}

	at := reference.Add(12 * time.Hour)
	for _, r := range []struct {
		dataset, version, feature string
		psi                       float64
		ago                       time.Duration
	}{
		{"users", "20260601", "monthly_spend", 0.9, 3 * time.Hour}, // the former model
		{"users", "20260610", "age", 0.05, 2 * time.Hour},
		{"users", "20260610", "age", 0.31, time.Hour}, // age's latest
		{"users", "20260610", "gender", 0.12, 90 * time.Minute},
		{"users", "20260610", "days_since_login", 0.01, 30 * time.Minute},
		{"jobs", "20260615", "title", 0.7, 0}, // another dataset, measured last
	} {
		if _, err := db.Exec(t.Context(), `insert into scorer_drift (dataset, model_version, feature, psi, records, measured_at) values ($1, $2, $3, $4, 500, $5)`,
			r.dataset, r.version, r.feature, r.psi, at.Add(-r.ago)); err != nil {
			t.Fatal(err)
		}
	}
	s, err = Users(t.Context(), db)
	if err != nil {
		t.Fatalf("Users: %v", err)
	}
	c := chartOf(t, s, "users-drift")
	if c.Kind != HBar {
		t.Errorf("drift chart kind %s; want %s", c.Kind, HBar)
	}
	for _, w := range []string{"Feature drift (PSI) of the current model", "20260610", "0.1", "0.25"} {
		if !strings.Contains(c.Title, w) {
			t.Errorf("drift chart title %q lacks %q", c.Title, w)
		}
	}
	want := []Point{{Label: "age", Y: 0.31}, {Label: "gender", Y: 0.12}, {Label: "days_since_login", Y: 0.01}}
	if len(c.Series) != 1 || !slices.Equal(c.Series[0].Points, want) {
		t.Errorf("drift chart series %+v; want one series %+v", c.Series, want)
	}
	tb := tableOf(t, s, "users-drift-table")
	wantRows := [][]string{
		{"age", "0.3100", "large", "500", at.Add(-time.Hour).Format(time.RFC3339)},
		{"gender", "0.1200", "moderate", "500", at.Add(-90 * time.Minute).Format(time.RFC3339)},
		{"days_since_login", "0.0100", "none significant", "500", at.Add(-30 * time.Minute).Format(time.RFC3339)},
	}
	if !slices.EqualFunc(tb.Rows, wantRows, slices.Equal) {
		t.Errorf("drift table rows %v; want %v", tb.Rows, wantRows)
	}
	if notes := strings.Join(s.Notes, "\n"); strings.Contains(notes, "holds no drift") || strings.Contains(notes, "No scorer_drift table") {
		t.Errorf("with drift rows, a note says there are none:\n%s", notes)
	}
}
