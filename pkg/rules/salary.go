package rules

import (
	"html"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Salary is what an offer says it pays.
type Salary struct {
	// Min and Max are amounts per Period in Currency; Max == Min when one
	// amount is stated; both 0 when none is.
	Min, Max float64
	// Currency is an ISO 4217 code (USD, EUR, GBP, CHF, CAD, AUD, PLN,
	// INR…), "" when the offer does not say.
	Currency string
	// Period is hour, day, week, month or year; "" when unknown.
	Period string
	// PeriodInferred is true when Period was not written but read from the
	// magnitude of the amount (see ParseSalary).
	PeriodInferred bool
	// Notes are sorted, distinct marks: "ote" (on-target earnings),
	// "from" (a lower bound: "from", "à partir de", "ab"), "up_to" (an
	// upper bound: "up to", "jusqu'à", "bis zu"), "equity", "bonus",
	// "net" (a net, not gross, amount), "predicted".
	Notes []string
	// Predicted is true for an estimate by the source (Adzuna's
	// salary_is_predicted), not an amount the offer states.
	Predicted bool
}

// Periods a Salary may have.
const (
	SalaryHour  = "hour"
	SalaryDay   = "day"
	SalaryWeek  = "week"
	SalaryMonth = "month"
	SalaryYear  = "year"
)

// Times a period fits in a year, used by Salary.Annual: 2080 hours (40 h
// × 52 weeks), 260 working days (5 × 52), 52 weeks, 12 months.
const (
	SalaryHoursPerYear  = 2080
	SalaryDaysPerYear   = 260
	SalaryWeeksPerYear  = 52
	SalaryMonthsPerYear = 12
)

// salaryPerYear maps a period to how many of it a year holds.
var salaryPerYear = map[string]float64{
	SalaryHour: SalaryHoursPerYear, SalaryDay: SalaryDaysPerYear, SalaryWeek: SalaryWeeksPerYear,
	SalaryMonth: SalaryMonthsPerYear, SalaryYear: 1,
}

// Thresholds of period inference, in euro-like units (the amount divided
// by its currency's salaryLevel): a salary without a written period is per
// hour below 100, per day below 1,000, per month below 10,000 and per year
// from 10,000 up ("45k" and "$12K" are yearly). Hourly pay above 100 and
// day rates under 100 are rare; monthly pay of 10,000 or more is rarer
// than yearly pay under 15,000 (a junior in Warsaw, which datamill gen
// jobs writes as "€14k"); a weekly amount is never inferred.
const (
	SalaryInferHourBelow  = 100
	SalaryInferDayBelow   = 1000
	SalaryInferMonthBelow = 10000
)

// salaryMaxText bounds how much of a salary text is read.
const salaryMaxText = 4096

// salaryLevel is, for currencies whose unit is far from a euro's worth,
// roughly how many units make a comparable pay: a salary level, used only
// to infer a period from a magnitude, never to convert. Currencies not
// listed count 1.
var salaryLevel = map[string]float64{
	"CHF": 1.3, "JPY": 150, "KRW": 1400, "INR": 20, "IDR": 10000, "VND": 15000, "HUF": 300, "CZK": 20, "PLN": 4,
	"SEK": 10, "NOK": 10, "DKK": 7, "ZAR": 10, "BRL": 4, "MXN": 15, "CNY": 6, "HKD": 8, "RUB": 60,
	"TRY": 20, "PHP": 30, "UAH": 30, "RON": 4, "THB": 25, "MYR": 3, "NGN": 500, "KES": 80, "EGP": 30,
	"ARS": 500, "CLP": 700, "COP": 3000, "ILS": 4, "AED": 4, "BGN": 2, "TWD": 30, "PKR": 100,
}

// salaryCodes are the ISO 4217 codes read as a currency when written as
// a word. TRY, PEN, ARS, PHP and ALL are left out: they are words or a
// programming language (₺ and ₱ still read as TRY and PHP).
var salaryCodes = []string{
	"usd", "eur", "gbp", "chf", "cad", "aud", "nzd", "pln", "inr", "jpy", "cny", "sek", "nok", "dkk",
	"czk", "huf", "ron", "bgn", "brl", "mxn", "zar", "sgd", "hkd", "krw", "ils", "aed", "rub", "uah",
	"idr", "myr", "thb", "ngn", "kes", "egp", "clp", "cop", "twd", "pkr", "vnd",
}

// salaryCurrencyWords maps the currency words, symbols and prefixed
// dollars of a lower-cased text to their code.
var salaryCurrencyWords = map[string]string{
	"€": "EUR", "£": "GBP", "₹": "INR", "¥": "JPY", "₩": "KRW", "₽": "RUB", "₺": "TRY", "₱": "PHP",
	"zł": "PLN", "zl": "PLN", "zloty": "PLN", "złotych": "PLN", "$": "USD", "us$": "USD", "usd$": "USD",
	"c$": "CAD", "ca$": "CAD", "cad$": "CAD", "a$": "AUD", "au$": "AUD", "aud$": "AUD", "nz$": "NZD",
	"s$": "SGD", "sgd$": "SGD", "hk$": "HKD", "r$": "BRL", "mx$": "MXN", "euro": "EUR", "euros": "EUR",
	"dollar": "USD", "dollars": "USD", "pound": "GBP", "pounds": "GBP", "sterling": "GBP", "fr.": "CHF",
	"sfr": "CHF", "franken": "CHF", "rs": "INR", "rs.": "INR", "lakh": "INR", "lakhs": "INR",
	"lac": "INR", "lacs": "INR", "lpa": "INR", "yen": "JPY",
}

// salaryCurrencyRe finds currency marks: group 1 a prefixed dollar (C$,
// A$, NZ$…), group 2 a symbol, group 3 a code or word. A code may follow
// a "k" glued to a number ("45keur").
var salaryCurrencyRe = regexp.MustCompile(`(?:^|[^\pL])((?:us|usd|c|ca|cad|a|au|aud|nz|s|sgd|hk|r|mx)\$)` +
	`|([€£₹¥₩₽₺₱$]|zł)` +
	`|(?:^|[^\pL]|[0-9]k)(` + strings.Join(salaryCodes, "|") +
	`|euros?|dollars?|pounds?|sterling|fr\.|sfr|franken|złotych|zloty|zl|rs\.?|lakhs?|lacs?|lpa|yen)(?:[^\pL]|$)`)

// salaryPer is a period's preposition ("per", "a", "par", "pro", "im",
// "al", "por", "la", "de l'", "pr."); salaryEnd ends a word that may end
// in a letter outside ASCII, which \b does not see; salaryGlued is what
// may stand before an abbreviation glued to its amount ("£18.50ph",
// "£30000pa").
const (
	salaryPer   = `(?:\b(?:per|an?|par|pro|im|al|por|la)\s+|\b(?:de l'|pr\.)\s*)`
	salaryEnd   = `(?:[^\pL]|$)`
	salaryGlued = `(?:^|[^\pL])`
)

// salaryPeriodRes are the written periods; the first in the text wins.
var salaryPeriodRes = []struct {
	period string
	re     *regexp.Regexp
}{
	{SalaryHour, regexp.MustCompile(`/\s*(?:hour|hr|h|heure|stunde|std)` + salaryEnd + `|` + salaryPer + `(?:hour|hr|heure|stunde)` + salaryEnd +
		`|` + salaryGlued + `ph\b|\bhourly\b|\bhoraire\b|\bstündlich|\bstundenlohn\b`)},
	{SalaryDay, regexp.MustCompile(`/\s*(?:day|d|jour|j|tag)` + salaryEnd + `|` + salaryPer + `(?:day|jour|tag)` + salaryEnd +
		`|\bdaily\b|\bday rate\b|\bjournalier\b|\btjm\b|\btagessatz\b`)},
	{SalaryWeek, regexp.MustCompile(`/\s*(?:week|wk|w|semaine|woche)` + salaryEnd + `|` + salaryPer + `(?:week|semaine|woche)` + salaryEnd +
		`|` + salaryGlued + `pw\b|\bweekly\b|\bhebdomadaire\b|\bwöchentlich`)},
	{SalaryMonth, regexp.MustCompile(`/\s*(?:month|mo|m|mth|mois|monat|mes|mies|mån|månad|月)` + salaryEnd + `|` + salaryPer + `(?:month|mois|monat|mes|måned|månad)` + salaryEnd +
		`|` + salaryGlued + `pm\b|\bmonthly\b|\bmiesięcznie|\bmensuel(?:le)?s?\b|\bmensual\b|\bmonatlich\b|` + salaryGlued + `pcm\b|\bmtl\.`)},
	{SalaryYear, regexp.MustCompile(`/\s*(?:year|yr|y|an|année|annee|jahr|año|ano|annum|år|年)` + salaryEnd + `|` + salaryPer + `(?:year|annum|an|année|annee|jahr|año|ano|år)` + salaryEnd +
		`|\bp\.\s?a\.?|` + salaryGlued + `pa\b|\bannual(?:ly)?\b|\byearly\b|\bannuel(?:le)?s?\b|\banual\b|\bjährlich|\bjahresgehalt\b|\blpa\b|\bctc\b`)},
}

// salaryNoiseRe finds numbers that are not amounts: counts of payments
// ("sur 12.0 mois", "13 months"), a 13th month, hours or days of work
// (with their "per week"), years of experience, percentages, dates
// (2026-07-01, 01/07/2026, 1.7.2026) and the American 401(k).
var salaryNoiseRe = regexp.MustCompile(`(?:\b(?:sur|over|x|on)\s+)?\d+(?:[.,]\d+)?\s*(?:mois|months?|monate?n?|mensualités|payments)` + salaryEnd +
	`|\d+\s*(?:st|nd|rd|th|e|ème|eme)\s+(?:mois|month)\b` +
	`|\d+(?:[.,]\d+)?\s*\+?\s*(?:hours?|hrs|heures|h|stunden|std|days|jours|j|tage)\b(?:\s*(?:/|per|a|par|pro)\s*(?:week|semaine|woche|wk|month|mois|monat|year|an)\b)?` +
	`|\d+\s*\+?\s*(?:years?|yrs?|ans|années|annees|jahre)` + salaryEnd +
	`|\d+(?:[.,]\d+)?\s*%` +
	`|\b401\s*\(?k\)?` +
	`|\b\d{4}-\d{1,2}-\d{1,2}\b|\b\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\b`)

// salaryAhead is an amount ahead, after at most a currency mark: a bound
// ("from", "up to") counts only before its amount ("remote from Europe"
// is none).
const salaryAhead = `\s*(?:[^\pL\pN\s]{1,3}|\pL{1,3}\$?)?\s*\d`

// salaryNoteRes are the notes and how they are written; "max" also
// counts after its amount ("$75/hr max").
var salaryNoteRes = []struct {
	note string
	re   *regexp.Regexp
}{
	{"ote", regexp.MustCompile(`\bote\b|\bon[- ]target\b`)},
	{"from", regexp.MustCompile(`(?:\bfrom|\bstarting (?:at|from)|[àa] partir de|\bdès|\bab|\bmindestens|\bdesde|\bmin(?:imum|\.)?)` + salaryEnd + salaryAhead)},
	{"up_to", regexp.MustCompile(`(?:\bup to|\bupto|\bjusqu'?\s?[àa]|\bbis zu|\bhasta|\bmax(?:imum|\.)?)` + salaryEnd + salaryAhead +
		`|\bmax(?:imum)?\b\.?\s*(?:$|[,;)])`)},
	{"equity", regexp.MustCompile(`\bequity\b|\bstock options?\b|\bshares\b|\brsus?\b|\bbspce\b|\bbsa\b|\bvirtual shares\b`)},
	{"bonus", regexp.MustCompile(`\bbonus\b|\bprime\b|\bcommission\b`)},
	{"net", regexp.MustCompile(`\bnet\b|\bnetto\b`)},
}

// salaryRangeWords are what may stand between the two amounts of a range,
// once currency marks and spaces are removed.
var salaryRangeWords = map[string]bool{
	"-": true, "--": true, "to": true, "à": true, "a": true, "bis": true, "and": true, "et": true,
	"y": true, "~": true, "..": true, "upto": true, "jusqu'à": true, "jusqu'a": true, "till": true,
	"until": true, "through": true, "-to-": true, "/-": true,
}

// ParseSalary reads the salary text of an offer: at most its first 4 KiB,
// lower-cased, with HTML tags dropped, entities decoded and invalid UTF-8
// read as spaces.
//
// Amounts are numbers with their thousands separators (",", ".", "'",
// a space, the Indian 12,00,000) and decimal mark ("31,2k", "2275.0"): a
// single "," or "." followed by exactly three digits groups thousands,
// otherwise it is the decimal mark. A "k" multiplies by 1,000, "lakh" or
// "LPA" by 100,000, and a multiplier written on one end of a range applies
// to the other ("25 - 45 k€", "$80-100k"). Two amounts joined by a dash,
// "to", "à", "bis", "and"… make a range (Min, Max in order); otherwise the
// first amount is Min and Max. Numbers that count something else are not
// amounts: "sur 12.0 mois", "13th month", "40 hours/week", "5+ years",
// percentages, dates, 401(k), and a number glued after a word that is not
// a currency ("B2B", "k8s"). The salary starts at the first amount marked
// by a currency or a multiplier, or at a bare amount joined to it in a
// range; when none is marked, at the first amount ("3 positions, $80k"
// pays $80k; "45 - 55 k€" is a range).
//
// The currency is the first mark in the text: a symbol ("$" is USD unless
// prefixed: C$, A$, NZ$…), an ISO code or a word (euros, dollars, pounds,
// Rs, lakh); "" when none ("kr", shared by three currencies, is not
// read). The period is the first written one ("/hr", "per hour", "horaire", "mensuel", "p.a.", "par an", "annuel",
// "jährlich"…) that precedes any amount after the range ("€60k (€5k/month)"
// is yearly); when none is written it is inferred from the larger
// amount, divided by the currency's salary level, with the Salary*Below
// thresholds, and PeriodInferred is set. Notes are read anywhere in the
// text, but "from" and "up_to" only for a single amount ("from $70k to
// $90k" is a range).
//
// ok is false, with a zero Salary, when the text states no positive
// amount ("Competitive", "DOE", "Negotiable", "0", empty) or its first
// amount is negative ("-50k"). Implausible amounts ("€1", "999999999
// EUR") are read as written: Annual refuses them by the bounds of its
// rate table.
func ParseSalary(text string) (s Salary, ok bool) {
	n := salaryNormalize(text)
	n = salaryNoiseRe.ReplaceAllStringFunc(n, func(m string) string { return strings.Repeat(" ", len(m)) })
	amounts := salaryAmounts(n)
	// The salary starts at the first amount marked by a currency or a
	// multiplier, or at the bare one joined to it ("25 - 45 k€"): "3
	// positions, $80k" pays $80k.
	if i := slices.IndexFunc(amounts, func(a salaryAmount) bool { return salaryMarked(n, a) }); i > 0 {
		if !salaryJoined(n[amounts[i-1].end:amounts[i].start]) {
			amounts = amounts[i:]
		} else {
			amounts = amounts[i-1:]
		}
	}
	if len(amounts) == 0 || amounts[0].negative {
		return Salary{}, false
	}
	a := amounts[0]
	s.Min, s.Max = a.value(), a.value()
	ranged, next := false, 1
	if len(amounts) > 1 && salaryJoined(n[a.end:amounts[1].start]) {
		b := amounts[1]
		switch {
		case a.mult == 1 && b.mult > 1 && a.raw < 1000:
			a.mult = b.mult
		case b.mult == 1 && a.mult > 1 && b.raw < 1000:
			b.mult = a.mult
		}
		s.Min, s.Max = a.value(), b.value()
		if s.Min > s.Max {
			s.Min, s.Max = s.Max, s.Min
		}
		ranged, next = true, 2
	}
	if math.IsInf(s.Max, 0) || math.IsNaN(s.Max) || math.IsInf(s.Min, 0) || s.Min <= 0 {
		return Salary{}, false
	}
	s.Currency = salaryCurrency(n)
	// A period written after a further amount is that amount's:
	// "€60k (€5k/month)" is yearly.
	limit := len(n)
	if next < len(amounts) {
		limit = amounts[next].start
	}
	s.Period = salaryWrittenPeriod(n, limit)
	if s.Period == "" {
		s.Period, s.PeriodInferred = salaryInferPeriod(s.Max, s.Currency), true
	}
	for _, nr := range salaryNoteRes {
		if (nr.note == "from" || nr.note == "up_to") && ranged {
			continue
		}
		if nr.re.MatchString(n) {
			s.Notes = append(s.Notes, nr.note)
		}
	}
	slices.Sort(s.Notes)
	return s, true
}

// salaryTagRe finds HTML tags.
var salaryTagRe = regexp.MustCompile(`<[^<>]{0,256}>`)

// salaryNormalize cuts text to salaryMaxText bytes, drops HTML tags,
// decodes HTML entities, turns invalid UTF-8 into spaces, lower-cases it,
// and maps dashes to a hyphen-minus, typographic quotes to an apostrophe,
// and spaces and control characters to a space.
func salaryNormalize(text string) string {
	if len(text) > salaryMaxText {
		cut := salaryMaxText
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut]
	}
	text = strings.ToValidUTF8(text, " ")
	if strings.ContainsRune(text, '<') {
		text = salaryTagRe.ReplaceAllString(text, " ")
	}
	if strings.ContainsRune(text, '&') {
		text = html.UnescapeString(text)
	}
	text = strings.ToLower(text)
	return strings.Map(func(r rune) rune {
		switch {
		case r == '‐' || r == '‑' || r == '‒' || r == '–' || r == '—' || r == '―' || r == '−' || r == '﹣' || r == '－':
			return '-'
		case r == '’' || r == '‘' || r == 'ʼ' || r == '′' || r == '`' || r == '´':
			return '\''
		case r == utf8.RuneError || unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Zs, r):
			return ' '
		}
		return r
	}, text)
}

