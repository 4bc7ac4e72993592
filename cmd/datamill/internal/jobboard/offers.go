package jobboard

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/datamill/datamill/cmd/datamill/internal/gen"
)

// Columns of a gen.Job's Values, in gen.JobColumns' order.
const (
	colSource = iota
	colSourceID
	colURL
	colTitle
	colCompany
	colCategory
	colLocation
	colRemote
	colJobType
	colSalary
	colPublished
	colDescription
)

// offer is one offer as the board holds it; a missing value is empty.
type offer struct {
	Source, ID, URL       string
	Title, Company        string
	Category, Location    string
	JobType, Salary, Date string
	Description           string
	Remote                bool
	// Published is Date's instant, or a day before gen.JobsReference when
	// Date is dirt no form reads.
	Published time.Time
	// SalaryEUR is the hidden annual salary, shown in numbers where the
	// source has them when SalaryKnown; USD tells the location pays in
	// dollars.
	SalaryEUR         float64
	SalaryKnown, USD  bool
	Monthly           bool
	Family, Seniority string
	N                 int // the offer's position among all of the board's
	Offer             int // gen's number of the offer; its copy on another source has the same
	Rev               int // times Change changed it
}

func newOffer(j gen.Job, n int) (*offer, error) {
	v := func(c int) string {
		if j.Values[c] == nil {
			return ""
		}
		return *j.Values[c]
	}
	o := &offer{
		Source: v(colSource), ID: v(colSourceID), URL: v(colURL), Title: v(colTitle),
		Company: v(colCompany), Category: v(colCategory), Location: v(colLocation),
		JobType: v(colJobType), Salary: v(colSalary), Date: v(colPublished),
		Description: v(colDescription), Remote: v(colRemote) == "true",
		SalaryEUR: j.Salary, Family: j.Family, Seniority: j.Seniority, N: n, Offer: j.Offer,
	}
	if !slices.Contains(Sources, o.Source) {
		return nil, fmt.Errorf("source %q: want one of %s", o.Source, strings.Join(Sources, ", "))
	}
	o.SalaryKnown = j.Salary > 0 && j.Values[colSalary] != nil && !slices.Contains([]string{"", gen.SalaryEmpty, gen.SalaryCompetitive}, j.SalaryFormat)
	o.Monthly = j.SalaryFormat == gen.SalaryMonthly
	for _, l := range gen.Locations {
		if l.Text == o.Location {
			o.USD = l.USD
		}
	}
	o.Published = published(o.Date, n)
	return o, nil
}

// published reads a date in any form gen writes, or makes one up from n.
func published(s string, n int) time.Time {
	for _, layout := range []string{"2006-01-02T15:04:05", time.RFC3339, time.DateOnly, "02/01/2006", "January 2, 2006", time.RFC1123} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(sec, 0).UTC()
	}
	return gen.JobsReference.AddDate(0, 0, -1-n%90)
}

// title is the offer's title, with its revision once changed.
func (o *offer) title() string {
	if o.Rev == 0 {
		return o.Title
	}
	return fmt.Sprintf("%s (rev %d)", o.Title, o.Rev)
}

// slug is a weworkremotely offer's detail page name.
func (o *offer) slug() string { return strings.TrimPrefix(o.ID, "remote-jobs/") }

// salaryRange is the salary's low and high annual amounts in the
// location's currency, rounded as gen writes them.
func (o *offer) salaryRange() (lo, hi float64, currency string) {
	amount, currency := o.SalaryEUR, "EUR"
	if o.USD {
		amount, currency = amount/gen.EURPerUSD, "USD"
	}
	return math.Round(amount*0.92/1000) * 1000, math.Round(amount*1.08/1000) * 1000, currency
}

// tags are the offer's keywords, from its title family and seniority.
func (o *offer) tags() []string {
	var t []string
	switch o.Family {
	case "backend":
		t = []string{"backend", "golang", "api"}
	case "frontend":
		t = []string{"frontend", "react", "typescript"}
	case "data_engineer":
		t = []string{"data", "kafka", "sql"}
	case "data_scientist":
		t = []string{"data science", "python", "machine learning"}
	case "devops":
		t = []string{"devops", "kubernetes", "aws"}
	case "product":
		t = []string{"product"}
	case "design":
		t = []string{"design", "figma"}
	case "qa":
		t = []string{"qa", "testing"}
	case "support":
		t = []string{"customer support"}
	}
	if o.Seniority != "" && o.Seniority != "mid" {
		t = append(t, o.Seniority)
	}
	if t == nil {
		return []string{}
	}
	return t
}

// plainDescription is the description as text, cut after max runes with
// an ellipsis.
func (o *offer) plainDescription(max int) string {
	var b strings.Builder
	in := false
	for _, c := range o.Description {
		switch {
		case c == '<':
			in = true
			b.WriteByte(' ')
		case c == '>':
			in = false
		case !in:
			b.WriteRune(c)
		}
	}
	s := strings.Join(strings.Fields(html.UnescapeString(b.String())), " ")
	if r := []rune(s); len(r) > max {
		return strings.TrimSpace(string(r[:max])) + "…"
	}
	return s
}

// place splits a location like "Berlin, Germany" into its city and
// country; a location of one part is a country or a region.
func (o *offer) place() (city, country string) {
	parts := strings.Split(o.Location, ", ")
	if len(parts) == 1 {
		return "", parts[0]
	}
	return parts[0], parts[len(parts)-1]
}
