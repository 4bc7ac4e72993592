package report

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datamill/datamill/schemas"
)

// usersDataset is the dataset the Users section reads: the seed's
// customers and their churn model.
const usersDataset = "users"

// usersKeyColumn is the column of the users' predictions table that
// refers to a user: the scorer names it user_id, since the predictions
// table has an id of its own (services/scorer, keyColumn).
const usersKeyColumn = "user_id"

// tenureBands are the bands of the churn rate by tenure: a user whose
// signup_date is less than Months months before the reference date is in
// the first band that holds it.
var tenureBands = []struct {
	Label  string
	Months int // 0: no upper bound
}{
	{"0–3 months", 3}, {"3–6 months", 6}, {"6–12 months", 12}, {"1–2 years", 24}, {"2+ years", 0},
}

// probabilityBins is how many bins the histogram of predicted
// probabilities has, over [0, 1].
const probabilityBins = 20

// Users is the section of the users dataset: the churn rate by country
// (the 15 countries with the most users) and by tenure band, the
// distribution of the latest predicted probability of each user, the ROC
// curve and calibration of those predictions against the users' status,
// the metrics of the current model from the scorer's registry and the
// latest drift of its features (scorer_drift). The
// label and its positive values are the dataset's declared model's. A
// missing table is a note, never an error.
func Users(ctx context.Context, db *pgx.Conn) (Section, error) {
	s := Section{ID: "users", Title: "Users: churn and its model"}
	ds, err := schemas.BuiltIn().Dataset(usersDataset)
	if err != nil {
		return s, err
	}
	if ds.Decl.Model == nil {
		return s, fmt.Errorf("dataset %s declares no model", usersDataset)
	}
	label := ds.Decl.Model.Label
	ok, err := tableExists(ctx, db, usersDataset)
	if err != nil {
		return s, err
	}
	if !ok {
		s.Notes = append(s.Notes, fmt.Sprintf("No %s table in this database: the %s dataset was not run (datamill demo --dataset %[2]s loads it).", usersDataset, usersDataset))
		return s, nil
	}
	s.Notes = append(s.Notes, fmt.Sprintf("Churned means %s is %s; the rates count the users whose %[1]s is known.", label.Column, strings.Join(label.Positive, " or ")))
	if err := churnByCountry(ctx, db, label, &s); err != nil {
		return s, err
	}
	if err := churnByTenure(ctx, db, label, &s); err != nil {
		return s, err
	}
	if err := predictionCharts(ctx, db, label, &s); err != nil {
		return s, err
	}
	if err := currentModel(ctx, db, &s); err != nil {
		return s, err
	}
	if err := featureDrift(ctx, db, &s); err != nil {
		return s, err
	}
	return s, nil
}

