package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/jackc/pgx/v5"

	"github.com/datamill/datamill/services/loader/internal/sink"
)

// ruleAttribute is the attribute of a clean field holding the cleaner's
// rule for it, whose bounds become the column's check constraint.
const ruleAttribute = "datamill.clean"

// tableColumn is the column of a clean field whose column type is sql:
// NOT NULL when the field is required (its type is no union with null),
// its default when it is required and has one, and a check constraint
// from its rule: the rule's min and max (numbers for a numeric column,
// yyyy-mm-dd dates for a date column), and two upper-case letters for a
// country. The cleaner sends no value its rule refuses; the table refuses
// them from any other writer too.
func tableColumn(f *avro.Field, sql string) sink.Column {
	c := sink.Column{Name: f.Name(), Type: sql}
	if _, union := f.Type().(*avro.UnionSchema); !union {
		c.NotNull = true
		if f.HasDefault() {
			c.Default = sqlDefault(f.Default())
		}
	}
	rule, _ := f.Prop(ruleAttribute).(map[string]any)
	if rule == nil {
		return c
	}
	col := pgx.Identifier{f.Name()}.Sanitize()
	var checks []string
	if rule["type"] == "country" && sql == "text" {
		checks = append(checks, col+" ~ '^[A-Z]{2}$'")
	}
	for _, bound := range []struct{ key, op string }{{"min", ">="}, {"max", "<="}} {
		if v, ok := boundOf(rule[bound.key], sql); ok {
			checks = append(checks, fmt.Sprintf("%s %s %s", col, bound.op, v))
		}
	}
	c.Check = strings.Join(checks, " and ")
	return c
}

// boundOf is the SQL literal of a rule's bound for a column of type sql,
// as the cleaner reads it: a number bounds a numeric column, a date a date
// column; any other bound bounds nothing.
func boundOf(v any, sql string) (string, bool) {
	switch v := v.(type) {
	case float64:
		if numeric(sql) {
			return strconv.FormatFloat(v, 'f', -1, 64), true
		}
	case string:
		if d, err := time.Parse(time.DateOnly, v); err == nil && sql == "date" {
			return "'" + d.Format(time.DateOnly) + "'::date", true
		}
	}
	return "", false
}

// numeric reports whether a column type holds numbers.
func numeric(sql string) bool {
	switch sql {
	case "smallint", "integer", "bigint", "real", "double precision":
		return true
	}
	return strings.HasPrefix(sql, "numeric")
}

// sqlDefault is the SQL literal of a field's Avro default: an empty
// array, a string, a number or a boolean; "" (no default) for any other.
func sqlDefault(v any) string {
	switch v := v.(type) {
	case []any:
		if len(v) == 0 {
			return "'{}'"
		}
	case string:
		return "'" + strings.ReplaceAll(v, "'", "''") + "'"
	case bool:
		return strconv.FormatBool(v)
	case int, int32, int64:
		return fmt.Sprint(v)
	case float32, float64:
		return fmt.Sprint(v)
	}
	return ""
}