// salaryAmount is one number of a salary text.
type salaryAmount struct {
	raw, mult  float64
	start, end int // bytes of the number and its multiplier in the text
	negative   bool
}

func (a salaryAmount) value() float64 { return a.raw * a.mult }

// salaryAmounts finds the positive numbers of the normalized text n with
// their multipliers, in order; a number glued after a word that is not a
// currency ("b2b", "k8s") is not an amount.
func salaryAmounts(n string) []salaryAmount {
	var out []salaryAmount
	for i := 0; i < len(n) && len(out) < 8; {
		if !salaryDigit(n, i) {
			i++
			continue
		}
		raw, end := salaryNumber(n, i)
		start := i
		i = end
		if w := salaryWordBefore(n, start); w != "" && salaryCurrencyWords[w] == "" && !slices.Contains(salaryCodes, w) {
			continue
		}
		if raw <= 0 || math.IsInf(raw, 0) || math.IsNaN(raw) {
			continue
		}
		a := salaryAmount{raw: raw, mult: 1, start: start, end: end}
		a.negative = start > 0 && n[start-1] == '-' && (start == 1 || !salaryWordByte(n[start-2]))
		a.mult, a.end = salaryMultiplier(n, end)
		i = a.end
		out = append(out, a)
	}
	return out
}

