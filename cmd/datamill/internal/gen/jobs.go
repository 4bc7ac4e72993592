package gen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// JobsDataset is the dataset whose raw records the jobs generator writes.
const JobsDataset = "jobs"

// JobsAbout describes what the jobs generator writes, for the CLI's help.
const JobsAbout = `Writes job offers as job APIs and boards publish them (source_name,
source_id, source_url, title, company, category, location, remote, job_type,
salary, published_at, description, and id, the jobs key <source_name>:<source_id>): titles with seniority and gender markers,
salary text in many formats or none, over a hidden salary process (title
family, seniority, location, remote); locations mixing cities, countries,
regions and time zones; HTML descriptions ending in a tracking pixel; the same
offer now and then on a second source. Dirt: missing values, stray whitespace,
HTML entities, mojibake, absurd salaries, other date forms, invalid UTF-8,
truncated HTML, other location forms.`

// JobColumns are the generated fields of an offer, in order. The
// source's fields are prefixed source_ so as not to clash with the raw
// envelope's source (where the extractor read the record).
var JobColumns = []string{"source_name", "source_id", "source_url", "title", "company", "category", "location", "remote", "job_type", "salary", "published_at", "description", "id"}

const (
	jcSource = iota
	jcSourceID
	jcURL
	jcTitle
	jcCompany
	jcCategory
	jcLocation
	jcRemote
	jcJobType
	jcSalary
	jcPublished
	jcDescription
	jcID // the jobs dataset's key, <source_name>:<source_id>, as the extractor's polled sources give it
)

// Sources are the sources offers come from: three job APIs and a scraped
// board.
var Sources = []string{"remotive", "arbeitnow", "remoteok", "weworkremotely"}

// Salary model parameters (see the package doc).
var (
	FamilyBase = map[string]float64{
		"backend": 62000, "frontend": 56000, "data_engineer": 64000, "data_scientist": 66000,
		"devops": 63000, "product": 68000, "design": 52000, "qa": 48000, "support": 38000,
	}
	SeniorityFactor = map[string]float64{"junior": 0.72, "mid": 1, "senior": 1.3, "lead": 1.5, "principal": 1.75}
)

// Salary model parameters (see the package doc): the factor of remote
// offers, the standard deviation of the log-normal noise, and the euros a
// dollar is worth.
const (
	RemoteFactor = 0.92
	SalaryNoise  = 0.10
	EURPerUSD    = 0.9
)

// Location is where an offer is: its text, its salary factor, whether
// it is remote only, whether salaries there are shown in dollars, and
// the country and region codes a cleaner reads from its text.
type Location struct {
	Text   string
	Factor float64
	Remote bool
	USD    bool
	Codes  string
}

// Locations lists every location an offer can have.
var Locations = []Location{
	{"Berlin, Germany", 1, false, false, "DE"},
	{"München, Germany", 1.08, false, false, "DE"},
	{"Paris, France", 0.95, false, false, "FR"},
	{"Lyon, France", 0.85, false, false, "FR"},
	{"London, UK", 1.15, false, false, "GB"},
	{"Amsterdam, Netherlands", 1.05, false, false, "NL"},
	{"Zürich, Switzerland", 1.55, false, false, "CH"},
	{"Lisbon, Portugal", 0.6, false, false, "PT"},
	{"Warsaw, Poland", 0.55, false, false, "PL"},
	{"New York, NY, USA", 1.8, false, true, "US"},
	{"San Francisco, CA", 2, false, true, "US"},
	{"Remote (EU)", 0.95, true, false, "EU"},
	{"Remote (US)", 1.6, true, true, "US"},
	{"Europe", 0.95, true, false, "EU"},
	{"EMEA", 0.9, true, false, "EMEA"},
	{"Worldwide", 0.8, true, false, "WW"},
	{"Anywhere", 0.8, true, false, "WW"},
	{"UTC-5 to UTC+1", 1, true, false, "AMER,EU"},
	{"Germany", 1, true, false, "DE"},
}

