package rules

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// salaryCase is one line of testdata/salary.tsv.
type salaryCase struct {
	line  int
	input string
	want  Salary
	ok    bool
}

// salaryCases reads testdata/salary.tsv: the input, then the expected
// min, max, currency, period, whether inferred and notes, or "none".
func salaryCases(tb testing.TB) []salaryCase {
	tb.Helper()
	var cases []salaryCase
	for _, l := range readTSV(tb, "salary.tsv", 2, 7) {
		cols := l.fields
		c := salaryCase{line: l.line, input: cols[0]}
		if len(cols) == 2 {
			if cols[1] != "none" {
				tb.Fatalf("salary.tsv:%d: two columns, the second not none", l.line)
			}
			cases = append(cases, c)
			continue
		}
		number := func(s string) float64 {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				tb.Fatalf("salary.tsv:%d: %v", l.line, err)
			}
			return v
		}
		dash := func(s string) string {
			if s == "-" {
				return ""
			}
			return s
		}
		c.ok = true
		c.want = Salary{
			Min: number(cols[1]), Max: number(cols[2]), Currency: dash(cols[3]), Period: dash(cols[4]),
			PeriodInferred: cols[5] == "true",
		}
		if n := dash(cols[6]); n != "" {
			c.want.Notes = strings.Split(n, ",")
		}
		cases = append(cases, c)
	}
	return cases
}

func TestParseSalaryTestdata(t *testing.T) {
	cases := salaryCases(t)
	if len(cases) < 50 {
		t.Fatalf("salary.tsv has %d cases, want at least 50", len(cases))
	}
	for _, c := range cases {
		got, ok := ParseSalary(c.input)
		if ok != c.ok {
			t.Errorf("salary.tsv:%d: ParseSalary(%q) ok = %v, want %v (got %+v)", c.line, c.input, ok, c.ok, got)
			continue
		}
		if diff := cmp.Diff(c.want, got, cmpopts.EquateEmpty(), cmpopts.EquateApprox(0, 1e-9)); diff != "" {
			t.Errorf("salary.tsv:%d: ParseSalary(%q) (-want +got):\n%s", c.line, c.input, diff)
		}
	}
}