func salaryDigit(n string, i int) bool { return i >= 0 && i < len(n) && n[i] >= '0' && n[i] <= '9' }

func salaryWordByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 0x80
}

// salaryWordBefore is the run of letters glued before byte i of n.
func salaryWordBefore(n string, i int) string {
	j := i
	for j > 0 {
		r, size := utf8.DecodeLastRuneInString(n[:j])
		if !unicode.IsLetter(r) && r != '.' {
			break
		}
		j -= size
	}
	return strings.TrimLeft(n[j:i], ".")
}

// salaryNumber reads the number starting at byte i of n (a digit) and
// returns its value and where it ends.
func salaryNumber(n string, i int) (float64, int) {
	type group struct {
		sep    byte // separator before the digits; 0 for the first group
		digits string
	}
	run := func(j int) int {
		for j < len(n) && salaryDigit(n, j) {
			j++
		}
		return j
	}
	end := run(i)
	groups := []group{{digits: n[i:end]}}
	for end < len(n) && len(groups) < 64 {
		sep := n[end]
		if sep != ',' && sep != '.' && sep != '\'' && sep != ' ' || !salaryDigit(n, end+1) {
			break
		}
		next := run(end + 1)
		if sep == ' ' && (next-end-1 != 3 || len(groups[len(groups)-1].digits) > 3) {
			break
		}
		groups = append(groups, group{sep, n[end+1 : next]})
		end = next
	}
	// The decimal mark is the last separator when it is "," or ".", differs
	// from all before it or is alone, and is not followed by exactly three
	// digits when alone.
	last := len(groups) - 1
	dec := -1
	if last > 0 {
		g := groups[last]
		same := 0
		for _, h := range groups[1:last] {
			if h.sep == g.sep {
				same++
			}
		}
		switch {
		case g.sep != ',' && g.sep != '.':
		case last == 1 && (len(g.digits) != 3 || groups[0].digits == "0"):
			dec = last
		case last > 1 && same == 0:
			dec = last
		}
	}
	thousands := last
	if dec > 0 {
		thousands = dec - 1
	}
	// Groups of thousands: three digits each, or the Indian two-digit
	// groups before a last three.
	for k := 1; k <= thousands; k++ {
		d := len(groups[k].digits)
		if d != 3 && (d != 2 || k == thousands) {
			// Not a grouped number: read the first group alone.
			v, err := strconv.ParseFloat(groups[0].digits, 64)
			if err != nil {
				v = math.Inf(1)
			}
			return v, i + len(groups[0].digits)
		}
	}
	var b strings.Builder
	for k, g := range groups {
		if k == dec {
			b.WriteByte('.')
		}
		b.WriteString(g.digits)
	}
	v, err := strconv.ParseFloat(b.String(), 64)
	if err != nil {
		v = math.Inf(1)
	}
	return v, end
}

