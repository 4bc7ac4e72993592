package report

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// maxBars is the most bars a demand chart draws: a band is ten ranks, but
// ties keep it whole, and the bottom band of a long tail can tie hundreds
// of titles with one offer; the note says how many more there are.
const maxBars = 40

// salaryUnit is the salaries' unit: the rate table's reference currency
// (the clean jobs schema's salary_annual).
const salaryUnit = "EUR a year"

// Jobs is the section of the jobs dataset, read from its views (the jobs
// declaration, schemas/avro/jobs/dataset.yaml): the most, moderately and
// least demanded titles and families with their ties, the top countries
// and regions, salaries per family stated and estimated, offers per
// source per day, and the sources' attribution with links to offers.
func Jobs(ctx context.Context, db *pgx.Conn) (Section, error) {
	s := Section{ID: "jobs", Title: "Job offers"}
	var present bool
	if err := db.QueryRow(ctx, `select to_regclass('jobs_unique') is not null and to_regclass('jobs_per_source_day') is not null`).Scan(&present); err != nil {
		return s, fmt.Errorf("look for the jobs views: %w", err)
	}
	if !present {
		s.Notes = append(s.Notes, "No job offers: the jobs dataset has not run on this database (its table and views are missing). `datamill demo --dataset jobs` runs it.")
		return s, nil
	}
	s.Notes = append(s.Notes, "Demand counts each offer once across sources (duplicates posted on several boards are one cluster). A band is ten ranks and keeps its ties whole: a title tied with the tenth is in the top band too, so a band may hold more than ten.")
	for _, d := range []struct{ view, column, noun string }{
		{"jobs_title_demand", "title", "titles"},
		{"jobs_family_demand", "family", "job families"},
	} {
		if err := demandCharts(ctx, db, &s, d.view, d.column, d.noun); err != nil {
			return s, err
		}
	}
	if err := locationCharts(ctx, db, &s); err != nil {
		return s, err
	}
	if err := salaryChart(ctx, db, &s); err != nil {
		return s, err
	}
	if err := sourceDayChart(ctx, db, &s); err != nil {
		return s, err
	}
	if err := attribution(ctx, db, &s); err != nil {
		return s, err
	}
	return s, nil
}

// demandCharts adds an HBar chart per band (top, middle, bottom) of a
// demand view, ties whole.
func demandCharts(ctx context.Context, db *pgx.Conn, s *Section, view, column, noun string) error {
	rows, err := db.Query(ctx, fmt.Sprintf(`select %s, offers, rank, band from %s order by rank, %s`, column, view, column))
	if err != nil {
		return fmt.Errorf("read %s: %w", view, err)
	}
	type row struct {
		name         string
		offers, rank int64
		band         string
	}
	bands := map[string][]row{}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.name, &r.offers, &r.rank, &r.band); err != nil {
			rows.Close()
			return fmt.Errorf("read %s: %w", view, err)
		}
		bands[r.band] = append(bands[r.band], r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", view, err)
	}
	for _, b := range []struct{ band, title string }{
		{"top", "Most demanded %s (top 10 ranks)"},
		{"middle", "Moderately demanded %s (the 10 ranks around the median)"},
		{"bottom", "Least demanded %s (bottom 10 ranks)"},
	} {
		rs := bands[b.band]
		c := Chart{
			ID: fmt.Sprintf("%s-%s", view, b.band), Title: fmt.Sprintf(b.title, noun),
			XLabel: "offers", Unit: "offers", Kind: HBar,
		}
		pts := make([]Point, 0, min(len(rs), maxBars))
		for i, r := range rs {
			if i == maxBars {
				s.Notes = append(s.Notes, fmt.Sprintf("%s: %d %s; the chart shows the first %d (the rest have %d%s or fewer).",
					c.Title, len(rs), noun, maxBars, rs[maxBars-1].offers, offersWord(rs[maxBars-1].offers)))
				break
			}
			pts = append(pts, Point{Label: fmt.Sprintf("%s (#%d)", r.name, r.rank), Y: float64(r.offers)})
		}
		c.Series = []Series{{Name: "offers", Points: pts}}
		s.Charts = append(s.Charts, c)
	}
	return nil
}

// offersWord is " offer" or " offers", as n says.
func offersWord(n int64) string {
	if n == 1 {
		return " offer"
	}
	return " offers"
}

// locationCharts adds the top 5 countries and, apart, the top 5 regions.
func locationCharts(ctx context.Context, db *pgx.Conn, s *Section) error {
	rows, err := db.Query(ctx, `select code, kind, offers, rank from jobs_top_locations order by kind, rank, code`)
	if err != nil {
		return fmt.Errorf("read jobs_top_locations: %w", err)
	}
	pts := map[string][]Point{}
	for rows.Next() {
		var code, kind string
		var offers, rank int64
		if err := rows.Scan(&code, &kind, &offers, &rank); err != nil {
			rows.Close()
			return fmt.Errorf("read jobs_top_locations: %w", err)
		}
		pts[kind] = append(pts[kind], Point{Label: fmt.Sprintf("%s (#%d)", code, rank), Y: float64(offers)})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read jobs_top_locations: %w", err)
	}
	s.Charts = append(s.Charts,
		Chart{ID: "jobs-top-countries", Title: "Top 5 countries (ties kept)", XLabel: "offers", Unit: "offers", Kind: HBar, Series: []Series{{Name: "offers", Points: pts["country"]}}},
		Chart{ID: "jobs-top-regions", Title: "Top 5 regions: WW, EU, EMEA, LATAM, AMER, NA, APAC, AF (ties kept)", XLabel: "offers", Unit: "offers", Kind: HBar, Series: []Series{{Name: "offers", Points: pts["region"]}}},
	)
	return nil
}

