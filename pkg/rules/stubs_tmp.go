package rules

// Temporary stand-ins for the parsers being written on other branches; deleted at their merge.

type TextOptions struct {
	HTML      bool
	DropLines []string
}

func CleanText(s string, o TextOptions) string { return Normalise(s) }
func CompanyKey(name string) string            { return Normalise(name) }

type Salary struct {
	Min, Max       float64
	Currency       string
	Period         string
	PeriodInferred bool
	Notes          []string
	Predicted      bool
}

func ParseSalary(text string) (Salary, bool) { return Salary{}, false }
func StructuredSalary(min, max, currency, period, predicted string) (Salary, bool) {
	return Salary{}, false
}

type SalaryRates struct {
	Date, To string
	Per      map[string]float64
}

func (s Salary) Annual(rates SalaryRates, def string) (float64, float64, bool) { return 0, 0, false }

func Locations(text string) []string { return nil }

type FamilyRule struct {
	Family   string
	Patterns []string
}
type Families struct{}

func CompileFamilies(rules []FamilyRule) (*Families, error) { return &Families{}, nil }

type Title struct{ Norm, Seniority, Family string }

func ParseTitle(title string, f *Families) Title { return Title{Norm: title, Seniority: "mid"} }

var DefaultJobFamilies []FamilyRule