// Salary formats.
const (
	SalaryKRange      = "k_range"      // €55k–65k
	SalaryFullRange   = "full_range"   // 60,000 - 70,000 EUR
	SalaryKSingle     = "k_single"     // $120k
	SalaryGerman      = "german_range" // 55.000 – 65.000 € p.a.
	SalaryMonthly     = "monthly"      // €4,583/month
	SalaryEmpty       = "empty"        // ""
	SalaryCompetitive = "competitive"  // competitive
)

// SalaryFormats lists every salary format.
var SalaryFormats = []string{SalaryKRange, SalaryFullRange, SalaryKSingle, SalaryGerman, SalaryMonthly, SalaryEmpty, SalaryCompetitive}

type family struct {
	key, category string
	titles        []string // English titles
	french        string   // a French title with an inclusive marker
}

var families = []family{
	{"backend", "Software Development", []string{"Go Engineer", "Backend Engineer", "Java Developer", "Python Developer"}, "Développeur·se Backend"},
	{"frontend", "Software Development", []string{"Frontend Engineer", "React Developer", "Vue.js Developer"}, "Développeur·se Frontend"},
	{"data_engineer", "Data", []string{"Data Engineer", "Analytics Engineer"}, "Ingénieur·e Data"},
	{"data_scientist", "Data", []string{"Data Scientist", "Machine Learning Engineer"}, "Data Scientist·e"},
	{"devops", "DevOps / Sysadmin", []string{"DevOps Engineer", "Site Reliability Engineer", "Platform Engineer"}, "Ingénieur·e DevOps"},
	{"product", "Product", []string{"Product Manager", "Product Owner"}, "Chef·fe de produit"},
	{"design", "Design", []string{"Product Designer", "UX Designer"}, "Designer UX (H/F)"},
	{"qa", "QA", []string{"QA Engineer", "Test Automation Engineer"}, "Testeur·se QA"},
	{"support", "Customer Service", []string{"Support Engineer", "Customer Success Manager"}, "Chargé·e de support"},
}

var (
	seniorities    = []string{"junior", "mid", "mid", "senior", "senior", "lead", "principal"}
	seniorityWords = map[string][]string{
		"junior": {"Junior", "Jr."}, "mid": {""}, "senior": {"Senior", "Sr."},
		"lead": {"Lead", "Tech Lead"}, "principal": {"Principal", "Staff"},
	}
	genderMarkers = []string{"(m/w/d)", "(m/f/d)", "(f/m/x)", "(w/m/d)", "(H/F)"}
	companies     = []string{"Acme", "Globex", "Initech", "Umbrella Data", "Hooli", "Stark Analytics", "Wayne Tech", "Tyrell", "Cyberdyne", "Soylent", "Vandelay Industries", "Aperture"}
	// companyWords make many companies of the few names; legalForms are
	// written after a company's name, or not, and differ now and then
	// between an offer and its copy on another source.
	companyWords = []string{"", " Labs", " Cloud", " Systems", " Digital", " Works", " AI", " Software", " Analytics", " Group", " Solutions", " Studio", " Networks", " Health", " Finance", " Mobility", " Energy", " Security", " Robotics", " Logistics"}
	legalForms   = []string{"", "", " GmbH", " Ltd", " Inc.", " SAS", " B.V.", " AG"}
	jobTypes     = []string{"full_time", "full_time", "full_time", "contract", "part_time", "freelance", ""}
	// JobsReference is the export day: offers are published in the 90
	// days before it.
	JobsReference = time.Date(2026, 7, 31, 0, 0, 0, 0, time.UTC)
)

// JobsOptions choose what the jobs generator writes.
type JobsOptions struct {
	// Offers is the number of distinct offers; copies on a second source
	// add rows.
	Offers int
	// Seed makes the output reproducible.
	Seed uint64
	// Dirty is the share of offers, in [0, 1], that carry dirt.
	Dirty float64
	// CrossSource is the share of offers also published on a second
	// source; 0 means 0.08.
	CrossSource float64
}