// featureDrift adds the latest drift (PSI) of each feature of the users'
// current model, the version the scorer measured last, from the scorer's
// scorer_drift table; without the table or its rows, a note saying where
// drift is and when the table gets it.
func featureDrift(ctx context.Context, db *pgx.Conn, s *Section) error {
	const missing = "The scorer records drift in scorer_drift every SCORER_DRIFT_INTERVAL (default 1m) once it has scored a window of " +
		"at least 100 users' records; meanwhile it exports it as the metric datamill_scorer_feature_psi{dataset, feature} on its /metrics " +
		"(charted by Grafana's pipeline dashboard)."
	ok, err := tableExists(ctx, db, "scorer_drift")
	if err != nil {
		return err
	}
	if !ok {
		s.Notes = append(s.Notes, "No scorer_drift table, so no feature drift. "+missing)
		return nil
	}
	rows, err := db.Query(ctx, `select distinct on (feature) model_version, feature, psi, records, measured_at from scorer_drift
		where dataset = $1 and model_version = (select model_version from scorer_drift where dataset = $1 order by measured_at desc, id desc limit 1)
		order by feature, measured_at desc, id desc`, usersDataset)
	if err != nil {
		return fmt.Errorf("read the feature drift of %s: %w", usersDataset, err)
	}
	type measured struct {
		feature string
		psi     float64
		records int64
		at      time.Time
	}
	var all []measured
	var version string
	var m measured
	if _, err := pgx.ForEachRow(rows, []any{&version, &m.feature, &m.psi, &m.records, &m.at}, func() error {
		all = append(all, m)
		return nil
	}); err != nil {
		return fmt.Errorf("read the feature drift of %s: %w", usersDataset, err)
	}
	if len(all) == 0 {
		s.Notes = append(s.Notes, "The scorer_drift table holds no drift of the users, so no feature drift. "+missing)
		return nil
	}
	slices.SortFunc(all, func(a, b measured) int { return cmp.Or(cmp.Compare(b.psi, a.psi), cmp.Compare(a.feature, b.feature)) })
	series := Series{Name: "PSI"}
	table := Table{
		ID: "users-drift-table", Title: "Feature drift of model " + version + " (latest measurement of each feature)",
		Columns: []string{"feature", "PSI", "shift", "records in the window", "measured at"},
	}
	for _, m := range all {
		series.Points = append(series.Points, Point{Label: m.feature, Y: m.psi})
		table.Rows = append(table.Rows, []string{m.feature, fixed(m.psi, 4), shift(m.psi), itoa(m.records), m.at.UTC().Format(time.RFC3339)})
	}
	s.Charts = append(s.Charts, Chart{
		ID: "users-drift", Title: "Feature drift (PSI) of the current model " + version + ": above 0.1 a moderate shift, above 0.25 a large one",
		XLabel: "feature", YLabel: "population stability index", Kind: HBar, Series: []Series{series},
	})
	s.Tables = append(s.Tables, table)
	s.Notes = append(s.Notes, "Feature drift is the population stability index between each feature's training split and the latest window "+
		"of records the scorer scored with model "+version+" (scorer_drift): below 0.1 no significant shift, 0.1 to 0.25 a moderate one, above 0.25 a large one.")
	return nil
}

// shift names the size of a PSI by the usual thresholds.
func shift(psi float64) string {
	switch {
	case psi > 0.25:
		return "large"
	case psi > 0.1:
		return "moderate"
	default:
		return "none significant"
	}
}

