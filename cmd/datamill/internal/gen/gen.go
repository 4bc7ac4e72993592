// Package gen generates realistic records of two datasets, each with a
// hidden process a model can learn and, on request, the dirt real exports
// carry. The same options always give the same rows.
//
// Users (New) are in the seed's shape (id, age, gender, country, city,
// email, signup_date, last_login, account_status, monthly_spend); whether
// a user churned follows the churn model below.
//
// Job offers (NewJobs) are as job APIs and boards publish them
// (JobColumns), from remotive, arbeitnow, remoteok and a scraped board
// (weworkremotely), with the same offer on a second source now and then.
// An offer's hidden annual gross salary in euros (Job.Salary) is
//
//	FamilyBase[family] × SeniorityFactor[seniority] × Location.Factor
//	× RemoteFactor (if remote) × exp(SalaryNoise · N(0, 1)),
//
// rounded to 500 €. The family and seniority show only through the title
// ("Senior Go Engineer (m/w/d)", "Développeur·se Backend senior·e"), the
// location through its text, which may be a region or a time-zone range
// ("Remote (EU)", "UTC-5 to UTC+1"): remote-only locations are remote, a
// city is remote a quarter of the time. The salary text is drawn from
// SalaryFormats independently of the salary: a range of ±8 % around it
// ("€55k–65k", "60,000 - 70,000 EUR", "55.000 – 65.000 € p.a."), its
// thousands ("$120k") or twelfth ("€4,583/month"), in dollars at
// EURPerUSD for locations in the United States, or an empty text or
// "competitive" that hides it; arbeitnow never shows one.
package gen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Dataset is the dataset whose raw records the generator writes.
const Dataset = "users"

// About describes what the generator writes, for the CLI's help.
const About = `Writes realistic users (id, age, gender, country, city, email, signup_date,
last_login, account_status, monthly_spend) whose account_status follows a hidden
churn process, optionally with dirt: missing values, mixed forms, malformed
emails and dates, absurd numbers, currency signs, invalid UTF-8, duplicates and
later re-sends.`

// Columns are the generated fields, in order.
var Columns = []string{"id", "age", "gender", "country", "city", "email", "signup_date", "last_login", "account_status", "monthly_spend"}

const (
	colID = iota
	colAge
	colGender
	colCountry
	colCity
	colEmail
	colSignup
	colLastLogin
	colStatus
	colSpend
)

// Options choose what to generate.
type Options struct {
	// Users is the number of distinct users; duplicates and re-sends add
	// rows.
	Users int
	// Seed makes the output reproducible.
	Seed uint64
	// Dirty is the share of rows, in [0, 1], that carry dirt.
	Dirty float64
}

// Row is one generated record; a nil value is missing.
type Row struct {
	Values [10]*string
	// Dirt lists the kinds of dirt the row carries.
	Dirt []string
}

// Churn model: the probability that a user churned is
// logistic(B0 + BInactive·months since last login − BSpend·log(1+spend) −
// BTenure·years since signup + the country's effect).
const (
	B0        = -0.2
	BInactive = 0.10
	BSpend    = 0.55
	BTenure   = 0.25
)

// CountryEffect shifts the churn odds of a few countries.
var CountryEffect = map[string]float64{"US": 0.6, "BR": 0.8, "CH": -0.7}

// Reference is the day the export is taken: last logins precede it.
var Reference = time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)

type country struct {
	code   string
	weight float64
	cities []string
	domain string
}