// Job is one generated offer as one source publishes it; a nil value is
// missing.
type Job struct {
	Values [13]*string
	// Dirt lists the kinds of dirt the row carries.
	Dirt []string
	// Salary is the hidden annual gross salary in euros.
	Salary float64
	// Family and Seniority are the hidden title family and seniority.
	Family, Seniority string
	// SalaryFormat is how the salary text is written.
	SalaryFormat string
	// Offer numbers the distinct offer; a copy on a second source has its
	// original's.
	Offer int
	// Copy is true for the same offer on a second source.
	Copy bool
}

// JobsStats count what the jobs generator wrote.
type JobsStats struct {
	Rows, Offers, DirtyRows, CrossSource int
	ByKind                               map[string]int
	BySalaryFormat                       map[string]int
}

// JobsGenerator yields offers one at a time.
type JobsGenerator struct {
	opts    JobsOptions
	rnd     *rand.Rand
	next    int
	written int
	later   []pendingJob
	ids     map[string]int // offers published per source
	looks   map[string]bool
	stats   JobsStats
}

type pendingJob struct {
	due int
	job Job
}

// NewJobs returns a jobs generator for opts.
func NewJobs(opts JobsOptions) *JobsGenerator {
	if opts.CrossSource == 0 {
		opts.CrossSource = 0.08
	}
	return &JobsGenerator{
		opts:  opts,
		rnd:   rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x6a09e667f3bcc909)), // #nosec G404 -- seeded, reproducible test data
		next:  1,
		ids:   map[string]int{},
		looks: map[string]bool{},
		stats: JobsStats{ByKind: map[string]int{}, BySalaryFormat: map[string]int{}},
	}
}

// Stats returns the counts so far.
func (g *JobsGenerator) Stats() JobsStats { return g.stats }

// Header returns JobColumns.
func (g *JobsGenerator) Header() []string { return JobColumns }

// NextValues returns the values of the next row, or false at the end.
func (g *JobsGenerator) NextValues() ([]*string, bool) {
	j, ok := g.Next()
	return j.Values[:], ok
}

// Next returns the next offer, or false when all offers and their copies
// are out.
func (g *JobsGenerator) Next() (Job, bool) {
	for i, p := range g.later {
		if p.due <= g.written || g.next > g.opts.Offers {
			g.later = append(g.later[:i], g.later[i+1:]...)
			return g.emit(p.job), true
		}
	}
	if g.next > g.opts.Offers {
		return Job{}, false
	}
	id := g.next
	g.next++
	g.stats.Offers++
	j, loc := g.offer(id)
	clean := cloneJob(j)
	if g.rnd.Float64() < g.opts.Dirty {
		g.dirtyJob(&j)
	}
	if g.rnd.Float64() < g.opts.CrossSource {
		// The copy carries the same kinds of dirt as the original,
		// made anew on its own text.
		c := g.copyOn(clean, loc)
		g.applyKinds(&c, j.Dirt)
		// What tells it apart is the original's, as dirty: the same
		// offer, written by another source with perhaps another legal
		// form.
		c.Values[jcTitle], c.Values[jcLocation] = j.Values[jcTitle], j.Values[jcLocation]
		if company := j.Values[jcCompany]; company != nil {
			name := *company
			for _, form := range legalForms[2:] {
				name = strings.TrimSuffix(name, form)
			}
			name += legalForms[g.rnd.IntN(len(legalForms))]
			c.Values[jcCompany] = &name
		} else {
			c.Values[jcCompany] = nil
		}
		g.later = append(g.later, pendingJob{due: g.written + 1 + g.rnd.IntN(300), job: c})
		g.stats.CrossSource++
	}
	return g.emit(j), true
}

func (g *JobsGenerator) emit(j Job) Job {
	g.written++
	g.stats.Rows++
	g.stats.BySalaryFormat[j.SalaryFormat]++
	if len(j.Dirt) > 0 {
		g.stats.DirtyRows++
		for _, k := range j.Dirt {
			g.stats.ByKind[k]++
		}
	}
	return j
}

func (g *JobsGenerator) pick(options ...string) string { return options[g.rnd.IntN(len(options))] }