// salaryMultiplier reads a multiplier after the number ending at byte i
// of n: "k" (1,000), "lakh", "lakhs", "lac", "lacs" or "lpa" (100,000),
// glued or after one space, and returns it with where it ends; 1 and i
// when there is none.
func salaryMultiplier(n string, i int) (float64, int) {
	j := i
	if j < len(n) && n[j] == ' ' {
		j++
	}
	k := j
	for k < len(n) && n[k] >= 'a' && n[k] <= 'z' {
		k++
	}
	word := n[j:k]
	switch {
	case word == "k":
		return 1000, k
	case len(word) == 4 && word[0] == 'k' && slices.Contains(salaryCodes, word[1:]):
		return 1000, j + 1
	case word == "lakh" || word == "lakhs" || word == "lac" || word == "lacs" || word == "lpa":
		return 100000, k
	}
	return 1, i
}

// salaryMarked tells whether amount a of n has a multiplier or a currency
// mark right before or after it.
func salaryMarked(n string, a salaryAmount) bool {
	if a.mult > 1 {
		return true
	}
	before := strings.TrimRight(n[max(0, a.start-12):a.start], " ")
	for _, loc := range salaryCurrencyRe.FindAllStringSubmatchIndex(before, -1) {
		for g := 2; g < len(loc); g += 2 {
			if loc[g+1] == len(before) {
				return true
			}
		}
	}
	after := strings.TrimLeft(n[a.end:min(len(n), a.end+12)], " ")
	start, _ := salaryCurrencyMark(after)
	return start == 0
}

