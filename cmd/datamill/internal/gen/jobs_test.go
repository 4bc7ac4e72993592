package gen

import (
	"bytes"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/datamill/datamill/pkg/ingest"
)

func jobs(opts JobsOptions) ([]Job, JobsStats) {
	g := NewJobs(opts)
	var out []Job
	for {
		j, ok := g.Next()
		if !ok {
			return out, g.Stats()
		}
		out = append(out, j)
	}
}

func jobsOutput(t testing.TB, opts JobsOptions, format string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, NewJobs(opts), format, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestJobsDeterministic(t *testing.T) {
	for _, format := range []string{"csv", "ndjson", "json"} {
		a := jobsOutput(t, JobsOptions{Offers: 2000, Seed: 7, Dirty: 0.3}, format)
		b := jobsOutput(t, JobsOptions{Offers: 2000, Seed: 7, Dirty: 0.3}, format)
		c := jobsOutput(t, JobsOptions{Offers: 2000, Seed: 8, Dirty: 0.3}, format)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: the same options gave different output", format)
		}
		if bytes.Equal(a, c) {
			t.Errorf("%s: another seed gave the same output", format)
		}
	}
}

var (
	pixelRe = regexp.MustCompile(`<img src="https://[a-z.]+/px/[a-z0-9-]+\.gif" width="1" height="1" alt="">$`)
	// salaryRe tells each salary format by its text.
	salaryRe = map[string]*regexp.Regexp{
		SalaryKRange:      regexp.MustCompile(`^[€$]\d+k–\d+k$`),
		SalaryFullRange:   regexp.MustCompile(`^\d{1,3}(,\d{3})+ - \d{1,3}(,\d{3})+ (EUR|USD)$`),
		SalaryKSingle:     regexp.MustCompile(`^[€$]\d+k$`),
		SalaryGerman:      regexp.MustCompile(`^\d{1,3}(\.\d{3})+ – \d{1,3}(\.\d{3})+ [€$] p\.a\.$`),
		SalaryMonthly:     regexp.MustCompile(`^[€$]\d{1,3}(,\d{3})*/month$`),
		SalaryEmpty:       regexp.MustCompile(`^$`),
		SalaryCompetitive: regexp.MustCompile(`^competitive$`),
	}
)

func TestJobsCleanOffers(t *testing.T) {
	all, s := jobs(JobsOptions{Offers: 20000, Seed: 3})
	ids := map[string]bool{}
	formats := map[string]int{}
	var gender, city, french, usd bool
	for _, j := range all {
		v := func(c int) string {
			if j.Values[c] == nil {
				t.Fatalf("offer %d: %s missing without --dirty", j.Offer, JobColumns[c])
			}
			return *j.Values[c]
		}
		if len(j.Dirt) > 0 {
			t.Fatalf("dirt %v without --dirty", j.Dirt)
		}
		src := v(jcSource)
		if !slices.Contains(Sources, src) || v(jcSourceID) == "" {
			t.Errorf("source %q id %q", src, v(jcSourceID))
		}
		key := src + " " + v(jcSourceID)
		if ids[key] {
			t.Errorf("source id %s twice", key)
		}
		ids[key] = true
		if !pixelRe.MatchString(v(jcDescription)) || !strings.HasPrefix(v(jcDescription), "<h2>") {
			t.Errorf("description without a tracking pixel at its end: %q", v(jcDescription))
		}
		salary := v(jcSalary)
		re, ok := salaryRe[j.SalaryFormat]
		if !ok || !re.MatchString(salary) {
			t.Errorf("salary %q is not in format %s", salary, j.SalaryFormat)
		}
		for f, re := range salaryRe {
			if re.MatchString(salary) {
				formats[f]++
			}
		}
		if src == "arbeitnow" && salary != "" {
			t.Errorf("arbeitnow shows a salary: %q", salary)
		}
		title := v(jcTitle)
		gender = gender || strings.HasSuffix(title, "(m/w/d)")
		french = french || strings.Contains(title, "·")
		city = city || strings.HasSuffix(title, "(Berlin)")
		usd = usd || strings.HasPrefix(salary, "$")
	}
	for _, f := range SalaryFormats {
		if formats[f] == 0 || s.BySalaryFormat[f] == 0 {
			t.Errorf("no salary text in format %s", f)
		}
	}
	if !gender || !french || !city || !usd {
		t.Errorf("titles with a gender marker %t, with an inclusive French form %t, with a city %t; dollar salaries %t", gender, french, city, usd)
	}
}

// TestJobsSalaryProcess checks that the hidden salary follows the model and
// that the text shown tells it.
func TestJobsSalaryProcess(t *testing.T) {
	all, _ := jobs(JobsOptions{Offers: 30000, Seed: 5})
	var sum, n [2]float64 // [0] junior, [1] senior
	for _, j := range all {
		switch j.Seniority {
		case "junior":
			sum[0] += j.Salary
			n[0]++
		case "senior":
			sum[1] += j.Salary
			n[1]++
		}
		if j.SalaryFormat == SalaryKSingle && strings.HasPrefix(*j.Values[jcSalary], "€") {
			k, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(*j.Values[jcSalary], "€"), "k"))
			if err != nil || math.Abs(float64(k)*1000-j.Salary) > 500 {
				t.Errorf("salary text %q for a hidden salary of %.0f", *j.Values[jcSalary], j.Salary)
			}
		}
	}
	// Remote work: among offers in a city, remote ones pay RemoteFactor
	// of the others, on average over the same mix of the rest.
	var logSum, count [2]float64 // [0] on site, [1] remote
	for _, j := range all {
		if !strings.Contains(*j.Values[jcLocation], ",") {
			continue // a region or time zone: always remote
		}
		i := 0
		if *j.Values[jcRemote] == "true" {
			i = 1
		}
		logSum[i] += math.Log(j.Salary)
		count[i]++
	}
	if d := logSum[1]/count[1] - logSum[0]/count[0]; math.Abs(d-math.Log(RemoteFactor)) > 0.03 {
		t.Errorf("remote city offers pay exp(%.3f) of on-site ones, want about %.2f", d, RemoteFactor)
	}
	ratio := (sum[1] / n[1]) / (sum[0] / n[0])
	want := SeniorityFactor["senior"] / SeniorityFactor["junior"]
	if math.Abs(ratio-want) > 0.1*want {
		t.Errorf("senior/junior mean salary %.2f, want about %.2f", ratio, want)
	}
}