// offer makes one clean offer, numbered id, on a random source, and
// says where it is.
func (g *JobsGenerator) offer(id int) (Job, Location) {
	r := g.rnd
	// Distinct offers differ in what tells duplicates apart (company,
	// title, seniority, the location's codes): the offers that look the
	// same are the copies, which the cleaner must find.
	var f family
	var sen, company, title string
	var loc Location
	for try := 0; ; try++ {
		f = families[r.IntN(len(families))]
		sen = seniorities[r.IntN(len(seniorities))]
		loc = Locations[r.IntN(len(Locations))]
		company = companies[r.IntN(len(companies))] + companyWords[r.IntN(len(companyWords))]
		var base string
		title, base = g.title(f, sen, loc)
		key := strings.Join([]string{company, f.key, base, sen, loc.Codes}, "|")
		if !g.looks[key] || try == 100 {
			g.looks[key] = true
			break
		}
	}
	company += legalForms[r.IntN(len(legalForms))]
	remote := loc.Remote || r.Float64() < 0.25
	salary := FamilyBase[f.key] * SeniorityFactor[sen] * loc.Factor * math.Exp(SalaryNoise*r.NormFloat64())
	if remote {
		salary *= RemoteFactor
	}
	salary = math.Round(salary/500) * 500
	j := Job{Salary: salary, Family: f.key, Seniority: sen, Offer: id}
	set := func(col int, v string) { j.Values[col] = &v }
	set(jcTitle, title)
	set(jcCompany, company)
	set(jcCategory, f.category)
	set(jcLocation, loc.Text)
	set(jcRemote, strconv.FormatBool(remote))
	set(jcJobType, jobTypes[r.IntN(len(jobTypes))])
	published := JobsReference.Add(-time.Duration(r.Int64N(int64(90 * 24 * time.Hour)))).Truncate(time.Second)
	g.publish(&j, Sources[r.IntN(len(Sources))], published, loc)
	return j, loc
}

// publish fills in what depends on the source: its id, URL, date form,
// salary text and description (whose tracking pixel names the source).
func (g *JobsGenerator) publish(j *Job, source string, published time.Time, loc Location) {
	set := func(col int, v string) { j.Values[col] = &v }
	title, company := deref(j.Values[jcTitle]), deref(j.Values[jcCompany])
	slug := Slugify(company + " " + title)
	// Each source numbers its offers its own way, never twice.
	g.ids[source]++
	n := g.ids[source]
	var id, url, date string
	switch source {
	case "remotive":
		id = strconv.Itoa(1_900_000 + 3*n + g.rnd.IntN(3))
		url = "https://remotive.com/remote-jobs/" + Slugify(deref(j.Values[jcCategory])) + "/" + slug + "-" + id
		date = published.Format("2006-01-02T15:04:05")
	case "arbeitnow":
		id = slug + "-" + strconv.Itoa(100_000+n)
		url = "https://www.arbeitnow.com/jobs/companies/" + Slugify(company) + "/" + id
		date = strconv.FormatInt(published.Unix(), 10)
	case "remoteok":
		id = strconv.Itoa(1_090_000 + n)
		url = "https://remoteok.com/remote-jobs/" + id
		date = published.Format(time.RFC3339)
	default: // weworkremotely, scraped
		id = "remote-jobs/" + slug + "-" + strconv.Itoa(n)
		url = "https://weworkremotely.com/" + id
		date = published.Format(time.DateOnly)
	}
	set(jcSource, source)
	set(jcSourceID, id)
	set(jcID, source+":"+id)
	set(jcURL, url)
	set(jcPublished, date)
	format := g.pick(SalaryFormats...)
	if source == "arbeitnow" {
		format = SalaryEmpty
	}
	j.SalaryFormat = format
	set(jcSalary, salaryText(format, j.Salary, loc.USD))
	host := strings.SplitN(strings.TrimPrefix(url, "https://"), "/", 2)[0]
	set(jcDescription, fmt.Sprintf(`<h2>About %s</h2><p>%s is hiring a <strong>%s</strong> to join its team.</p><ul><li>%s</li><li>30 days’ vacation…</li></ul><img src="https://%s/px/%s.gif" width="1" height="1" alt="">`,
		company, company, title, g.pick("Kubernetes, Kafka, PostgreSQL", "Go and gRPC", "Python, Airflow, dbt", "React and TypeScript", "Figma and user research"), host, Slugify(id)))
}

