// Package rules cleans raw records into typed ones by rules that each
// dataset declares in its clean schema: every field of the clean record
// may carry a "datamill.clean" attribute saying how its value is read from
// the raw record, which values are valid, and what an invalid value gets.
//
//	{"name": "age", "type": ["null", "int"], "default": null,
//	 "datamill.clean": {"type": "int", "min": 0, "max": 120}}
//
// Attribute keys:
//
//	type        int, string, enum, country, email, date, decimal, text,
//	            company_key, salary, locations, title, fingerprint
//	from        raw field to read (default: the field's own name)
//	required    a missing or invalid value rejects the record
//	on_invalid  "null" (default): the field is set to null and flagged in
//	            quality_flags as field:problem; "reject": the record is
//	            rejected with the reason
//	min, max    bounds (int and decimal: numbers; date: "2006-01-02")
//	values      enum: canonical value → its accepted spellings
//	not_before  date: a field this date may not precede
//	epoch       date: seconds (10 digits) or milliseconds (13) since 1970
//	            are dates too
//	html        text: the value is HTML, converted to plain text
//	drop_lines  text: regexps of lines to drop (an anti-spam line)
//	part        salary: min, max, currency, period, period_inferred,
//	            notes, annual_min, annual_max, annual, stated; title:
//	            norm, seniority, family
//	structured  salary: raw fields of a structured salary by role (min,
//	            max, currency, period, predicted), which win over the text
//	prefer      title family: a raw field whose value, when set, is the
//	            family (a family the source gives itself)
//	of          fingerprint: the clean fields it hashes
//
// The new types read what job offers carry. text cleans text (CleanText:
// a BOM, mojibake, HTML, entities, NFKC, spaces); company_key is a company
// name for matching (CompanyKey: legal forms stripped); salary reads a
// salary (StructuredSalary, else ParseSalary) and takes one part of it,
// the annual ones in the reference currency of the record's rates;
// locations reads country and region codes into an array (Locations);
// title reads a title's normal form, seniority and job family
// (ParseTitle); fingerprint hashes clean values, so that records that
// agree on them share it, and is null when one of them is.
//
// The record's "datamill.rules" attribute holds the tables the rules
// share: {"salary": {"rates": {"date", "to", "per": {currency: rate}},
// "currency": the one assumed when a salary names none}, "job_families":
// [{"family", "patterns": [...]}]} (DefaultJobFamilies without it). A field
// whose type cannot be null (an array, a boolean) holds [] or false
// instead of null.
//
// Values are trimmed and their inner whitespace collapsed first. Text is
// validated here, the same way whatever format the record came in: a value
// that is not valid UTF-8 (invalid_utf8) or holds a NUL byte (nul_byte),
// which PostgreSQL cannot store as text, is invalid. A number too large for
// its type (int, long, a decimal's precision) is out_of_range. Fields
// without the attribute are not read from the raw record (the envelope:
// event id, time, hash).
package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hamba/avro/v2"

	"github.com/datamill/datamill/schemas"
)

// Attribute is the name of the schema attribute holding a field's rule.
const Attribute = "datamill.clean"

// TablesAttribute is the name of the clean record's attribute holding the
// tables its rules share: the salary rates and the job families.
const TablesAttribute = "datamill.rules"

// Rules clean the records of one dataset.
type Rules struct {
	fields    []*field
	countries map[string]string
	// rates convert salaries to one currency; currency is the one
	// assumed when a salary names none; families map titles to families.
	rates    SalaryRates
	currency string
	families *Families
}

type field struct {
	name, from, kind string
	required, reject bool
	min, max         *float64
	minDate, maxDate *time.Time
	values           map[string]string // folded spelling → canonical
	notBefore        string
	long             bool // the Avro type is long, not int
	precision        int  // digits of a decimal type, 0 if none
	scale            int  // of a decimal type
	// part is which value of a salary or a title the field takes.
	part string
	// text: html converts the value from HTML; dropLines are regexps of
	// lines to drop.
	html      bool
	dropLines []string
	// structured are a salary's structured raw fields, by role: min,
	// max, currency, period, predicted.
	structured map[string]string
	// of are the clean fields a fingerprint hashes.
	of []string
	// prefer is a raw field whose value, when set, is a title family's
	// (a family the source gives itself).
	prefer string
	// epoch: a date may be written as seconds (or milliseconds) since 1970.
	epoch bool
	// array and boolean: the Avro type, not nullable, is one.
	array, boolean bool
}

