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
//	type        int, string, enum, country, email, date, decimal
//	from        raw field to read (default: the field's own name)
//	required    a missing or invalid value rejects the record
//	on_invalid  "null" (default): the field is set to null and flagged in
//	            quality_flags as field:problem; "reject": the record is
//	            rejected with the reason
//	min, max    bounds (int and decimal: numbers; date: "2006-01-02")
//	values      enum: canonical value → its accepted spellings
//	not_before  date: a field this date may not precede
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
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hamba/avro/v2"

	"github.com/datamill/datamill/schemas"
)

// Attribute is the name of the schema attribute holding a field's rule.
const Attribute = "datamill.clean"

// Rules clean the records of one dataset.
type Rules struct {
	fields    []*field
	countries map[string]string
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
}

// Compile reads the rules declared in a clean schema.
func Compile(schema avro.Schema) (*Rules, error) {
	rec, ok := schema.(*avro.RecordSchema)
	if !ok {
		return nil, errors.New("rules: the clean schema must be a record")
	}
	r := &Rules{countries: countryIndex()}
	var errs []error
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
		default:
			err = fmt.Errorf("unknown key %q", k)
		}
		if err != nil {
			return nil, err
		}
	}
	switch f.kind {
	case "int", "string", "country", "email", "date", "decimal":
	case "enum":
		if len(f.values) == 0 {
			return nil, errors.New("enum without values")
		}
	default:
		return nil, fmt.Errorf("type %q: want int, string, enum, country, email, date or decimal", f.kind)
	}
	return f, nil
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
	for _, f := range r.fields {
		v, problem := r.value(f, raw[f.from])
		switch {
		case problem == "":
			out.Values[f.name] = v
			continue
		case problem == "missing" && !f.required:
			out.Values[f.name] = nil
			continue
		}
		if f.required || f.reject {
			out.Reasons = append(out.Reasons, fmt.Sprintf("%s: %s%s", f.name, problem, quoted(raw[f.from])))
			continue
		}
		out.Values[f.name] = nil
		out.Flags = append(out.Flags, f.name+":"+problem)
	}
	// Cross-field rules run on the values that survived.
	for _, f := range r.fields {
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

// value reads and checks one field; problem is "" when the value is valid.
func (r *Rules) value(f *field, raw any) (any, string) {
	s, ok := raw.(string)
	if raw == nil || ok && strings.TrimSpace(s) == "" {
		return nil, "missing"
	}
	if !ok {
		return nil, "not_text"
	}
	if problem := TextProblem(s); problem != "" {
		return nil, problem
	}
	s = Normalise(s)
	switch f.kind {
	case "string":
		return s, ""
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