// copyOn is the clean offer j published on another source, with its own
// id, date form, salary text and pixel.
func (g *JobsGenerator) copyOn(j Job, loc Location) Job {
	c := cloneJob(j)
	c.Copy = true
	others := slices.DeleteFunc(slices.Clone(Sources), func(s string) bool { return s == deref(j.Values[jcSource]) })
	published := JobsReference.Add(-time.Duration(g.rnd.Int64N(int64(90 * 24 * time.Hour)))).Truncate(time.Second)
	g.publish(&c, g.pick(others...), published, loc)
	return c
}

func cloneJob(j Job) Job {
	c := j
	c.Dirt = slices.Clone(j.Dirt)
	for i, v := range j.Values {
		if v != nil {
			s := *v
			c.Values[i] = &s
		}
	}
	return c
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// title is an offer's title, and the base title it is made of.
func (g *JobsGenerator) title(f family, sen string, loc Location) (string, string) {
	r := g.rnd
	if r.Float64() < 0.15 {
		t := f.french
		if w := seniorityWords[sen][0]; w != "" && sen != "mid" {
			t += " " + map[string]string{"junior": "junior", "senior": "senior·e", "lead": "lead", "principal": "principal·e"}[sen]
		}
		return t, f.french
	}
	words := seniorityWords[sen]
	base := f.titles[r.IntN(len(f.titles))]
	t := base
	if w := words[r.IntN(len(words))]; w != "" {
		t = w + " " + t
	}
	switch x := r.Float64(); {
	case x < 0.3:
		t += " " + genderMarkers[r.IntN(len(genderMarkers))]
	case x < 0.5 && !loc.Remote:
		t += " (" + strings.SplitN(loc.Text, ",", 2)[0] + ")"
	case x < 0.6:
		t += " - Remote"
	}
	return t, base
}

// salaryText writes the annual salary eur in format, in dollars if usd.
func salaryText(format string, eur float64, usd bool) string {
	amount, sign, code := eur, "€", "EUR"
	if usd {
		amount, sign, code = eur/EURPerUSD, "$", "USD"
	}
	lo, hi := math.Round(amount*0.92/1000), math.Round(amount*1.08/1000)
	switch format {
	case SalaryKRange:
		return fmt.Sprintf("%s%.0fk–%.0fk", sign, lo, hi)
	case SalaryFullRange:
		return fmt.Sprintf("%s - %s %s", thousands(lo*1000, ','), thousands(hi*1000, ','), code)
	case SalaryKSingle:
		return fmt.Sprintf("%s%.0fk", sign, math.Round(amount/1000))
	case SalaryGerman:
		return fmt.Sprintf("%s – %s %s p.a.", thousands(lo*1000, '.'), thousands(hi*1000, '.'), sign)
	case SalaryMonthly:
		return fmt.Sprintf("%s%s/month", sign, thousands(math.Round(amount/12), ','))
	case SalaryCompetitive:
		return "competitive"
	}
	return ""
}

// thousands writes the whole number x with sep between groups of three.
func thousands(x float64, sep byte) string {
	s := strconv.FormatInt(int64(x), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(sep)
		}
		b.WriteRune(c)
	}
	return b.String()
}

// unaccented maps the accented letters of titles and companies to their
// plain letters, as the sources' slugs write them.
var unaccented = map[rune]rune{'é': 'e', 'è': 'e', 'ê': 'e', 'à': 'a', 'â': 'a', 'ä': 'a', 'ö': 'o', 'ô': 'o', 'ü': 'u', 'û': 'u', 'ç': 'c', 'î': 'i'}