// churnByCountry adds the churn rate of the 15 countries with the most
// users.
func churnByCountry(ctx context.Context, db *pgx.Conn, label schemas.Label, s *Section) error {
	col := pgx.Identifier{label.Column}.Sanitize()
	rows, err := db.Query(ctx, fmt.Sprintf(`select country, count(*), count(%[1]s), count(*) filter (where %[1]s::text = any($1))
		from %[2]s where country is not null group by country order by count(*) desc, country limit 15`,
		col, pgx.Identifier{usersDataset}.Sanitize()), label.Positive)
	if err != nil {
		return fmt.Errorf("read the churn by country: %w", err)
	}
	chart := Chart{
		ID: "users-churn-country", Title: "Churn rate by country (15 countries with the most users)",
		XLabel: "country", YLabel: "churn rate (%)", Unit: "%", Kind: HBar,
	}
	series := Series{Name: "churn rate"}
	table := Table{ID: "users-churn-country-table", Title: "Churn by country", Columns: []string{"country", "users", "with a known status", "churned", "churn rate"}}
	var country string
	var users, known, churned int64
	_, err = pgx.ForEachRow(rows, []any{&country, &users, &known, &churned}, func() error {
		rate := share(churned, known)
		series.Points = append(series.Points, Point{Label: country, Y: rate * 100})
		table.Rows = append(table.Rows, []string{country, itoa(users), itoa(known), itoa(churned), percent(rate)})
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the churn by country: %w", err)
	}
	if len(series.Points) == 0 {
		s.Notes = append(s.Notes, "No user has a country: no churn rate by country.")
		return nil
	}
	chart.Series = []Series{series}
	s.Charts = append(s.Charts, chart)
	s.Tables = append(s.Tables, table)
	return nil
}

// churnByTenure adds the churn rate by tenure band. Tenure is measured
// from signup_date to the table's reference date, its newest signup_date
// or last_login, as the model measures its days_since features, so that
// the bands do not move with the day the report is read.
func churnByTenure(ctx context.Context, db *pgx.Conn, label schemas.Label, s *Section) error {
	col := pgx.Identifier{label.Column}.Sanitize()
	var reference *time.Time
	var signups int64
	if err := db.QueryRow(ctx, fmt.Sprintf(`select greatest(max(signup_date), max(last_login)), count(signup_date) from %s`,
		pgx.Identifier{usersDataset}.Sanitize())).Scan(&reference, &signups); err != nil {
		return fmt.Errorf("read the reference date of the users: %w", err)
	}
	if signups == 0 {
		s.Notes = append(s.Notes, "No user has a signup date: no churn rate by tenure.")
		return nil
	}
	band := "case"
	for i, b := range tenureBands {
		if b.Months > 0 {
			band += fmt.Sprintf(" when signup_date > $2::date - interval '%d months' then %d", b.Months, i)
		} else {
			band += fmt.Sprintf(" else %d", i)
		}
	}
	band += " end"
	rows, err := db.Query(ctx, fmt.Sprintf(`select %[1]s as band, count(*), count(%[2]s), count(*) filter (where %[2]s::text = any($1))
		from %[3]s where signup_date is not null group by band order by band`,
		band, col, pgx.Identifier{usersDataset}.Sanitize()), label.Positive, *reference)
	if err != nil {
		return fmt.Errorf("read the churn by tenure: %w", err)
	}
	chart := Chart{
		ID: "users-churn-tenure", Title: "Churn rate by tenure", XLabel: "tenure (since signup_date)",
		YLabel: "churn rate (%)", Unit: "%", Kind: Bar,
	}
	series := Series{Name: "churn rate"}
	table := Table{
		ID: "users-churn-tenure-table", Title: "Churn by tenure (tenure as of " + reference.Format(time.DateOnly) + ")",
		Columns: []string{"tenure", "users", "with a known status", "churned", "churn rate"},
	}
	var i int
	var users, known, churned int64
	_, err = pgx.ForEachRow(rows, []any{&i, &users, &known, &churned}, func() error {
		rate := share(churned, known)
		series.Points = append(series.Points, Point{Label: tenureBands[i].Label, X: float64(i), Y: rate * 100})
		table.Rows = append(table.Rows, []string{tenureBands[i].Label, itoa(users), itoa(known), itoa(churned), percent(rate)})
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the churn by tenure: %w", err)
	}
	chart.Series = []Series{series}
	s.Charts = append(s.Charts, chart)
	s.Tables = append(s.Tables, table)
	s.Notes = append(s.Notes, "Tenure is counted up to "+reference.Format(time.DateOnly)+
		", the newest signup_date or last_login in the table (the model's reference date), not today.")
	return nil
}

// scored is a user's latest prediction and, when known, whether the user
// churned.
type scored struct {
	p        float64
	labelled bool
	positive bool
}

// predictionCharts adds the histogram of the latest predicted probability
// of each user, and the ROC curve and calibration of those of the users
// whose status is known.
func predictionCharts(ctx context.Context, db *pgx.Conn, label schemas.Label, s *Section) error {
	table := schemas.PredictionsTable(usersDataset)
	ok, err := tableExists(ctx, db, table)
	if err != nil {
		return err
	}
	if !ok {
		s.Notes = append(s.Notes, fmt.Sprintf("No %s table: the scorer has not scored the users, so there is no distribution, ROC curve or calibration.", table))
		return nil
	}
	col := pgx.Identifier{label.Column}.Sanitize()
	rows, err := db.Query(ctx, fmt.Sprintf(`select distinct on (p.%[1]s) p.probability, u.%[2]s is not null, coalesce(u.%[2]s::text = any($1), false)
		from %[3]s p join %[4]s u on u.id = p.%[1]s
		order by p.%[1]s, p.created_at desc, p.id desc`,
		pgx.Identifier{usersKeyColumn}.Sanitize(), col, pgx.Identifier{table}.Sanitize(), pgx.Identifier{usersDataset}.Sanitize()), label.Positive)
	if err != nil {
		return fmt.Errorf("read the latest predictions of the users: %w", err)
	}
	var all []scored
	var r scored
	if _, err := pgx.ForEachRow(rows, []any{&r.p, &r.labelled, &r.positive}, func() error {
		all = append(all, r)
		return nil
	}); err != nil {
		return fmt.Errorf("read the latest predictions of the users: %w", err)
	}
	if len(all) == 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("The %s table is empty: no user is scored yet.", table))
		return nil
	}
	s.Charts = append(s.Charts, probabilityHistogram(all))
	var labelled []scored
	var positives int
	for _, r := range all {
		if r.labelled {
			labelled = append(labelled, r)
			if r.positive {
				positives++
			}
		}
	}
	if positives == 0 || positives == len(labelled) {
		s.Notes = append(s.Notes, fmt.Sprintf("The %d scored users with a known status are all of one class: no ROC curve or calibration.", len(labelled)))
		return nil
	}
	slices.SortFunc(labelled, func(a, b scored) int { return cmp.Compare(a.p, b.p) })
	s.Charts = append(s.Charts, rocCurve(labelled, positives), calibration(labelled))
	s.Tables = append(s.Tables, Table{
		ID: "users-predictions-fit", Title: "Latest predictions against the users' status",
		Columns: []string{"measure", "value"},
		Rows: [][]string{
			{"scored users", itoa(int64(len(all)))},
			{"scored users with a known status", itoa(int64(len(labelled)))},
			{"churned among them", itoa(int64(positives))},
			{"ROC-AUC", fixed(auc(labelled, positives), 4)},
			{"Brier score", fixed(brier(labelled), 4)},
		},
	})
	s.Notes = append(s.Notes, "The ROC curve and calibration compare each user's latest prediction with the status the table holds now, "+
		"training rows included: they describe the predictions in use, not a held-out test (the model's held-out metrics are in its table).")
	s.Tables = append(s.Tables, calibrationTable(labelled))
	return nil
}