func TestParseSalaryEdges(t *testing.T) {
	tests := map[string]struct {
		in   string
		want Salary
		ok   bool
	}{
		"only the first 4 KiB are read": {
			in: strings.Repeat("x", salaryMaxText) + " $80k",
		},
		"an amount inside the first 4 KiB is read": {
			in:   strings.Repeat(" ", salaryMaxText-10) + "$80k",
			want: Salary{Min: 80000, Max: 80000, Currency: "USD", Period: SalaryYear, PeriodInferred: true},
			ok:   true,
		},
		"a cut inside a rune is not invalid text": {
			in:   "€90k" + strings.Repeat("é", salaryMaxText),
			want: Salary{Min: 90000, Max: 90000, Currency: "EUR", Period: SalaryYear, PeriodInferred: true},
			ok:   true,
		},
		"a huge number is no amount": {in: "$" + strings.Repeat("9", 400)},
		"dates are not amounts": {
			in:   "Posted 2026-07-01, start 01/09/2026: €60k",
			want: Salary{Min: 60000, Max: 60000, Currency: "EUR", Period: SalaryYear, PeriodInferred: true},
			ok:   true,
		},
		"a date is not a range": {
			in:   "€3,000/month from 2026.07.01",
			want: Salary{Min: 3000, Max: 3000, Currency: "EUR", Period: SalaryMonth, Notes: []string{"from"}},
			ok:   true,
		},
		"sur 12 mois is a count of payments, not a bound nor a period": {
			in:   "45000 € sur 12 mois",
			want: Salary{Min: 45000, Max: 45000, Currency: "EUR", Period: SalaryYear, PeriodInferred: true},
			ok:   true,
		},
		"the first written period wins": {
			in:   "€60k/year (€5,000/month)",
			want: Salary{Min: 60000, Max: 60000, Currency: "EUR", Period: SalaryYear},
			ok:   true,
		},
		"a range written high to low is put in order": {
			in:   "$100k - $80k",
			want: Salary{Min: 80000, Max: 100000, Currency: "USD", Period: SalaryYear, PeriodInferred: true},
			ok:   true,
		},
		"k8s is no amount": {
			in:   "k8s team, €70k",
			want: Salary{Min: 70000, Max: 70000, Currency: "EUR", Period: SalaryYear, PeriodInferred: true},
			ok:   true,
		},
		"a word between two amounts breaks the range": {
			in:   "$60k base + $20k bonus",
			want: Salary{Min: 60000, Max: 60000, Currency: "USD", Period: SalaryYear, PeriodInferred: true, Notes: []string{"bonus"}},
			ok:   true,
		},
		"a dash after a space is not a minus": {
			in:   "- 50k €",
			want: Salary{Min: 50000, Max: 50000, Currency: "EUR", Period: SalaryYear, PeriodInferred: true},
			ok:   true,
		},
		"a NUL and control characters are spaces": {
			in:   "$70k\x00-\x07$80k",
			want: Salary{Min: 70000, Max: 80000, Currency: "USD", Period: SalaryYear, PeriodInferred: true},
			ok:   true,
		},
		"HTML around the text": {
			in:   "<p><strong>€50,000</strong> &ndash; <strong>€60,000</strong> per year</p>",
			want: Salary{Min: 50000, Max: 60000, Currency: "EUR", Period: SalaryYear},
			ok:   true,
		},
		"from without its amount is no bound": {
			in:   "Remote from Europe, €60k",
			want: Salary{Min: 60000, Max: 60000, Currency: "EUR", Period: SalaryYear, PeriodInferred: true},
			ok:   true,
		},
		"about is not ab": {
			in:   "about $50k",
			want: Salary{Min: 50000, Max: 50000, Currency: "USD", Period: SalaryYear, PeriodInferred: true},
			ok:   true,
		},
		"up to without its amount is no bound": {
			in:   "Hybrid, up to 2 days remote, 55 000 € par an",
			want: Salary{Min: 55000, Max: 55000, Currency: "EUR", Period: SalaryYear},
			ok:   true,
		},
		"krona is not a multiplier": {
			in:   "45 000 kr/mån",
			want: Salary{Min: 45000, Max: 45000, Period: SalaryMonth},
			ok:   true,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := ParseSalary(tt.in)
			if ok != tt.ok {
				t.Fatalf("ParseSalary(%.60q) ok = %v, want %v (got %+v)", tt.in, ok, tt.ok, got)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ParseSalary(%.60q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestSalaryInferPeriod(t *testing.T) {
	tests := []struct {
		amount   float64
		currency string
		want     string
	}{
		{99, "EUR", SalaryHour},
		{100, "EUR", SalaryDay},
		{999, "", SalaryDay},
		{1000, "USD", SalaryMonth},
		{9999, "GBP", SalaryMonth},
		{10000, "EUR", SalaryYear},
		{14000, "EUR", SalaryYear}, // datamill gen jobs' "€14k"
		{12000, "USD", SalaryYear},
		{45000, "EUR", SalaryYear},
		{50000, "INR", SalaryMonth},   // 2,500 in euro-like units
		{600000, "INR", SalaryYear},   // 30,000
		{300000, "JPY", SalaryMonth},  // 2,000
		{5000000, "JPY", SalaryYear},  // 33,333
		{18000, "PLN", SalaryMonth},   // 4,500
		{200, "PLN", SalaryHour},      // 50
		{11000, "CHF", SalaryMonth},   // 8,462
		{2000, "CHF", SalaryMonth},    // 1,538
		{3000, "GBP", SalaryMonth},    // no level
		{3000000, "KRW", SalaryMonth}, // 2,143
	}
	for _, tt := range tests {
		if got := salaryInferPeriod(tt.amount, tt.currency); got != tt.want {
			t.Errorf("salaryInferPeriod(%v, %q) = %q, want %q", tt.amount, tt.currency, got, tt.want)
		}
	}
}

func TestStructuredSalary(t *testing.T) {
	tests := map[string]struct {
		min, max, currency, period, predicted string
		want                                  Salary
		ok                                    bool
	}{
		"remoteok range": {
			min: "80000", max: "120000", currency: "USD",
			want: Salary{Min: 80000, Max: 120000, Currency: "USD", Period: SalaryYear, PeriodInferred: true}, ok: true,
		},
		"remoteok zeros are unknown":      {min: "0", max: "0"},
		"remoteok min only":               {min: "70000", max: "0", want: Salary{Min: 70000, Max: 70000, Period: SalaryYear, PeriodInferred: true}, ok: true},
		"remoteok max only":               {min: "0", max: "90000", want: Salary{Min: 90000, Max: 90000, Period: SalaryYear, PeriodInferred: true}, ok: true},
		"empty fields":                    {},
		"adzuna floats, predicted string": {min: "41234.56", max: "41234.56", currency: "GBP", predicted: "1", want: Salary{Min: 41234.56, Max: 41234.56, Currency: "GBP", Period: SalaryYear, PeriodInferred: true, Predicted: true, Notes: []string{"predicted"}}, ok: true},
		"adzuna stated":                   {min: "35000.0", max: "45000.0", currency: "GBP", predicted: "0", want: Salary{Min: 35000, Max: 45000, Currency: "GBP", Period: SalaryYear, PeriodInferred: true}, ok: true},
		"adzuna predicted int":            {min: "52000", max: "52000", predicted: " 1 ", want: Salary{Min: 52000, Max: 52000, Period: SalaryYear, PeriodInferred: true, Predicted: true, Notes: []string{"predicted"}}, ok: true},
		"adzuna predicted true":           {min: "5.2e4", predicted: "true", want: Salary{Min: 52000, Max: 52000, Period: SalaryYear, PeriodInferred: true, Predicted: true, Notes: []string{"predicted"}}, ok: true},
		"json-ld year":                    {min: "50000", max: "70000", currency: "eur", period: "YEAR", want: Salary{Min: 50000, Max: 70000, Currency: "EUR", Period: SalaryYear}, ok: true},
		"json-ld hour":                    {min: "18.5", max: "22", currency: "USD", period: "HOUR", want: Salary{Min: 18.5, Max: 22, Currency: "USD", Period: SalaryHour}, ok: true},
		"json-ld month":                   {min: "3500", currency: "EUR", period: "MONTH", want: Salary{Min: 3500, Max: 3500, Currency: "EUR", Period: SalaryMonth}, ok: true},
		"json-ld week":                    {min: "1200", max: "1400", currency: "CAD", period: "Week", want: Salary{Min: 1200, Max: 1400, Currency: "CAD", Period: SalaryWeek}, ok: true},
		"json-ld day":                     {min: "450", max: "550", currency: "GBP", period: "DAY", want: Salary{Min: 450, Max: 550, Currency: "GBP", Period: SalaryDay}, ok: true},
		"grouped text amounts":            {min: "60,000", max: "80k", currency: "€", want: Salary{Min: 60000, Max: 80000, Currency: "EUR", Period: SalaryYear, PeriodInferred: true}, ok: true},
		"reversed bounds are ordered":     {min: "90000", max: "70000", want: Salary{Min: 70000, Max: 90000, Period: SalaryYear, PeriodInferred: true}, ok: true},
		"negative is unknown":             {min: "-5", max: "-10"},
		"not a number":                    {min: "NaN", max: "Inf"},
		"text is not an amount":           {min: "competitive", max: "DOE"},
		"unknown currency is dropped":     {min: "50000", currency: "euro dollars", want: Salary{Min: 50000, Max: 50000, Period: SalaryYear, PeriodInferred: true}, ok: true},
		"unknown period is inferred":      {min: "25", currency: "USD", period: "fortnight", want: Salary{Min: 25, Max: 25, Currency: "USD", Period: SalaryHour, PeriodInferred: true}, ok: true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := StructuredSalary(tt.min, tt.max, tt.currency, tt.period, tt.predicted)
			if ok != tt.ok {
				t.Fatalf("StructuredSalary(%q, %q, %q, %q, %q) ok = %v, want %v", tt.min, tt.max, tt.currency, tt.period, tt.predicted, ok, tt.ok)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("StructuredSalary(%q, %q, %q, %q, %q) (-want +got):\n%s", tt.min, tt.max, tt.currency, tt.period, tt.predicted, diff)
			}
		})
	}
}

func TestSalaryAnnual(t *testing.T) {
	rates := SalaryRates{Date: "2026-07-01", To: "EUR", Per: map[string]float64{"USD": 0.92, "GBP": 1.17, "CHF": 1.05, "JPY": 0}}
	bounded := rates
	bounded.Min, bounded.Max = 5000, 2000000
	tests := map[string]struct {
		s          Salary
		rates      SalaryRates
		def        string
		wantMin    float64
		wantMax    float64
		ok         bool
		parsedFrom string // when set, s is ParseSalary of it
	}{
		"year in the reference currency": {s: Salary{Min: 50000, Max: 60000, Currency: "EUR", Period: SalaryYear}, rates: rates, wantMin: 50000, wantMax: 60000, ok: true},
		"hour in dollars":                {s: Salary{Min: 18, Max: 22, Currency: "USD", Period: SalaryHour}, rates: rates, wantMin: 18 * 2080 * 0.92, wantMax: 22 * 2080 * 0.92, ok: true},
		"day in pounds":                  {s: Salary{Min: 450, Max: 450, Currency: "GBP", Period: SalaryDay}, rates: rates, wantMin: 450 * 260 * 1.17, wantMax: 450 * 260 * 1.17, ok: true},
		"week":                           {s: Salary{Min: 1000, Max: 1200, Currency: "EUR", Period: SalaryWeek}, rates: rates, wantMin: 52000, wantMax: 62400, ok: true},
		"month":                          {s: Salary{Min: 2275, Max: 3033, Currency: "EUR", Period: SalaryMonth}, rates: rates, wantMin: 27300, wantMax: 36396, ok: true},
		"no currency takes the default":  {s: Salary{Min: 40000, Max: 40000, Period: SalaryYear}, rates: rates, def: "USD", wantMin: 36800, wantMax: 36800, ok: true},
		"no currency and no default":     {s: Salary{Min: 40000, Max: 40000, Period: SalaryYear}, rates: rates},
		"currency not in the table":      {s: Salary{Min: 40000, Max: 40000, Currency: "PLN", Period: SalaryYear}, rates: rates},
		"zero rate":                      {s: Salary{Min: 5e6, Max: 5e6, Currency: "JPY", Period: SalaryYear}, rates: rates},
		"unknown period":                 {s: Salary{Min: 40000, Max: 40000, Currency: "EUR"}, rates: rates},
		"no amount":                      {s: Salary{Currency: "EUR", Period: SalaryYear}, rates: rates},
		"written currency beats default": {s: Salary{Min: 100000, Max: 120000, Currency: "CHF", Period: SalaryYear}, rates: rates, def: "EUR", wantMin: 105000, wantMax: 126000, ok: true},
		"€1 is under the floor":          {parsedFrom: "€1", rates: bounded},
		"999999999 EUR is over the cap":  {parsedFrom: "999999999 EUR", rates: bounded},
		"$1.5 is under the floor":        {parsedFrom: "$1.5", rates: bounded},
		"a real salary is within bounds": {parsedFrom: "$80k - $100k", rates: bounded, wantMin: 73600, wantMax: 92000, ok: true},
		"without bounds €1 is accepted":  {parsedFrom: "€1", rates: rates, wantMin: 2080, wantMax: 2080, ok: true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			s := tt.s
			if tt.parsedFrom != "" {
				var ok bool
				if s, ok = ParseSalary(tt.parsedFrom); !ok {
					t.Fatalf("ParseSalary(%q) not ok", tt.parsedFrom)
				}
			}
			lo, hi, ok := s.Annual(tt.rates, tt.def)
			if ok != tt.ok || math.Abs(lo-tt.wantMin) > 1e-6 || math.Abs(hi-tt.wantMax) > 1e-6 {
				t.Errorf("%+v.Annual(%+v, %q) = %v, %v, %v; want %v, %v, %v", s, tt.rates, tt.def, lo, hi, ok, tt.wantMin, tt.wantMax, tt.ok)
			}
		})
	}
}

// salaryThousands writes the whole number x with sep between groups of
// three, as datamill gen jobs does.
func salaryThousands(x float64, sep string) string {
	s := strconv.FormatInt(int64(x), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString(sep)
		}
		b.WriteRune(c)
	}
	return b.String()
}

// TestParseSalaryGeneratedFormats writes annual salaries from 11,000 to
// 250,000 in every format of datamill gen jobs (its salaryText, in euros and
// dollars) and reads each back: the annual amount must hold the salary,
// within the format's rounding.
func TestParseSalaryGeneratedFormats(t *testing.T) {
	rates := SalaryRates{To: "EUR", Per: map[string]float64{"USD": 1}, Min: 5000, Max: 2e6}
	for amount := 11000.0; amount <= 250000; amount *= 1.07 {
		amount = math.Round(amount/500) * 500
		lo, hi := math.Round(amount*0.92/1000), math.Round(amount*1.08/1000)
		for _, m := range []struct{ sign, code string }{{"€", "EUR"}, {"$", "USD"}} {
			texts := []string{
				m.sign + strconv.Itoa(int(lo)) + "k–" + strconv.Itoa(int(hi)) + "k",
				salaryThousands(lo*1000, ",") + " - " + salaryThousands(hi*1000, ",") + " " + m.code,
				m.sign + strconv.Itoa(int(math.Round(amount/1000))) + "k",
				salaryThousands(lo*1000, ".") + " – " + salaryThousands(hi*1000, ".") + " " + m.sign + " p.a.",
				m.sign + salaryThousands(math.Round(amount/12), ",") + "/month",
			}
			for _, text := range texts {
				s, ok := ParseSalary(text)
				if !ok || s.Currency != m.code {
					t.Fatalf("ParseSalary(%q) = %+v, %v; want an amount in %s", text, s, ok, m.code)
				}
				min, max, ok := s.Annual(rates, "")
				if !ok || min > amount*1.03 || max < amount*0.97 {
					t.Errorf("ParseSalary(%q) = %+v: annual %v–%v, %v; want about %v", text, s, min, max, ok, amount)
				}
			}
		}
	}
}

func TestSalaryRatesDeclared(t *testing.T) {
	var rates SalaryRates
	decl := `{"date": "2026-07-01", "to": "EUR", "per": {"USD": 0.92, "GBP": 1.17}, "min": 5000, "max": 2000000}`
	if err := json.Unmarshal([]byte(decl), &rates); err != nil {
		t.Fatal(err)
	}
	want := SalaryRates{Date: "2026-07-01", To: "EUR", Per: map[string]float64{"USD": 0.92, "GBP": 1.17}, Min: 5000, Max: 2000000}
	if diff := cmp.Diff(want, rates); diff != "" {
		t.Errorf("SalaryRates from %s (-want +got):\n%s", decl, diff)
	}
}