// salaryJoined tells whether between, the text between two amounts, joins
// them in a range once currency marks and periods are dropped ("€50k/year
// - €60k/year").
func salaryJoined(between string) bool {
	if len(between) > 64 {
		return false
	}
	rest := between
	for range 4 {
		start, end := salaryCurrencyMark(rest)
		if start < 0 {
			break
		}
		rest = rest[:start] + " " + rest[end:]
	}
	for _, p := range salaryPeriodRes {
		rest = p.re.ReplaceAllString(rest, " ")
	}
	rest = strings.ReplaceAll(rest, " ", "")
	return rest == "" || salaryRangeWords[rest]
}

// salaryShared are the symbols several currencies write, with the codes
// that may make them precise.
var salaryShared = map[string][]string{
	"$": {"USD", "CAD", "AUD", "NZD", "SGD", "HKD", "MXN", "TWD"},
	"¥": {"JPY", "CNY"},
}

// salaryCurrency is the code of the first currency mark of n, "" when
// none; a "$" or "¥" yields to a later code of a currency that writes it
// ("$120,000 AUD", but "$80k (€72k)" is in dollars).
func salaryCurrency(n string) string {
	code, shared := "", []string(nil)
	for range 8 {
		start, end := salaryCurrencyMark(n)
		if start < 0 {
			break
		}
		mark := n[start:end]
		c, ok := salaryCurrencyWords[mark]
		if !ok {
			c = strings.ToUpper(mark)
		}
		switch {
		case code == "":
			code, shared = c, salaryShared[mark]
			if shared == nil {
				return code
			}
		case slices.Contains(shared, c) && salaryShared[mark] == nil:
			return c
		}
		n = n[end:]
	}
	return code
}