// probabilityHistogram counts the probabilities in 20 bins of [0, 1]; a
// point's X is its bin's lower edge, as the page draws histograms.
func probabilityHistogram(all []scored) Chart {
	counts := make([]int, probabilityBins)
	for _, r := range all {
		counts[min(int(r.p*probabilityBins), probabilityBins-1)]++
	}
	series := Series{Name: "users"}
	for i, n := range counts {
		lo, hi := float64(i)/probabilityBins, float64(i+1)/probabilityBins
		series.Points = append(series.Points, Point{Label: fixed(lo, 2) + "–" + fixed(hi, 2), X: lo, Y: float64(n)})
	}
	return Chart{
		ID: "users-probability", Title: "Predicted churn probability (latest prediction of each user)",
		XLabel: "predicted probability of churn", YLabel: "users", Unit: "users", Kind: Histogram, Series: []Series{series},
	}
}

// rocCurve is the ROC curve of sorted (by probability) at the thresholds
// 1.00, 0.99, …, 0.00 (a probability at or above the threshold predicts
// churn), from (0, 0) to (1, 1); a threshold whose point is the one
// before it is left out, so the first threshold of each point names it.
// The diagonal beside it is a model that guesses.
func rocCurve(sorted []scored, positives int) Chart {
	negatives := len(sorted) - positives
	model := Series{Name: "model"}
	add := func(label string, tp, fp int) {
		x, y := float64(fp)/float64(negatives), float64(tp)/float64(positives)
		if n := len(model.Points); n > 0 && model.Points[n-1].X == x && model.Points[n-1].Y == y {
			return
		}
		model.Points = append(model.Points, Point{Label: label, X: x, Y: y})
	}
	add("no user predicted to churn", 0, 0)
	i, tp, fp := len(sorted), 0, 0
	for t := 100; t >= 0; t-- {
		threshold := float64(t) / 100
		for i > 0 && sorted[i-1].p >= threshold {
			i--
			if sorted[i].positive {
				tp++
			} else {
				fp++
			}
		}
		add("threshold "+fixed(threshold, 2), tp, fp)
	}
	chance := Series{Name: "chance", Points: []Point{{Label: "chance", X: 0, Y: 0}, {Label: "chance", X: 1, Y: 1}}}
	return Chart{
		ID: "users-roc", Title: "ROC curve of the latest predictions", XLabel: "false positive rate", YLabel: "true positive rate",
		Kind: Line, Series: []Series{model, chance},
	}
}

