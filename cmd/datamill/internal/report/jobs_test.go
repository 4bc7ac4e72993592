package report

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
)

// jobsDB is a fresh database with the jobs table (the columns its views
// read, typed as the loader types them), the predictions table and, when
// views is set, the jobs declaration's views.
func jobsDB(t testing.TB, views bool) *pgx.Conn {
	t.Helper()
	db, err := pgx.Connect(t.Context(), testkit.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(t.Context()) })
	if !views {
		return db
	}
	ddl := `create table jobs (id text primary key, source_name text, source_url text, title_norm text, job_family text,
		locations text[] not null default '{}', salary_annual double precision, salary_stated boolean not null default false,
		published_on date, cluster_id text);
		create table jobs_predictions (job_id text references jobs, estimate double precision, created_at timestamptz not null default now())`
	if _, err := db.Exec(t.Context(), ddl); err != nil {
		t.Fatal(err)
	}
	ds, err := schemas.BuiltIn().Dataset("jobs")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range ds.Decl.Views {
		if _, err := db.Exec(t.Context(), fmt.Sprintf("create view %s as %s", v.Name, v.SQL)); err != nil {
			t.Fatalf("view %s: %v", v.Name, err)
		}
	}
	return db
}

// jobOffer is a row of the jobs table.
type jobOffer struct {
	id, source, title, family, day string
	locations                      []string
	salary                         *float64
	cluster                        string
}

func insertOffers(t testing.TB, db *pgx.Conn, offers []jobOffer) {
	t.Helper()
	for _, o := range offers {
		var cluster *string
		if o.cluster != "" {
			cluster = &o.cluster
		}
		if o.locations == nil {
			o.locations = []string{}
		}
		_, err := db.Exec(t.Context(), `insert into jobs (id, source_name, source_url, title_norm, job_family, locations, salary_annual, salary_stated, published_on, cluster_id)
			values ($1, $2, 'https://'||$2||'.example/jobs/'||$1, $3, nullif($4, ''), $5, $6::float8, $6::float8 is not null, $7::date, $8)`,
			o.id, o.source, o.title, o.family, o.locations, o.salary, o.day, cluster)
		if err != nil {
			t.Fatalf("insert %+v: %v", o, err)
		}
	}
}

// bars is a one-series chart's points as "label=value".
func barsOf(c Chart) []string {
	var out []string
	for _, s := range c.Series {
		for _, p := range s.Points {
			out = append(out, fmt.Sprintf("%s=%g", p.Label, p.Y))
		}
	}
	return out
}