var countries = []country{
	{"FR", 0.20, []string{"Paris", "Lyon", "Marseille", "Toulouse", "Lille", "Nantes"}, "orange.fr"},
	{"DE", 0.16, []string{"Berlin", "Hamburg", "München", "Köln", "Frankfurt"}, "web.de"},
	{"GB", 0.10, []string{"London", "Manchester", "Bristol", "Leeds"}, "mail.co.uk"},
	{"ES", 0.09, []string{"Madrid", "Barcelona", "Valencia", "Sevilla"}, "correo.es"},
	{"IT", 0.09, []string{"Roma", "Milano", "Napoli", "Torino"}, "posta.it"},
	{"US", 0.12, []string{"New York", "Chicago", "Austin", "Seattle", "Boston"}, "mail.com"},
	{"NL", 0.05, []string{"Amsterdam", "Rotterdam", "Utrecht"}, "mail.nl"},
	{"BE", 0.04, []string{"Bruxelles", "Antwerpen", "Liège"}, "mail.be"},
	{"CH", 0.04, []string{"Zürich", "Genève", "Basel"}, "bluewin.ch"},
	{"PT", 0.03, []string{"Lisboa", "Porto"}, "mail.pt"},
	{"PL", 0.03, []string{"Warszawa", "Kraków"}, "wp.pl"},
	{"BR", 0.03, []string{"São Paulo", "Rio de Janeiro"}, "mail.com.br"},
	{"CA", 0.02, []string{"Toronto", "Montréal", "Vancouver"}, "mail.ca"},
}

var (
	firstNames = []string{"ada", "alan", "grace", "linus", "marie", "nikola", "rosa", "emil", "sofia", "hugo", "lea", "omar", "yuki", "ines", "karl", "anna", "paul", "zoe"}
	lastNames  = []string{"martin", "bernard", "muller", "schmidt", "garcia", "rossi", "smith", "jones", "dubois", "weber", "lopez", "silva", "novak", "berg", "costa"}
)

// Generator yields rows one at a time.
type Generator struct {
	opts    Options
	rnd     *rand.Rand
	next    int       // next user id
	written int       // rows returned
	later   []pending // duplicates and re-sends waiting for their turn
	stats   Stats
}

type pending struct {
	due int
	row Row
}

// Stats count what was generated.
type Stats struct {
	Rows, Users, DirtyUsers, DirtyRows, Duplicates, Resends int
	Churned                                                 int
	ByKind                                                  map[string]int
}

// New returns a generator for opts.
func New(opts Options) *Generator {
	return &Generator{
		opts:  opts,
		rnd:   rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)), // #nosec G404 -- seeded, reproducible test data
		next:  1,
		stats: Stats{ByKind: map[string]int{}},
	}
}

// Stats returns the counts so far.
func (g *Generator) Stats() Stats { return g.stats }

// Header returns Columns.
func (g *Generator) Header() []string { return Columns }

// NextValues returns the values of the next row, or false at the end.
func (g *Generator) NextValues() ([]*string, bool) {
	r, ok := g.Next()
	return r.Values[:], ok
}

// Next returns the next row, or false when all users and their repeats
// are out.
func (g *Generator) Next() (Row, bool) {
	for i, p := range g.later {
		if p.due <= g.written || g.next > g.opts.Users {
			g.later = append(g.later[:i], g.later[i+1:]...)
			return g.emit(p.row), true
		}
	}
	if g.next > g.opts.Users {
		return Row{}, false
	}
	row, churned := g.user(g.next)
	g.next++
	g.stats.Users++
	if churned {
		g.stats.Churned++
	}
	if g.rnd.Float64() < g.opts.Dirty {
		g.stats.DirtyUsers++
		g.dirty(&row)
	}
	return g.emit(row), true
}

func (g *Generator) emit(r Row) Row {
	g.written++
	g.stats.Rows++
	if len(r.Dirt) > 0 {
		g.stats.DirtyRows++
		for _, k := range r.Dirt {
			g.stats.ByKind[k]++
		}
	}
	return r
}