// salaryCurrencyMark is where the first currency mark of n starts and
// ends; -1, -1 when there is none.
func salaryCurrencyMark(n string) (start, end int) {
	loc := salaryCurrencyRe.FindStringSubmatchIndex(n)
	if loc == nil {
		return -1, -1
	}
	for g := 1; g < len(loc)/2; g++ {
		if loc[2*g] >= 0 {
			return loc[2*g], loc[2*g+1]
		}
	}
	return -1, -1
}

// salaryWrittenPeriod is the first period written in n that starts
// before byte limit, "" when none.
func salaryWrittenPeriod(n string, limit int) string {
	period, at := "", limit
	for _, p := range salaryPeriodRes {
		if loc := p.re.FindStringIndex(n); loc != nil && loc[0] < at {
			period, at = p.period, loc[0]
		}
	}
	return period
}

// salaryInferPeriod reads a period from the magnitude of amount in
// currency: see the Salary*Below thresholds.
func salaryInferPeriod(amount float64, currency string) string {
	if l, ok := salaryLevel[currency]; ok {
		amount /= l
	}
	switch {
	case amount < SalaryInferHourBelow:
		return SalaryHour
	case amount < SalaryInferDayBelow:
		return SalaryDay
	case amount < SalaryInferMonthBelow:
		return SalaryMonth
	}
	return SalaryYear
}