// deciles splits sorted (by probability) into ten groups of as equal
// sizes as can be, the first ones one larger, as SQL's ntile does.
func deciles(sorted []scored) [][]scored {
	var out [][]scored
	n, start := len(sorted), 0
	for d := range 10 {
		size := n / 10
		if d < n%10 {
			size++
		}
		if size > 0 {
			out = append(out, sorted[start:start+size])
		}
		start += size
	}
	return out
}

// calibration is the observed churn rate against the mean predicted
// probability of each decile of the predictions.
func calibration(sorted []scored) Chart {
	series := Series{Name: "deciles"}
	for i, d := range deciles(sorted) {
		mean, observed := meanObserved(d)
		series.Points = append(series.Points, Point{Label: fmt.Sprintf("decile %d", i+1), X: mean, Y: observed})
	}
	return Chart{
		ID: "users-calibration", Title: "Calibration: observed churn by decile of predicted probability",
		XLabel: "mean predicted probability", YLabel: "observed churn rate", Kind: Scatter, Series: []Series{series},
	}
}

// calibrationTable is calibration's data, with each decile's size and
// range.
func calibrationTable(sorted []scored) Table {
	t := Table{
		ID: "users-calibration-table", Title: "Calibration by decile",
		Columns: []string{"decile", "users", "probabilities", "mean predicted", "observed churn rate"},
	}
	for i, d := range deciles(sorted) {
		mean, observed := meanObserved(d)
		t.Rows = append(t.Rows, []string{
			strconv.Itoa(i + 1), itoa(int64(len(d))),
			fixed(d[0].p, 3) + "–" + fixed(d[len(d)-1].p, 3), fixed(mean, 3), fixed(observed, 3),
		})
	}
	return t
}

// meanObserved is the mean probability of group and the share of it that
// churned.
func meanObserved(group []scored) (mean, observed float64) {
	for _, r := range group {
		mean += r.p
		if r.positive {
			observed++
		}
	}
	return mean / float64(len(group)), observed / float64(len(group))
}

// auc is the area under the ROC curve of sorted (by probability): the
// chance that a churned user has a higher probability than one who did
// not, ties counting half (the Mann–Whitney statistic, by ranks).
func auc(sorted []scored, positives int) float64 {
	var rankSum float64
	for i := 0; i < len(sorted); {
		j := i
		for j < len(sorted) && sorted[j].p == sorted[i].p {
			j++
		}
		rank := float64(i+j+1) / 2 // mean of the ranks i+1 … j
		for _, r := range sorted[i:j] {
			if r.positive {
				rankSum += rank
			}
		}
		i = j
	}
	p, n := float64(positives), float64(len(sorted)-positives)
	return (rankSum - p*(p+1)/2) / (p * n)
}