// user makes one clean user and says whether it churned.
func (g *Generator) user(id int) (Row, bool) {
	r := g.rnd
	c := g.country()
	age := int(math.Round(40 + 13*r.NormFloat64()))
	age = min(max(age, 18), 80)
	signup := time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, r.IntN(2372)) // to 2025-06-30
	tenureDays := Reference.Sub(signup).Hours() / 24
	// Most users logged in recently; some long ago.
	inactiveDays := math.Floor(tenureDays * math.Pow(r.Float64(), 2.5))
	lastLogin := Reference.AddDate(0, 0, -int(inactiveDays))
	spend := math.Exp(3.0 + 0.8*r.NormFloat64())
	spend = math.Round(spend*100) / 100
	z := B0 + BInactive*inactiveDays/30 - BSpend*math.Log1p(spend) - BTenure*tenureDays/365 + CountryEffect[c.code]
	churned := r.Float64() < 1/(1+math.Exp(-z))
	status := "active"
	if churned {
		status = "churned"
	}
	first, last := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
	gender := []string{"female", "male", "female", "male", "other"}[r.IntN(5)]
	var row Row
	set := func(col int, v string) { row.Values[col] = &v }
	set(colID, strconv.Itoa(id))
	set(colAge, strconv.Itoa(age))
	set(colGender, gender)
	set(colCountry, c.code)
	set(colCity, c.cities[r.IntN(len(c.cities))])
	set(colEmail, fmt.Sprintf("%s.%s%d@%s", first, last, id, c.domain))
	set(colSignup, signup.Format(time.DateOnly))
	set(colLastLogin, lastLogin.Format(time.DateOnly))
	set(colStatus, status)
	set(colSpend, strconv.FormatFloat(spend, 'f', 2, 64))
	return row, churned
}

func (g *Generator) country() country {
	x := g.rnd.Float64()
	for _, c := range countries {
		if x < c.weight {
			return c
		}
		x -= c.weight
	}
	return countries[0]
}

// Kinds of dirt.
const (
	DirtMissing    = "missing"
	DirtGender     = "gender_form"
	DirtCountry    = "country_form"
	DirtEmail      = "malformed_email"
	DirtDateFormat = "date_format"
	DirtDateBad    = "impossible_date"
	DirtLoginEarly = "last_login_before_signup"
	DirtAge        = "absurd_age"
	DirtSpend      = "absurd_spend"
	DirtMoney      = "money_format"
	DirtWhitespace = "whitespace"
	DirtUTF8       = "invalid_utf8"
	DirtDuplicate  = "exact_duplicate"
	DirtResend     = "resend"
)

// Kinds lists every kind of dirt.
var Kinds = []string{
	DirtMissing, DirtGender, DirtCountry, DirtEmail, DirtDateFormat, DirtDateBad, DirtLoginEarly,
	DirtAge, DirtSpend, DirtMoney, DirtWhitespace, DirtUTF8, DirtDuplicate, DirtResend,
}

// dirty applies one to three kinds of dirt to row.
func (g *Generator) dirty(row *Row) {
	n := 1 + g.rnd.IntN(3)
	var dup, resend bool
	for range n {
		switch kind := Kinds[g.rnd.IntN(len(Kinds))]; kind {
		case DirtDuplicate:
			dup = true
		case DirtResend:
			resend = true
		default:
			if g.apply(row, kind) {
				row.Dirt = append(row.Dirt, kind)
			}
		}
	}
	// Repeats copy the row as it finally is, and come later.
	if dup {
		g.later = append(g.later, pending{due: g.written + 1 + g.rnd.IntN(500), row: cloneRow(*row, DirtDuplicate)})
		g.stats.Duplicates++
	}
	if resend {
		g.later = append(g.later, pending{due: g.written + 1 + g.rnd.IntN(2000), row: g.resend(*row)})
		g.stats.Resends++
	}
}

// resend is a later version of row: same id, a later login, a new spend.
func (g *Generator) resend(row Row) Row {
	re := cloneRow(row, DirtResend)
	if v := row.Values[colLastLogin]; v != nil {
		if d, err := time.Parse(time.DateOnly, *v); err == nil {
			nd := d.AddDate(0, 0, 1+g.rnd.IntN(60))
			if nd.After(Reference) {
				nd = Reference
			}
			s := nd.Format(time.DateOnly)
			re.Values[colLastLogin] = &s
		}
	}
	spend := strconv.FormatFloat(5+g.rnd.Float64()*80, 'f', 2, 64)
	re.Values[colSpend] = &spend
	return re
}