// salaryChart adds the median annual salary per family, stated and
// estimated by the salary model, and a table of their quartiles.
func salaryChart(ctx context.Context, db *pgx.Conn, s *Section) error {
	rows, err := db.Query(ctx, `select family, basis, offers, p25, median, p75 from jobs_salary_by_family order by family, basis desc`)
	if MissingTable(err) {
		s.Notes = append(s.Notes, "No salaries per family: the view jobs_salary_by_family waits for the salary model's predictions (jobs_predictions), which the scorer creates when it starts.")
		return nil
	}
	if err != nil {
		return fmt.Errorf("read jobs_salary_by_family: %w", err)
	}
	byBasis := map[string][]Point{}
	t := Table{ID: "jobs-salary-quartiles", Title: "Annual salary per job family (" + salaryUnit + "): quartiles", Columns: []string{"family", "basis", "offers", "p25", "median", "p75"}}
	for rows.Next() {
		var family, basis string
		var offers int64
		var p25, median, p75 float64
		if err := rows.Scan(&family, &basis, &offers, &p25, &median, &p75); err != nil {
			rows.Close()
			return fmt.Errorf("read jobs_salary_by_family: %w", err)
		}
		byBasis[basis] = append(byBasis[basis], Point{Label: family, Y: median})
		t.Rows = append(t.Rows, []string{family, basis, strconv.FormatInt(offers, 10), readableNumber(p25), readableNumber(median), readableNumber(p75)})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read jobs_salary_by_family: %w", err)
	}
	s.Charts = append(s.Charts, Chart{
		ID: "jobs-salary-by-family", Title: "Median annual salary per job family: stated by the offers, and estimated by the salary model for those stating none",
		XLabel: "median salary (" + salaryUnit + ")", Unit: salaryUnit, Kind: HBar,
		Series: []Series{{Name: "stated", Points: byBasis["stated"]}, {Name: "estimated", Points: byBasis["estimated"]}},
	})
	s.Tables = append(s.Tables, t)
	return nil
}

// sourceDayChart adds the offers per source per day of publication.
func sourceDayChart(ctx context.Context, db *pgx.Conn, s *Section) error {
	rows, err := db.Query(ctx, `select source_name, day, offers from jobs_per_source_day where day is not null order by source_name, day`)
	if err != nil {
		return fmt.Errorf("read jobs_per_source_day: %w", err)
	}
	var series []Series
	for rows.Next() {
		var source string
		var day time.Time
		var offers int64
		if err := rows.Scan(&source, &day, &offers); err != nil {
			rows.Close()
			return fmt.Errorf("read jobs_per_source_day: %w", err)
		}
		if len(series) == 0 || series[len(series)-1].Name != source {
			series = append(series, Series{Name: source})
		}
		last := &series[len(series)-1]
		last.Points = append(last.Points, Point{Label: day.Format(time.DateOnly), X: float64(day.Unix() / 86400), Y: float64(offers)})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read jobs_per_source_day: %w", err)
	}
	s.Charts = append(s.Charts, Chart{ID: "jobs-per-source-day", Title: "Offers per source per day of publication", XLabel: "day published", YLabel: "offers", Unit: "offers", Kind: Line, Series: series})
	return nil
}

// offerLinks is how many offers' links the attribution table gives per
// source.
const offerLinks = 3

// attribution adds the sources' table: each source's name, its offers and
// links to a few of them, as the sources' terms ask.
func attribution(ctx context.Context, db *pgx.Conn, s *Section) error {
	rows, err := db.Query(ctx, `select source_name, offers, source_url from (
		select source_name, source_url, count(*) over (partition by source_name) as offers,
			row_number() over (partition by source_name order by published_on desc nulls last, id) as n
		from jobs_unique) s
		where n <= $1 order by source_name, n`, offerLinks)
	if err != nil {
		return fmt.Errorf("read the sources of jobs_unique: %w", err)
	}
	t := Table{ID: "jobs-sources", Title: "Sources of the offers, with links to their offers", Columns: []string{"source", "offers", "an offer at the source"}}
	for rows.Next() {
		var source string
		var offers int64
		var link *string
		if err := rows.Scan(&source, &offers, &link); err != nil {
			rows.Close()
			return fmt.Errorf("read the sources of jobs_unique: %w", err)
		}
		row := []string{source, strconv.FormatInt(offers, 10), ""}
		if link != nil {
			row[2] = *link
		}
		t.Rows = append(t.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the sources of jobs_unique: %w", err)
	}
	s.Notes = append(s.Notes, "The offers come from the sources listed in the last table, each with links to its own offers: their terms ask that each offer be credited to them and linked back.")
	s.Tables = append(s.Tables, t)
	return nil
}