// salaryStructuredPeriods maps the period words of structured fields
// (JSON-LD unitText, lower-cased) to a period.
var salaryStructuredPeriods = map[string]string{
	"hour": SalaryHour, "hours": SalaryHour, "hourly": SalaryHour, "per hour": SalaryHour, "h": SalaryHour,
	"day": SalaryDay, "days": SalaryDay, "daily": SalaryDay, "per day": SalaryDay, "d": SalaryDay,
	"week": SalaryWeek, "weeks": SalaryWeek, "weekly": SalaryWeek, "per week": SalaryWeek, "w": SalaryWeek,
	"month": SalaryMonth, "months": SalaryMonth, "monthly": SalaryMonth, "per month": SalaryMonth, "m": SalaryMonth,
	"year": SalaryYear, "years": SalaryYear, "yearly": SalaryYear, "annual": SalaryYear, "annually": SalaryYear,
	"per year": SalaryYear, "per annum": SalaryYear, "y": SalaryYear, "a": SalaryYear,
}

// StructuredSalary reads an offer's structured salary fields, each as
// the text of the raw record's field: min and max amounts (RemoteOK's
// salary_min and salary_max, Adzuna's floats, JSON-LD baseSalary
// minValue and maxValue), where empty, "0", a negative, a non-finite or an
// unreadable number means unknown; currency an ISO 4217 code or a symbol
// ("" when not given); period a JSON-LD unitText (HOUR, DAY, WEEK, MONTH,
// YEAR, any case) or hourly, monthly, annual…; predicted Adzuna's
// salary_is_predicted, "1", "1.0" or "true" for an estimate.
//
// One known amount gives Min == Max; two are put in order. Without a
// period, it is inferred from the magnitude as by ParseSalary, and
// PeriodInferred is set. A predicted salary carries the note "predicted".
// ok is false, with a zero Salary, when neither amount is known.
func StructuredSalary(min, max, currency, period, predicted string) (s Salary, ok bool) {
	lo, hi := salaryField(min), salaryField(max)
	switch {
	case lo == 0 && hi == 0:
		return Salary{}, false
	case lo == 0:
		lo = hi
	case hi == 0:
		hi = lo
	}
	s.Min, s.Max = math.Min(lo, hi), math.Max(lo, hi)
	s.Currency = salaryCurrencyCode(currency)
	s.Period = salaryStructuredPeriods[strings.ToLower(strings.TrimSpace(salaryNormalize(period)))]
	if s.Period == "" {
		s.Period, s.PeriodInferred = salaryInferPeriod(s.Max, s.Currency), true
	}
	switch strings.ToLower(strings.TrimSpace(salaryNormalize(predicted))) {
	case "1", "1.0", "true":
		s.Predicted = true
		s.Notes = []string{"predicted"}
	}
	return s, true
}