// zero is what a field holds without a valid value: null, or for a field
// that cannot be null an empty array or false.
func (f *field) zero() any {
	switch {
	case f.array:
		return []string{}
	case f.boolean:
		return false
	}
	return nil
}

// readsWords are the kinds that read words out of text, and read them
// around bytes that are not UTF-8 (replaced by U+FFFD, and flagged)
// rather than call the value invalid.
var readsWords = map[string]bool{"text": true, "company_key": true, "locations": true, "title": true}

// Parts of the salary and title rules, by kind.
var parts = map[string][]string{
	"salary": {"min", "max", "currency", "period", "period_inferred", "notes", "annual_min", "annual_max", "annual", "stated"},
	"title":  {"norm", "seniority", "family"},
}

// structuredRoles are the keys of a salary rule's structured fields.
var structuredRoles = []string{"min", "max", "currency", "period", "predicted"}

// Compile reads the rules declared in a clean schema.
func Compile(schema avro.Schema) (*Rules, error) {
	rec, ok := schema.(*avro.RecordSchema)
	if !ok {
		return nil, errors.New("rules: the clean schema must be a record")
	}
	r := &Rules{countries: countryIndex()}
	var errs []error
	if err := r.tables(rec.Prop(TablesAttribute)); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", TablesAttribute, err))
	}
	for _, f := range rec.Fields() {
		spec, ok := f.Prop(Attribute).(map[string]any)
		if !ok {
			continue
		}
		fl, err := compileField(f.Name(), spec)
		if err != nil {
			errs = append(errs, fmt.Errorf("field %s: %w", f.Name(), err))
			continue
		}
		fl.long = isLong(f.Type())
		fl.array = f.Type().Type() == avro.Array
		fl.boolean = f.Type().Type() == avro.Boolean
		fl.precision, fl.scale = decimalOf(f.Type())
		r.fields = append(r.fields, fl)
	}
	names := map[string]bool{}
	for _, f := range r.fields {
		names[f.name] = true
	}
	for _, f := range r.fields {
		if f.notBefore != "" && !names[f.notBefore] {
			errs = append(errs, fmt.Errorf("field %s: not_before names no ruled field %q", f.name, f.notBefore))
		}
		for _, o := range f.of {
			if !names[o] || o == f.name {
				errs = append(errs, fmt.Errorf("field %s: of names no other ruled field %q", f.name, o))
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("rules in %s: %w", rec.FullName(), errors.Join(errs...))
	}
	return r, nil
}

func compileField(name string, spec map[string]any) (*field, error) {
	f := &field{name: name, from: name}
	for k, v := range spec {
		var err error
		switch k {
		case "type":
			f.kind, err = asString(v)
		case "from":
			f.from, err = asString(v)
		case "required":
			f.required, err = asBool(v)
		case "on_invalid":
			var s string
			s, err = asString(v)
			if s != "null" && s != "reject" {
				err = fmt.Errorf("on_invalid %q: want null or reject", s)
			}
			f.reject = s == "reject"
		case "min", "max":
			err = f.bound(k, v)
		case "values":
			err = f.enum(v)
		case "not_before":
			f.notBefore, err = asString(v)
		case "part":
			f.part, err = asString(v)
		case "html":
			f.html, err = asBool(v)
		case "drop_lines":
			if f.dropLines, err = asStrings(v); err == nil {
				if verr := (TextOptions{DropLines: f.dropLines}).Validate(); verr != nil {
					err = fmt.Errorf("drop_lines: %w", verr)
				}
			}
		case "structured":
			m, ok := v.(map[string]any)
			if !ok {
				err = errors.New("structured: want an object of role → raw field")
				break
			}
			f.structured = map[string]string{}
			for role, field := range m {
				if !slices.Contains(structuredRoles, role) {
					err = fmt.Errorf("structured: unknown role %q (known: %s)", role, strings.Join(structuredRoles, ", "))
					break
				}
				if f.structured[role], err = asString(field); err != nil {
					break
				}
			}
		case "of":
			f.of, err = asStrings(v)
		case "epoch":
			f.epoch, err = asBool(v)
		case "prefer":
			f.prefer, err = asString(v)
		default:
			err = fmt.Errorf("unknown key %q", k)
		}
		if err != nil {
			return nil, err
		}
	}
	switch f.kind {
	case "int", "string", "country", "email", "date", "decimal", "text", "company_key", "locations":
	case "enum":
		if len(f.values) == 0 {
			return nil, errors.New("enum without values")
		}
	case "salary", "title":
		if !slices.Contains(parts[f.kind], f.part) {
			return nil, fmt.Errorf("%s: part %q: want one of %s", f.kind, f.part, strings.Join(parts[f.kind], ", "))
		}
	case "fingerprint":
		if len(f.of) == 0 {
			return nil, errors.New("fingerprint: of names no field")
		}
	default:
		return nil, fmt.Errorf("type %q: want int, string, enum, country, email, date, decimal, text, company_key, salary, locations, title or fingerprint", f.kind)
	}
	if f.part != "" && parts[f.kind] == nil {
		return nil, fmt.Errorf("part: only salary and title rules have parts")
	}
	if f.structured != nil && f.kind != "salary" {
		return nil, errors.New("structured: only salary rules read structured fields")
	}
	if (f.html || f.dropLines != nil) && f.kind != "text" {
		return nil, errors.New("html, drop_lines: only text rules take them")
	}
	if f.epoch && f.kind != "date" {
		return nil, errors.New("epoch: only date rules take it")
	}
	if f.prefer != "" && (f.kind != "title" || f.part != "family") {
		return nil, errors.New("prefer: only the family part of a title rule takes it")
	}
	if f.of != nil && f.kind != "fingerprint" {
		return nil, errors.New("of: only fingerprint rules take it")
	}
	return f, nil
}

// tables reads the record's shared tables: {"salary": {"rates": {"date",
// "to", "per": {currency: units of to}}, "currency": assumed}, "job_families":
// [{"family", "patterns": [...]}]}. Without job_families, titles take
// DefaultJobFamilies.
func (r *Rules) tables(v any) error {
	fams := DefaultJobFamilies
	if v != nil {
		m, ok := v.(map[string]any)
		if !ok {
			return errors.New("want an object")
		}
		for k, v := range m {
			var err error
			switch k {
			case "salary":
				err = r.salaryTable(v)
			case "job_families":
				fams, err = familyTable(v)
			default:
				err = fmt.Errorf("unknown key %q (known: salary, job_families)", k)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
	}
	var err error
	r.families, err = CompileFamilies(fams)
	return err
}

func (r *Rules) salaryTable(v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return errors.New("want an object of rates and currency")
	}
	for k, v := range m {
		var err error
		switch k {
		case "currency":
			r.currency, err = asString(v)
		case "rates":
			rates, ok := v.(map[string]any)
			if !ok {
				return errors.New("rates: want an object of date, to and per")
			}
			r.rates.Per = map[string]float64{}
			for k, v := range rates {
				switch k {
				case "date":
					r.rates.Date, err = asString(v)
				case "to":
					r.rates.To, err = asString(v)
				case "min", "max":
					x, ok := v.(float64)
					if !ok || x < 0 {
						return fmt.Errorf("rates.%s: want a yearly amount in the currency they convert to", k)
					}
					if k == "min" {
						r.rates.Min = x
					} else {
						r.rates.Max = x
					}
				case "per":
					per, ok := v.(map[string]any)
					if !ok {
						return errors.New("rates.per: want an object of currency → rate")
					}
					for c, x := range per {
						f, ok := x.(float64)
						if !ok || f <= 0 {
							return fmt.Errorf("rates.per.%s: want a positive number", c)
						}
						r.rates.Per[c] = f
					}
				default:
					err = fmt.Errorf("rates: unknown key %q", k)
				}
				if err != nil {
					return err
				}
			}
			if r.rates.To == "" || r.rates.Date == "" {
				return errors.New("rates: want the date they are of and the currency they convert to")
			}
		default:
			err = fmt.Errorf("unknown key %q (known: rates, currency)", k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func familyTable(v any) ([]FamilyRule, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, errors.New("want a list of {family, patterns}")
	}
	out := make([]FamilyRule, 0, len(list))
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("[%d]: want {family, patterns}", i)
		}
		fam, err := asString(m["family"])
		if err != nil {
			return nil, fmt.Errorf("[%d].family: %w", i, err)
		}
		pats, err := asStrings(m["patterns"])
		if err != nil {
			return nil, fmt.Errorf("[%d].patterns: %w", i, err)
		}
		out = append(out, FamilyRule{Family: fam, Patterns: pats})
	}
	return out, nil
}

func (f *field) bound(k string, v any) error {
	switch x := v.(type) {
	case float64:
		if k == "min" {
			f.min = &x
		} else {
			f.max = &x
		}
	case string:
		d, err := time.Parse(time.DateOnly, x)
		if err != nil {
			return fmt.Errorf("%s %q: want a number or a yyyy-mm-dd date", k, x)
		}
		if k == "min" {
			f.minDate = &d
		} else {
			f.maxDate = &d
		}
	default:
		return fmt.Errorf("%s: want a number or a date", k)
	}
	return nil
}

func (f *field) enum(v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return errors.New("values: want an object of canonical value → spellings")
	}
	f.values = map[string]string{}
	for canonical, spellings := range m {
		f.values[strings.ToLower(canonical)] = canonical
		list, ok := spellings.([]any)
		if !ok {
			return fmt.Errorf("values.%s: want a list of spellings", canonical)
		}
		for _, s := range list {
			str, ok := s.(string)
			if !ok {
				return fmt.Errorf("values.%s: spellings are strings", canonical)
			}
			f.values[strings.ToLower(str)] = canonical
		}
	}
	return nil
}

// Outcome is the result of cleaning one raw record.
type Outcome struct {
	// Values are the clean fields the rules produced, typed for Avro.
	Values map[string]any
	// Flags name the fields set to null because they were invalid.
	Flags []string
	// Reasons are set when the record is rejected: every reason.
	Reasons []string
}

// Rejected reports whether the record must go to the dead-letter topic.
func (o *Outcome) Rejected() bool { return len(o.Reasons) > 0 }

// Apply cleans raw, whose values are the source's strings (or nil).
func (r *Rules) Apply(raw map[string]any) Outcome {
	out := Outcome{Values: make(map[string]any, len(r.fields))}
	var parsed parses // its maps made only by a salary or a title rule
	for _, f := range r.fields {
		if f.kind == "fingerprint" {
			continue // from the clean values, below
		}
		var v any
		var problem string
		in := raw[f.from]
		if s, ok := in.(string); ok && readsWords[f.kind] && !utf8.ValidString(s) {
			// Words read around bad bytes are still words: the bytes
			// become U+FFFD, and the field says so.
			in = strings.ToValidUTF8(s, "\uFFFD")
			out.Flags = append(out.Flags, f.name+":invalid_utf8_replaced")
		}
		switch f.kind {
		case "salary":
			v, problem = r.salary(f, raw, &parsed)
		case "title":
			if p, ok := raw[f.prefer].(string); ok && f.prefer != "" && TextProblem(p) == "" {
				if t := CleanText(p, TextOptions{}); t != "" {
					v = t
					break
				}
			}
			v, problem = r.title(f, in, &parsed)
		default:
			v, problem = r.value(f, in)
		}
		switch {
		case problem == "":
			out.Values[f.name] = v
			continue
		case problem == "missing" && !f.required:
			out.Values[f.name] = f.zero()
			continue
		}
		if f.required || f.reject {
			out.Reasons = append(out.Reasons, fmt.Sprintf("%s: %s%s", f.name, problem, quoted(raw[f.from])))
			continue
		}
		out.Values[f.name] = f.zero()
		out.Flags = append(out.Flags, f.name+":"+problem)
	}
	// Cross-field rules run on the values that survived.
	for _, f := range r.fields {
		if f.kind == "fingerprint" {
			out.Values[f.name] = fingerprint(out.Values, f.of)
		}
		if f.notBefore == "" {
			continue
		}
		v, ok1 := out.Values[f.name].(time.Time)
		lower, ok2 := out.Values[f.notBefore].(time.Time)
		if ok1 && ok2 && v.Before(lower) {
			problem := "before_" + f.notBefore
			if f.reject || f.required {
				out.Reasons = append(out.Reasons, fmt.Sprintf("%s: %s", f.name, problem))
				continue
			}
			out.Values[f.name] = nil
			out.Flags = append(out.Flags, f.name+":"+problem)
		}
	}
	return out
}

func quoted(v any) string {
	s, ok := v.(string)
	if !ok {
		return ""
	}
	if !utf8.ValidString(s) {
		return " (invalid UTF-8)"
	}
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return fmt.Sprintf(" (%q)", s)
}

// rawText is a raw value as text, or the problem that it is none: missing,
// not_text, or what TextProblem says.
func rawText(raw any) (string, string) {
	s, ok := raw.(string)
	if raw == nil || ok && strings.TrimSpace(s) == "" {
		return "", "missing"
	}
	if !ok {
		return "", "not_text"
	}
	return s, TextProblem(s)
}

// value reads and checks one field; problem is "" when the value is valid.
func (r *Rules) value(f *field, raw any) (any, string) {
	s, problem := rawText(raw)
	if problem != "" {
		return nil, problem
	}
	switch f.kind {
	case "text":
		if t := CleanText(s, TextOptions{HTML: f.html, DropLines: f.dropLines}); t != "" {
			return t, ""
		}
		return nil, "missing"
	case "locations":
		return nonNil(Locations(s)), ""
	}
	s = Normalise(s)
	switch f.kind {
	case "string":
		return s, ""
	case "company_key":
		if k := CompanyKey(s); k != "" {
			return k, ""
		}
		return nil, "missing"
	case "int":
		n, err := ParseInt(s)
		if errors.Is(err, strconv.ErrRange) {
			return nil, "out_of_range"
		}
		if err != nil {
			return nil, "not_a_number"
		}
		if out := outOfRange(f, float64(n)); out != "" {
			return nil, out
		}
		if f.long {
			return n, ""
		}
		if n > 1<<31-1 || n < -1<<31 {
			return nil, "out_of_range"
		}
		return int32(n), ""
	case "enum":
		if c, ok := f.values[strings.ToLower(s)]; ok {
			return c, ""
		}
		return nil, "unknown_value"
	case "country":
		if c, ok := r.countries[fold(s)]; ok {
			return c, ""
		}
		return nil, "unknown_country"
	case "email":
		e, ok := Email(s)
		if !ok {
			return nil, "malformed_email"
		}
		return e, ""
	case "date":
		t, _, ok := ParseDate(s)
		if !ok && f.epoch {
			t, ok = parseEpoch(s)
		}
		if !ok {
			return nil, "bad_date"
		}
		d := Day(t)
		if f.minDate != nil && d.Before(*f.minDate) || f.maxDate != nil && d.After(*f.maxDate) {
			return nil, "out_of_range"
		}
		return d, ""
	case "decimal":
		d, ok := ParseDecimal(s)
		if !ok {
			return nil, "not_a_number"
		}
		f64, _ := d.Float64()
		if out := outOfRange(f, f64); out != "" {
			return nil, out
		}
		if f.precision > 0 && !fits(d, f.precision, f.scale) {
			return nil, "out_of_range"
		}
		return d, ""
	}
	return nil, "unknown_type"
}

// TextProblem is the problem of text that no clean record may hold, the
// same for every field: "invalid_utf8" for bytes that are not UTF-8,
// "nul_byte" for a NUL, which PostgreSQL cannot store; "" for good text.
func TextProblem(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "invalid_utf8"
	case strings.IndexByte(s, 0) >= 0:
		return "nul_byte"
	}
	return ""
}

// decimalOf returns the precision and scale of a field's decimal type, or
// of its non-null branch; 0, 0 for other types.
func decimalOf(s avro.Schema) (precision, scale int) {
	if types := schemas.NonNull(s); len(types) > 0 {
		s = types[len(types)-1]
	}
	ls, ok := s.(avro.LogicalTypeSchema)
	if !ok {
		return 0, 0
	}
	if d, ok := ls.Logical().(*avro.DecimalLogicalSchema); ok {
		return d.Precision(), d.Scale()
	}
	return 0, 0
}

// fits reports whether d, at scale decimals, has at most precision digits.
func fits(d *big.Rat, precision, scale int) bool {
	exp := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)
	unscaled := new(big.Int).Mul(d.Num(), exp)
	unscaled.Quo(unscaled, d.Denom())
	return len(unscaled.Abs(unscaled).String()) <= precision
}