// Slugify writes s as a URL path segment: lower-case letters and digits
// separated by single dashes.
func Slugify(s string) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(s) {
		if c == '·' {
			continue // développeur·se: developpeurse
		}
		if a, ok := unaccented[c]; ok {
			c = a
		}
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// Kinds of dirt in offers.
const (
	DirtJobMissing    = "missing"
	DirtJobWhitespace = "whitespace"
	DirtHTMLEntities  = "html_entities"
	DirtMojibake      = "mojibake"
	DirtSalaryAbsurd  = "absurd_salary"
	DirtJobDate       = "date_format"
	DirtJobUTF8       = "invalid_utf8"
	DirtHTMLTruncated = "truncated_html"
	DirtLocationForm  = "location_form"
)

// JobKinds lists every kind of dirt in offers, in the order they are
// applied: a location's form before invalid UTF-8 in it.
var JobKinds = []string{
	DirtJobMissing, DirtJobWhitespace, DirtHTMLEntities, DirtMojibake, DirtSalaryAbsurd,
	DirtJobDate, DirtLocationForm, DirtJobUTF8, DirtHTMLTruncated,
}

// dirtyJob applies one or two distinct kinds of dirt to j.
func (g *JobsGenerator) dirtyJob(j *Job) {
	var kinds []string
	for range 1 + g.rnd.IntN(2) {
		if k := JobKinds[g.rnd.IntN(len(JobKinds))]; !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	g.applyKinds(j, kinds)
}

// applyKinds applies kinds of dirt to j, a missing value last and in a
// field the others left alone, so that every kind listed shows.
func (g *JobsGenerator) applyKinds(j *Job, kinds []string) {
	kinds = slices.Clone(kinds)
	slices.SortFunc(kinds, func(a, b string) int { return slices.Index(JobKinds, a) - slices.Index(JobKinds, b) })
	var touched []int
	missing := false
	for _, k := range kinds {
		if k == DirtJobMissing {
			missing = true
			continue
		}
		touched = append(touched, g.applyJob(j, k))
		j.Dirt = append(j.Dirt, k)
	}
	if missing {
		cols := slices.DeleteFunc([]int{jcTitle, jcCompany, jcLocation, jcSalary, jcPublished, jcDescription, jcURL}, func(c int) bool { return slices.Contains(touched, c) })
		j.Values[cols[g.rnd.IntN(len(cols))]] = nil
		j.Dirt = append(j.Dirt, DirtJobMissing)
	}
}

// applyJob applies one kind of dirt other than a missing value to j and
// returns the column it changed.
func (g *JobsGenerator) applyJob(j *Job, kind string) int {
	r := g.rnd
	v := func(col int) string {
		if j.Values[col] == nil {
			return ""
		}
		return *j.Values[col]
	}
	set := func(col int, s string) { j.Values[col] = &s }
	switch kind {
	case DirtJobWhitespace:
		if r.IntN(2) == 0 {
			set(jcCompany, v(jcCompany)+" ")
			return jcCompany
		}
		set(jcTitle, "  "+v(jcTitle)+"\t")
		return jcTitle
	case DirtHTMLEntities:
		set(jcTitle, strings.Replace(v(jcTitle)+" &amp; more", " ", "&nbsp;", 1))
		return jcTitle
	case DirtMojibake:
		var b strings.Builder
		for _, c := range []byte(v(jcDescription)) {
			b.WriteRune(rune(c)) // UTF-8 bytes read as Latin-1
		}
		set(jcDescription, b.String())
		return jcDescription
	case DirtSalaryAbsurd:
		set(jcSalary, g.pick("€1", "0", "999999999 EUR", "-50k", "$1.5"))
		return jcSalary
	case DirtJobDate:
		d := JobsReference.AddDate(0, 0, -r.IntN(90))
		set(jcPublished, g.pick(d.Format("02/01/2006"), d.Format("January 2, 2006"), fmt.Sprintf("%d days ago", 1+r.IntN(30)), "yesterday", d.Format(time.RFC1123)))
		return jcPublished
	case DirtJobUTF8:
		set(jcLocation, v(jcLocation)+"\xff\xfe")
		return jcLocation
	case DirtHTMLTruncated:
		d := []rune(v(jcDescription))
		set(jcDescription, string(d[:len(d)/2]))
		return jcDescription
	case DirtLocationForm:
		set(jcLocation, g.pick("DE", "Deutschland", "berlin", "GMT+1", "Europe/Berlin", "US/Canada", "CET ±3h", "Île-de-France", "Bay Area", "remote"))
		return jcLocation
	}
	panic("gen: unknown kind of dirt " + kind)
}
