package model

import (
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Record is what a model reads of a clean record: a column's value, nil
// (or a nil pointer) when it is missing. Values are numbers (any Go int or
// float, *big.Rat), strings, booleans and times, or
// pointers to them, as generated types, structs built from the clean
// schema, maps and database rows hold them.
type Record interface {
	Value(column string) any
}

// Map is a record held in a map by column name.
type Map map[string]any

// Value is m[column].
func (m Map) Value(column string) any { return m[column] }

// Fields reads records held in structs of one type whose fields carry
// the column names in avro tags, as the generated types and the struct
// types built from a clean schema do.
type Fields struct {
	index map[string]int
}

// FieldsOf indexes the fields of struct type t (or of the struct t points
// to) by column.
func FieldsOf(t reflect.Type) *Fields {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	f := &Fields{index: map[string]int{}}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("avro"), ",")
		if name == "" {
			name = t.Field(i).Name
		}
		f.index[name] = i
	}
	return f
}

// Record is the record held in v, a struct of the type f indexes or a
// pointer to one.
func (f *Fields) Record(v any) Record {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	return structRecord{v: rv, index: f.index}
}

// Value is the record held in rv, a struct of the type f indexes (or a
// pointer to one), for callers that hold records as reflect values.
func (f *Fields) Value(rv reflect.Value) Record {
	for rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	return structRecord{v: rv, index: f.index}
}

type structRecord struct {
	v     reflect.Value
	index map[string]int
}

func (s structRecord) Value(column string) any {
	i, ok := s.index[column]
	if !ok {
		return nil
	}
	return s.v.Field(i).Interface()
}

// deref follows pointers; nil is missing.
func deref(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case *float64:
		if x == nil {
			return nil
		}
		return *x
	case *string:
		if x == nil {
			return nil
		}
		return *x
	case *time.Time:
		if x == nil {
			return nil
		}
		return *x
	case *big.Rat:
		if x == nil {
			return nil
		}
		return x
	}
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return nil
		}
		rv = rv.Elem()
		if r, ok := rv.Interface().(*big.Rat); ok {
			if r == nil {
				return nil
			}
			return r
		}
	}
	return rv.Interface()
}

// Number is a value as a number; false when it is missing or no number. A
// string is parsed as a decimal number.
func Number(v any) (float64, bool) {
	switch x := v.(type) { // the common cases, without boxing
	case float64:
		return x, true
	case *float64:
		if x == nil {
			return 0, false
		}
		return *x, true
	case *int32:
		if x == nil {
			return 0, false
		}
		return float64(*x), true
	case *int64:
		if x == nil {
			return 0, false
		}
		return float64(*x), true
	}
	switch x := deref(v).(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case *big.Rat:
		f, _ := x.Float64()
		return f, true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil
	}
	return 0, false
}

// Date is a value as a time; false when it is missing or no time. A string
// is read as a date (2006-01-02) or an RFC 3339 time.
func Date(v any) (time.Time, bool) {
	switch x := v.(type) { // the common cases, without boxing
	case time.Time:
		return x, true
	case *time.Time:
		if x == nil {
			return time.Time{}, false
		}
		return *x, true
	}
	switch x := deref(v).(type) {
	case time.Time:
		return x, true
	case string:
		if t, err := time.Parse(time.DateOnly, x); err == nil {
			return t, true
		}
		t, err := time.Parse(time.RFC3339Nano, x)
		return t, err == nil
	}
	return time.Time{}, false
}

// Text is a value as a string; false when it is missing. Numbers and
// booleans are written as Go writes them. A list of strings (an Avro
// array of strings decoded into a []string, a PostgreSQL text[] read into
// a []any) is its items joined by spaces, its missing items left out, so
// that a tokens feature reads the words of every item; an empty list is
// the empty text.
func Text(v any) (string, bool) {
	switch x := v.(type) { // the common cases, without boxing
	case string:
		return x, true
	case *string:
		if x == nil {
			return "", false
		}
		return *x, true
	}
	switch x := deref(v).(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case *big.Rat:
		f, _ := x.Float64()
		return strconv.FormatFloat(f, 'g', -1, 64), true
	case []string:
		return strings.Join(x, " "), true
	case []any:
		items := make([]string, 0, len(x))
		for _, item := range x {
			if s, ok := Text(item); ok {
				items = append(items, s)
			}
		}
		return strings.Join(items, " "), true
	default:
		if f, ok := Number(x); ok {
			return strconv.FormatFloat(f, 'g', -1, 64), true
		}
		if t, ok := x.(time.Time); ok {
			return t.Format(time.RFC3339Nano), true
		}
		return "", false
	}
}

// Bool is a value as a boolean; false when it is missing or no boolean. A
// string is read by strconv.ParseBool.
func Bool(v any) (value, ok bool) {
	switch x := deref(v).(type) {
	case bool:
		return x, true
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(x))
		return b, err == nil
	}
	return false, false
}