// isLong reports whether a field's type, or its non-null branch, is long.
func isLong(s avro.Schema) bool {
	if types := schemas.NonNull(s); len(types) > 0 {
		s = types[len(types)-1]
	}
	return s.Type() == avro.Long
}

func outOfRange(f *field, v float64) string {
	if f.min != nil && v < *f.min || f.max != nil && v > *f.max {
		return "out_of_range"
	}
	return ""
}

// parses are the salaries and titles one Apply read, by raw field, so
// that the fields that take parts of one read it once.
type parses struct {
	salaries map[string]salaryRead
	titles   map[string]Title
}

type salaryRead struct {
	s  Salary
	ok bool
}

// salary is the part of the record's salary that f takes: the structured
// fields when they hold one, else the text of f.from. Parts that are
// always set (stated, period_inferred, notes) are never missing.
func (r *Rules) salary(f *field, raw map[string]any, parsed *parses) (any, string) {
	if parsed.salaries == nil {
		parsed.salaries = map[string]salaryRead{}
	}
	read, done := parsed.salaries[f.from]
	if !done {
		text := func(name string) string {
			s, _ := raw[name].(string)
			if TextProblem(s) != "" {
				return ""
			}
			return s
		}
		if f.structured != nil {
			read.s, read.ok = StructuredSalary(text(f.structured["min"]), text(f.structured["max"]),
				text(f.structured["currency"]), text(f.structured["period"]), text(f.structured["predicted"]))
		}
		if !read.ok {
			if s := text(f.from); s != "" {
				read.s, read.ok = ParseSalary(s)
			}
		}
		parsed.salaries[f.from] = read
	}
	s, ok := read.s, read.ok
	switch f.part {
	case "stated":
		return ok && !s.Predicted, ""
	case "period_inferred":
		return ok && s.PeriodInferred, ""
	case "notes":
		return nonNil(s.Notes), ""
	}
	if !ok {
		return nil, "missing"
	}
	number := func(v float64) (any, string) {
		if out := outOfRange(f, v); out != "" {
			return nil, out
		}
		return v, ""
	}
	switch f.part {
	case "min":
		return number(s.Min)
	case "max":
		return number(s.Max)
	case "currency":
		return orMissing(s.Currency)
	case "period":
		return orMissing(s.Period)
	}
	if s.Predicted {
		return nil, "missing" // an estimate by the source is not a salary stated
	}
	lo, hi, ok := s.Annual(r.rates, r.currency)
	if !ok {
		return nil, "no_annual_amount"
	}
	switch f.part {
	case "annual_min":
		return number(lo)
	case "annual_max":
		return number(hi)
	}
	return number((lo + hi) / 2)
}