func (g *Generator) pick(options ...string) string { return options[g.rnd.IntN(len(options))] }

func (g *Generator) apply(row *Row, kind string) bool {
	r := g.rnd
	v := func(col int) string {
		if row.Values[col] == nil {
			return ""
		}
		return *row.Values[col]
	}
	set := func(col int, s string) { row.Values[col] = &s }
	switch kind {
	case DirtMissing:
		// Any field, the id too: such a row cannot be loaded and is rejected.
		row.Values[r.IntN(len(row.Values))] = nil
	case DirtGender:
		forms := map[string][]string{
			"female": {"F", "f", " F ", "FEMALE", "Femme", "woman", "W"},
			"male":   {"M", "m", "male ", "Homme", "MALE", "man", "H"},
			"other":  {"X", "divers", "Other", "autre"},
		}[v(colGender)]
		if forms == nil {
			return false
		}
		set(colGender, forms[r.IntN(len(forms))])
	case DirtCountry:
		forms := map[string][]string{
			"FR": {"France", "fra", "Frankreich", "Francia", " fr"},
			"DE": {"Germany", "Deutschland", "Allemagne", "DEU", "de"},
			"US": {"U.S.A.", "United States", "USA", "Etats-Unis"},
			"ES": {"España", "Espagne", "Spain", "ESP"},
			"IT": {"Italia", "Italie", "ITA"},
			"GB": {"UK", "United Kingdom", "Royaume-Uni"},
		}[v(colCountry)]
		if forms == nil {
			return false
		}
		set(colCountry, forms[r.IntN(len(forms))])
	case DirtEmail:
		e := v(colEmail)
		set(colEmail, g.pick(strings.Replace(e, "@", "", 1), strings.Replace(e, "@", "@@", 1), strings.Replace(e, ".", " ", 1), e+"."))
	case DirtDateFormat:
		col := g.pick("signup_date", "last_login")
		c := colSignup
		if col == "last_login" {
			c = colLastLogin
		}
		d, err := time.Parse(time.DateOnly, v(c))
		if err != nil {
			return false
		}
		set(c, d.Format(g.pick("02/01/2006", "2006/01/02", "2 Jan 2006", "20060102", "2006-01-02T10:00:00Z")))
	case DirtDateBad:
		set(g.pickCol(colSignup, colLastLogin), g.pick("2023-02-30", "2023-13-01", "2022-04-31", "0000-00-00"))
	case DirtLoginEarly:
		d, err := time.Parse(time.DateOnly, v(colSignup))
		if err != nil {
			return false
		}
		set(colLastLogin, d.AddDate(0, 0, -1-r.IntN(300)).Format(time.DateOnly))
	case DirtAge:
		set(colAge, g.pick("-5", "0", "230", "999", "forty", "3 1"))
	case DirtSpend:
		set(colSpend, g.pick("-12.00", "9999999", "-0.01", "1e9"))
	case DirtMoney:
		s := strings.Replace(v(colSpend), ".", ",", 1)
		set(colSpend, g.pick("€"+s, "$ "+v(colSpend), s+" EUR", s+" €", "1 234,56"))
	case DirtWhitespace:
		c := g.pickCol(colAge, colCity, colEmail, colID)
		set(c, "  "+v(c)+" \t")
	case DirtUTF8:
		set(colCity, v(colCity)+"\xff\xfe")
	}
	return true
}

func (g *Generator) pickCol(cols ...int) int { return cols[g.rnd.IntN(len(cols))] }

// cloneRow copies r for a later emission marked with kind.
func cloneRow(r Row, kind string) Row {
	c := Row{Dirt: append(append([]string{}, r.Dirt...), kind)}
	for i, v := range r.Values {
		if v != nil {
			s := *v
			c.Values[i] = &s
		}
	}
	return c
}