func TestJobsDirt(t *testing.T) {
	const dirty = 0.2
	all, s := jobs(JobsOptions{Offers: 20000, Seed: 4, Dirty: dirty})
	share := float64(s.DirtyRows) / float64(s.Rows)
	if share < dirty-0.02 || share > dirty+0.02 {
		t.Errorf("dirty share of rows %.3f, want %.2f ± 0.02", share, dirty)
	}
	for _, k := range JobKinds {
		if s.ByKind[k] == 0 {
			t.Errorf("no row with dirt %s", k)
		}
	}
	var invalid int
	for _, j := range all {
		if slices.Contains(j.Dirt, DirtJobUTF8) && !utf8.ValidString(*j.Values[jcLocation]) {
			invalid++
		}
	}
	if invalid != s.ByKind[DirtJobUTF8] {
		t.Errorf("%d locations with invalid UTF-8, want %d", invalid, s.ByKind[DirtJobUTF8])
	}
}

func TestJobsCrossSourceDuplicates(t *testing.T) {
	all, s := jobs(JobsOptions{Offers: 5000, Seed: 6})
	first := map[int]Job{}
	copies := 0
	for _, j := range all {
		o, seen := first[j.Offer]
		if !j.Copy {
			if seen {
				t.Fatalf("offer %d twice as an original", j.Offer)
			}
			first[j.Offer] = j
			continue
		}
		copies++
		if !seen {
			t.Fatalf("a copy of offer %d before its original", j.Offer)
		}
		if *o.Values[jcSource] == *j.Values[jcSource] {
			t.Errorf("offer %d copied on its own source %s", j.Offer, *j.Values[jcSource])
		}
		for _, c := range []int{jcTitle, jcCompany, jcLocation} {
			if lookAlike(c, *o.Values[c]) != lookAlike(c, *j.Values[c]) {
				t.Errorf("offer %d: %s %q on %s but %q on %s", j.Offer, JobColumns[c], *o.Values[c], *o.Values[jcSource], *j.Values[c], *j.Values[jcSource])
			}
		}
	}
	if copies == 0 || copies != s.CrossSource || s.Rows != s.Offers+s.CrossSource || s.Offers != 5000 {
		t.Errorf("%d copies on a second source, stats %+v", copies, s)
	}
	if share := float64(copies) / 5000; share < 0.05 || share > 0.11 {
		t.Errorf("share of offers on two sources %.3f, want about 0.08", share)
	}
}

// lookAlike is what of column c of an offer and of its copy agrees: a
// company's name without its legal form, other columns whole.
func lookAlike(c int, v string) string {
	if c == jcCompany {
		for _, form := range legalForms {
			v = strings.TrimSuffix(v, form)
		}
	}
	return v
}

// Offers that are not copies of one another never look alike: they differ
// in company, base title, seniority or the codes of their location.
func TestDistinctOffersDoNotLookAlike(t *testing.T) {
	all, _ := jobs(JobsOptions{Offers: 5000, Seed: 7})
	seen := map[string]int{}
	for _, j := range all {
		if j.Copy {
			continue
		}
		var codes string
		for _, l := range Locations {
			if l.Text == *j.Values[jcLocation] {
				codes = l.Codes
			}
		}
		title := strings.TrimSuffix(*j.Values[jcTitle], " - Remote")
		for _, m := range genderMarkers {
			title = strings.ReplaceAll(title, " "+m, "")
		}
		if city := strings.SplitN(*j.Values[jcLocation], ",", 2)[0]; strings.HasSuffix(title, " ("+city+")") {
			title = strings.TrimSuffix(title, " ("+city+")")
		}
		key := strings.Join([]string{lookAlike(jcCompany, *j.Values[jcCompany]), title, j.Seniority, codes}, "|")
		if other, dup := seen[key]; dup {
			t.Errorf("offers %d and %d look alike: %s", other, j.Offer, key)
		}
		seen[key] = j.Offer
	}
}

func TestJobsFormatsParseBack(t *testing.T) {
	opts := JobsOptions{Offers: 3000, Seed: 6, Dirty: 0.2}
	all, _ := jobs(opts)
	for _, f := range []ingest.Format{ingest.CSV, ingest.NDJSON, ingest.JSON} {
		n := 0
		err := ingest.Read(bytes.NewReader(jobsOutput(t, opts, string(f))), f, func(ingest.Record) error { n++; return nil })
		if err != nil || n != len(all) {
			t.Errorf("%s: read back %d rows (%v), want %d", f, n, err, len(all))
		}
	}
}

func TestSlugify(t *testing.T) {
	for in, want := range map[string]string{
		"Globex Senior Go Engineer (m/w/d)":       "globex-senior-go-engineer-m-w-d",
		"Initech Chargé·e de support principal·e": "initech-chargee-de-support-principale",
		"Acme Développeur·se Backend":             "acme-developpeurse-backend",
		"  Vue.js  ":                              "vue-js",
	} {
		if got := Slugify(in); got != want {
			t.Errorf("Slugify(%q) = %q, want %q", in, got, want)
		}
	}
}