// title is the part of the title of raw that f takes.
func (r *Rules) title(f *field, raw any, parsed *parses) (any, string) {
	s, problem := rawText(raw)
	if problem != "" {
		return nil, problem
	}
	if parsed.titles == nil {
		parsed.titles = map[string]Title{}
	}
	t, done := parsed.titles[f.from]
	if !done {
		t = ParseTitle(CleanText(s, TextOptions{}), r.families)
		parsed.titles[f.from] = t
	}
	switch f.part {
	case "norm":
		return orMissing(t.Norm)
	case "seniority":
		return orMissing(t.Seniority)
	}
	return orMissing(t.Family)
}

// fingerprint hashes the clean values of the fields of, so that records
// whose values agree share it: the first 16 bytes of a SHA-256, in hex;
// nil when one of the values is missing, since records that say less
// cannot be told to be the same.
func fingerprint(values map[string]any, of []string) any {
	h := sha256.New()
	for _, name := range of {
		switch v := values[name].(type) {
		case nil:
			return nil
		case []string:
			h.Write([]byte(strings.Join(v, ",")))
		default:
			fmt.Fprint(h, v)
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// parseEpoch reads seconds since 1970 (10 digits) or milliseconds (13).
func parseEpoch(s string) (time.Time, bool) {
	if len(s) != 10 && len(s) != 13 {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	if len(s) == 13 {
		return time.UnixMilli(n).UTC(), true
	}
	return time.Unix(n, 0).UTC(), true
}

func orMissing(s string) (any, string) {
	if s == "" {
		return nil, "missing"
	}
	return s, ""
}

// nonNil is list, or an empty list for nil: an array field is never null.
func nonNil(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

func asStrings(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%v: want a list of strings", v)
	}
	out := make([]string, len(list))
	for i, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("%v: want a list of strings", v)
		}
		out[i] = s
	}
	return out, nil
}

func asString(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%v: want a string", v)
	}
	return s, nil
}

func asBool(v any) (bool, error) {
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("%v: want true or false", v)
	}
	return b, nil
}

// Hash returns the hex SHA-256 of a clean record's content: its ruled
// values in field order, each with its field's name, and its flags, not
// its envelope. Two events with the same hash for the same key carry the
// same content. A null value adds nothing, so that a field added to the
// schema leaves the hash of the records without it as it was.
func (r *Rules) Hash(o Outcome) string {
	h := sha256.New()
	for _, f := range r.fields {
		v := o.Values[f.name]
		if v == nil {
			continue
		}
		h.Write([]byte(f.name))
		h.Write([]byte{0})
		switch v := v.(type) {
		case time.Time:
			h.Write([]byte(v.Format(time.DateOnly)))
		case *big.Rat:
			h.Write([]byte(v.FloatString(2)))
		default:
			fmt.Fprint(h, v)
		}
		h.Write([]byte{0})
	}
	for _, flag := range o.Flags {
		h.Write([]byte(flag))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