// salaryField reads one structured amount: a plain number ("85000",
// "85000.0", "8.5e4") or one written as ParseSalary reads them
// ("85,000", "85k"); 0 when unknown.
func salaryField(text string) float64 {
	if len(text) > salaryMaxText {
		return 0
	}
	text = strings.TrimSpace(text)
	if len(text) > 64 {
		return 0
	}
	v, err := strconv.ParseFloat(text, 64)
	if err != nil {
		n := salaryNormalize(text)
		a := salaryAmounts(n)
		if len(a) != 1 || a[0].negative || strings.Trim(n[:a[0].start]+n[a[0].end:], " ") != "" {
			return 0
		}
		v = a[0].value()
	}
	if v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0
	}
	return v
}

// salaryCurrencyCode reads a structured currency: a three-letter code
// (any case) or a mark ParseSalary knows ("$", "€", "euros"); "" otherwise.
func salaryCurrencyCode(text string) string {
	if len(text) > salaryMaxText {
		return ""
	}
	text = strings.TrimSpace(text)
	if len(text) == 3 && strings.IndexFunc(text, func(r rune) bool { return r < 'A' || r > 'Z' && r < 'a' || r > 'z' }) < 0 {
		return strings.ToUpper(text)
	}
	if len(text) > 16 {
		return ""
	}
	n := salaryNormalize(text)
	if c, ok := salaryCurrencyWords[n]; ok {
		return c
	}
	return ""
}

// SalaryRates converts currencies to one reference currency, as of a
// date. It is declared with the dataset:
//
//	{"date": "2026-07-01", "to": "EUR", "per": {"USD": 0.92, "GBP": 1.17},
//	 "min": 5000, "max": 2000000}
//
// reads one USD as 0.92 EUR. Min and Max, when not 0, bound a plausible
// annual salary in To: Annual refuses amounts outside them ("€1",
// "999999999 EUR").
type SalaryRates struct {
	Date string             `json:"date"`
	To   string             `json:"to"`
	Per  map[string]float64 `json:"per"`
	Min  float64            `json:"min,omitempty"`
	Max  float64            `json:"max,omitempty"`
}

// Annual is the salary's min and max per year in rates.To: an hourly
// amount times SalaryHoursPerYear (2080: 40 h × 52 weeks), a daily one
// times SalaryDaysPerYear (260), a weekly one times 52, a monthly one
// times 12, converted with rates.Per. def is the currency assumed when
// none is written (e.g. "EUR" for a French board), "" for none.
//
// ok is false when the salary has no amount, its period is unknown, its
// currency (or def) is neither rates.To nor in rates.Per with a positive
// rate, or, when rates.Min or rates.Max is set, the annual min is below
// rates.Min or the annual max above rates.Max.
func (s Salary) Annual(rates SalaryRates, def string) (min, max float64, ok bool) {
	per, known := salaryPerYear[s.Period]
	if !known || s.Max <= 0 || s.Min < 0 {
		return 0, 0, false
	}
	cur := s.Currency
	if cur == "" {
		cur = def
	}
	rate := 1.0
	if cur != rates.To {
		rate = rates.Per[cur]
	}
	if cur == "" || !(rate > 0) || math.IsInf(rate, 0) {
		return 0, 0, false
	}
	min, max = s.Min*per*rate, s.Max*per*rate
	if math.IsInf(max, 0) || math.IsNaN(max) || math.IsNaN(min) ||
		rates.Min > 0 && min < rates.Min || rates.Max > 0 && max > rates.Max {
		return 0, 0, false
	}
	return min, max, true
}