func TestJobsSectionReadsTheViewsWithTheirTies(t *testing.T) {
	db := jobsDB(t, true)
	var offers []jobOffer
	n := 0
	add := func(source, title, family string, count int, locations []string, salary *float64) {
		for range count {
			n++
			offers = append(offers, jobOffer{
				id: fmt.Sprintf("%s:%d", source, n), source: source, title: title, family: family,
				day: fmt.Sprintf("2026-12-0%d", 1+n%3), locations: locations, salary: salary,
			})
		}
	}
	pay := func(v float64) *float64 { return &v }
	// 14 titles: "go developer" first, then a tie of three at 5 offers,
	// then decreasing counts; a long tail tied at 1.
	add("remotive", "go developer", "it", 9, []string{"DE", "EU"}, pay(70000))
	for _, title := range []string{"nurse", "baker", "driver"} {
		add("arbeitnow", title, "health", 5, []string{"FR"}, nil)
	}
	for i, title := range []string{"t4", "t5", "t6", "t7", "t8", "t9", "t10", "t11", "t12", "t13"} {
		add("remoteok", title, "sales", 1+i%2, []string{"WW"}, pay(40000+float64(i)*1000))
	}
	// A duplicate of a go developer offer on another source, in its
	// cluster: counted once.
	offers[0].cluster = "c1"
	offers = append(offers, jobOffer{id: "arbeitnow:dup", source: "arbeitnow", title: "go developer", family: "it", day: "2026-12-03", cluster: "c1"})
	insertOffers(t, db, offers)
	// The model's estimate for an offer stating none.
	if _, err := db.Exec(t.Context(), `insert into jobs_predictions (job_id, estimate, created_at) values ($1, 30000, now() - interval '1 hour'), ($1, 31000, now())`, "arbeitnow:10"); err != nil {
		t.Fatal(err)
	}

	s, err := Jobs(t.Context(), db)
	if err != nil {
		t.Fatalf("Jobs: %v", err)
	}
	top := barsOf(chartOf(t, s, "jobs_title_demand-top"))
	// 14 titles; ranks 1, 2 (three tied), 5 (t5, t7, t9, t11, t13 at 2),
	// then the five at 1 tied at rank 10: all in the top band.
	want := []string{"go developer (#1)=9", "baker (#2)=5", "driver (#2)=5", "nurse (#2)=5"}
	if diff := cmp.Diff(want, top[:4]); diff != "" {
		t.Errorf("top titles (-want +got):\n%s", diff)
	}
	if len(top) != 14 || !strings.HasSuffix(top[13], "(#10)=1") {
		t.Errorf("top band of 14 titles with the tie at rank 10 kept whole: %v", top)
	}
	fam := barsOf(chartOf(t, s, "jobs_family_demand-top"))
	if diff := cmp.Diff([]string{"health (#1)=15", "sales (#1)=15", "it (#3)=9"}, fam); diff != "" {
		t.Errorf("top families (-want +got):\n%s", diff)
	}
	countries := barsOf(chartOf(t, s, "jobs-top-countries"))
	regions := barsOf(chartOf(t, s, "jobs-top-regions"))
	if diff := cmp.Diff([]string{"FR (#1)=15", "DE (#2)=9"}, countries); diff != "" {
		t.Errorf("countries (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"WW (#1)=15", "EU (#2)=9"}, regions); diff != "" {
		t.Errorf("regions (-want +got):\n%s", diff)
	}
	salary := chartOf(t, s, "jobs-salary-by-family")
	if len(salary.Series) != 2 || salary.Series[0].Name != "stated" || salary.Series[1].Name != "estimated" {
		t.Fatalf("salary series %+v", salary.Series)
	}
	if diff := cmp.Diff([]string{"it=70000", "sales=45000"}, barsOf(Chart{Series: salary.Series[:1]})); diff != "" {
		t.Errorf("stated medians (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"health=31000"}, barsOf(Chart{Series: salary.Series[1:]})); diff != "" {
		t.Errorf("estimated medians, the latest prediction (-want +got):\n%s", diff)
	}
	days := chartOf(t, s, "jobs-per-source-day")
	perSource := map[string]float64{}
	for _, sr := range days.Series {
		for _, p := range sr.Points {
			perSource[sr.Name] += p.Y
			if !strings.HasPrefix(p.Label, "2026-12-0") {
				t.Errorf("day label %q", p.Label)
			}
		}
	}
	if diff := cmp.Diff(map[string]float64{"arbeitnow": 16, "remoteok": 15, "remotive": 9}, perSource); diff != "" {
		t.Errorf("offers per source (-want +got):\n%s", diff)
	}
	var sources Table
	for _, tb := range s.Tables {
		if tb.ID == "jobs-sources" {
			sources = tb
		}
	}
	links := map[string]int{}
	for _, r := range sources.Rows {
		if !strings.HasPrefix(r[2], "https://"+r[0]+".example/jobs/"+r[0]+":") {
			t.Errorf("attribution row %v does not link to an offer of its source", r)
		}
		links[r[0]]++
	}
	if diff := cmp.Diff(map[string]int{"arbeitnow": 3, "remoteok": 3, "remotive": 3}, links); diff != "" {
		t.Errorf("links per source (-want +got):\n%s", diff)
	}
	// The section renders, the attribution links as links.
	page := renderPage(t, s)
	if !strings.Contains(page, `<a href="https://remotive.example/jobs/remotive:`) {
		t.Error("the page has no link to a remotive offer")
	}
}

// Without the jobs table the section says so and is still a section; the
// salary chart alone waits for the predictions table.
func TestJobsSectionWithoutItsTables(t *testing.T) {
	s, err := Jobs(t.Context(), jobsDB(t, false))
	if err != nil {
		t.Fatalf("Jobs without a jobs table: %v", err)
	}
	if len(s.Charts) != 0 || len(s.Notes) != 1 || !strings.Contains(s.Notes[0], "has not run") {
		t.Errorf("section without the jobs table: %+v", s)
	}
	db := jobsDB(t, true)
	if _, err := db.Exec(t.Context(), `drop view jobs_salary_by_family`); err != nil {
		t.Fatal(err)
	}
	insertOffers(t, db, []jobOffer{{id: "a:1", source: "a", title: "x", family: "f", day: "2026-12-01"}})
	s, err = Jobs(t.Context(), db)
	if err != nil {
		t.Fatalf("Jobs without jobs_salary_by_family: %v", err)
	}
	if strings.Count(strings.Join(s.Notes, "\n"), "jobs_salary_by_family") != 1 || len(s.Charts) != 9 {
		t.Errorf("section without the salary view: %d charts, notes %q", len(s.Charts), s.Notes)
	}
	renderPage(t, s)
}

// A band of more ties than a chart holds draws maxBars of them and says
// how many there are.
func TestJobsBandOfManyTiesIsCut(t *testing.T) {
	db := jobsDB(t, true)
	var offers []jobOffer
	for i := range 50 {
		offers = append(offers, jobOffer{id: fmt.Sprintf("a:%d", i), source: "a", title: fmt.Sprintf("title %02d", i), family: "f", day: "2026-12-01"})
	}
	insertOffers(t, db, offers)
	s, err := Jobs(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	if top := barsOf(chartOf(t, s, "jobs_title_demand-top")); len(top) != maxBars || top[0] != "title 00 (#1)=1" {
		t.Errorf("top band of 50 tied titles drawn as %d bars: %v", len(top), top)
	}
	want := "Most demanded titles (top 10 ranks): 50 titles; the chart shows the first 40 (the rest have 1 offer or fewer)."
	if !strings.Contains(strings.Join(s.Notes, "\n"), want) {
		t.Errorf("notes %q lack %q", s.Notes, want)
	}
}