// brier is the mean squared difference between probability and outcome.
func brier(rs []scored) float64 {
	var sum float64
	for _, r := range rs {
		y := 0.0
		if r.positive {
			y = 1
		}
		sum += (r.p - y) * (r.p - y)
	}
	return sum / float64(len(rs))
}

// metricOrder is the order of the known held-out metrics in the model's
// table; others follow, sorted.
var metricOrder = []string{"rows", "threshold", "accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "brier", "rmse", "mae", "r2"}

// currentModel adds the held-out metrics of the users' current model: the
// newest one the scorer's registry (scorer_models) promoted.
func currentModel(ctx context.Context, db *pgx.Conn, s *Section) error {
	ok, err := tableExists(ctx, db, "scorer_models")
	if err != nil {
		return err
	}
	if !ok {
		s.Notes = append(s.Notes, "No scorer_models table: the scorer has not trained a model in this database, so there are no model metrics.")
		return nil
	}
	var name, version, kind, reason string
	var trained time.Time
	var rows int64
	var metrics []byte
	err = db.QueryRow(ctx, `select name, version, kind, trained_at, rows, test_metrics::text, reason from scorer_models
		where dataset = $1 and promoted order by trained_at desc, id desc limit 1`, usersDataset).
		Scan(&name, &version, &kind, &trained, &rows, &metrics, &reason)
	if errors.Is(err, pgx.ErrNoRows) {
		s.Notes = append(s.Notes, "The scorer's registry holds no promoted model of the users: no model metrics.")
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the current model of %s: %w", usersDataset, err)
	}
	var m map[string]any
	if err := json.Unmarshal(metrics, &m); err != nil {
		return fmt.Errorf("read the metrics of model %s %s: %w", name, version, err)
	}
	flat := map[string]string{}
	flatten("", m, flat)
	keys := make([]string, 0, len(flat))
	for k := range flat {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		ia, ib := slices.Index(metricOrder, a), slices.Index(metricOrder, b)
		if ia < 0 {
			ia = len(metricOrder)
		}
		if ib < 0 {
			ib = len(metricOrder)
		}
		return cmp.Or(cmp.Compare(ia, ib), cmp.Compare(a, b))
	})
	t := Table{
		ID: "users-model", Title: fmt.Sprintf("Current model: %s %s (%s)", name, version, kind), Columns: []string{"metric", "value"},
		Rows: [][]string{{"trained at", trained.UTC().Format(time.RFC3339)}, {"training rows", itoa(rows)}, {"promoted because", reason}},
	}
	for _, k := range keys {
		t.Rows = append(t.Rows, []string{"held-out " + k, flat[k]})
	}
	s.Tables = append(s.Tables, t)
	return nil
}

// flatten writes the leaves of a decoded JSON object into out, nested
// keys joined by dots.
func flatten(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if prefix != "" {
				k = prefix + "." + k
			}
			flatten(k, e, out)
		}
	case float64:
		out[prefix] = strconv.FormatFloat(x, 'g', 6, 64)
	default:
		out[prefix] = fmt.Sprint(x)
	}
}

// tableExists says whether the current search path has a table or view
// called name.
func tableExists(ctx context.Context, db *pgx.Conn, name string) (bool, error) {
	var ok bool
	if err := db.QueryRow(ctx, `select to_regclass($1) is not null`, pgx.Identifier{name}.Sanitize()).Scan(&ok); err != nil {
		return false, fmt.Errorf("look up table %s: %w", name, err)
	}
	return ok, nil
}

// share is n/of, 0 when of is 0.
func share(n, of int64) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// percent writes a share as a percentage with one decimal.
func percent(share float64) string { return strconv.FormatFloat(share*100, 'f', 1, 64) + " %" }

// fixed writes v with d decimals.
func fixed(v float64, d int) string {
	if math.IsNaN(v) {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', d, 64)
}
