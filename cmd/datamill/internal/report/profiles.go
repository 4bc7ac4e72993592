package report

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/datamill/datamill/cmd/datamill/internal/profile"
	"github.com/datamill/datamill/schemas"
)

// profileBins is how many bins the histogram of a numeric column has.
const profileBins = 10

// numericTypes are the PostgreSQL types of the columns a profile draws a
// histogram of, when the profile reads them as numbers too.
var numericTypes = []uint32{pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.Float4OID, pgtype.Float8OID, pgtype.NumericOID}

// Profiles is the section of the data profiles of the built-in datasets'
// tables (ProfilesOf them).
func Profiles(ctx context.Context, db *pgx.Conn) (Section, error) {
	return ProfilesOf(schemas.BuiltIn().Datasets()...)(ctx, db)
}

// ProfilesOf is the section of the data profiles of the tables of
// datasets: each table described as `datamill profile` describes it (each
// column's type, missing values, distinct count, top values, range and
// outliers by the IQR rule) and a histogram of each numeric column but
// the key. A dataset without a table (it was not run) is a note.
func ProfilesOf(datasets ...string) Source {
	return func(ctx context.Context, db *pgx.Conn) (Section, error) {
		s := Section{ID: "profiles", Title: "Data profiles"}
		for _, ds := range datasets {
			ok, err := tableExists(ctx, db, ds)
			if err != nil {
				return s, err
			}
			if !ok {
				s.Notes = append(s.Notes, fmt.Sprintf("%s: no %s table in this database; the dataset was not run.", ds, ds))
				continue
			}
			if err := profileTable(ctx, db, ds, &s); err != nil {
				return s, err
			}
		}
		return s, nil
	}
}

// profileTable adds the profile of table to s: a table of its columns, a
// note of its rows and key, and a histogram per numeric column.
func profileTable(ctx context.Context, db *pgx.Conn, table string, s *Section) error {
	ident := pgx.Identifier{table}.Sanitize()
	rows, err := db.Query(ctx, "select * from "+ident)
	if err != nil {
		return fmt.Errorf("read table %s: %w", table, err)
	}
	defer rows.Close()
	p := profile.New(profile.Options{})
	fields := rows.FieldDescriptions()
	numeric := map[string]bool{}
	for _, fd := range fields {
		p.Declare(fd.Name)
		numeric[fd.Name] = slices.Contains(numericTypes, fd.DataTypeOID)
	}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return fmt.Errorf("read table %s: %w", table, err)
		}
		row := make(map[string]*string, len(vals))
		for i, v := range vals {
			if t, ok := cellText(v); ok {
				row[fields[i].Name] = &t
			}
		}
		p.Add(row)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read table %s: %w", table, err)
	}
	prof := p.Profile()
	s.Tables = append(s.Tables, profileTableOf(table, prof))
	s.Notes = append(s.Notes, keyNote(table, prof))
	// A key's histogram says nothing: the profile's best key and the
	// dataset's declared one have none.
	keys := map[string]bool{prof.Keys.Best: true}
	if ds, err := schemas.BuiltIn().Dataset(table); err == nil {
		keys[ds.Key] = true
	}
	for _, c := range prof.Columns {
		if c.Numeric == nil || !numeric[c.Name] || keys[c.Name] {
			continue
		}
		chart, err := columnHistogram(ctx, db, table, c.Name)
		if err != nil {
			return err
		}
		s.Charts = append(s.Charts, chart)
	}
	return nil
}

// profileTableOf is a profile as a table, a row per column.
func profileTableOf(table string, prof *profile.Profile) Table {
	t := Table{
		ID: "profile-" + table, Title: fmt.Sprintf("Profile of the %s table (%d rows)", table, prof.Rows),
		Columns: []string{"column", "type", "missing", "distinct", "top values", "range", "outliers (IQR)"},
	}
	for _, c := range prof.Columns {
		kind := string(c.Type)
		if c.Email {
			kind += " (email)"
		}
		distinct := itoa(c.Distinct)
		if c.DistinctAtLeast {
			distinct = "≥" + distinct
		}
		var top []string
		for _, v := range c.Top[:min(3, len(c.Top))] {
			top = append(top, fmt.Sprintf("%s ×%d", clipText(v.Value, 24), v.Count))
		}
		var span, outliers string
		switch {
		case c.Numeric != nil:
			n := c.Numeric
			span = fmt.Sprintf("%s … %s (median %s)", sig6(n.Min), sig6(n.Max), sig6(n.Median))
			outliers = itoa(n.Outliers.Count)
			if n.Outliers.Estimated {
				outliers = "~" + outliers
			}
			if n.Outliers.Count > 0 {
				outliers += fmt.Sprintf(" outside %s … %s", sig6(n.Outliers.Low), sig6(n.Outliers.High))
			}
		case c.Dates != nil:
			span = c.Dates.Min + " … " + c.Dates.Max
		}
		t.Rows = append(t.Rows, []string{
			c.Name, kind, fmt.Sprintf("%d (%s)", c.Missing, percent(c.MissingShare)), distinct,
			strings.Join(top, ", "), span, outliers,
		})
	}
	return t
}

// keyNote says how many rows a table has, which column keys them and
// its duplicates.
func keyNote(table string, prof *profile.Profile) string {
	k := prof.Keys
	if k.Best == "" {
		return fmt.Sprintf("%s: %d rows; no column has distinct values in 90%% of the rows.", table, prof.Rows)
	}
	note := fmt.Sprintf("%s: %d rows; key %s", table, prof.Rows, k.Best)
	if d := k.Duplicates; d != nil {
		return note + fmt.Sprintf(", %d values duplicated (%d extra rows).", d.Values, d.ExtraRows)
	}
	return note + ", no duplicates."
}

// columnHistogram counts the values of a numeric column in profileBins
// bins of equal width from its minimum to its maximum; a point's X is its
// bin's lower edge, as the page draws histograms. A column of one value
// is one bin.
func columnHistogram(ctx context.Context, db *pgx.Conn, table, column string) (Chart, error) {
	col, tbl := pgx.Identifier{column}.Sanitize(), pgx.Identifier{table}.Sanitize()
	chart := Chart{ID: "profile-" + table + "-" + column, Title: table + "." + column, XLabel: column, YLabel: "rows", Unit: "rows", Kind: Histogram}
	var lo, hi float64
	var n int64
	err := db.QueryRow(ctx, fmt.Sprintf(`select coalesce(min(%[1]s)::float8, 0), coalesce(max(%[1]s)::float8, 0), count(%[1]s) from %[2]s`, col, tbl)).
		Scan(&lo, &hi, &n)
	if err != nil {
		return chart, fmt.Errorf("read the range of %s.%s: %w", table, column, err)
	}
	series := Series{Name: column}
	if hi <= lo {
		series.Points = []Point{{Label: sig6(lo), X: lo, Y: float64(n)}}
		chart.Series = []Series{series}
		return chart, nil
	}
	counts := make([]int64, profileBins)
	rows, err := db.Query(ctx, fmt.Sprintf(`select least(width_bucket(%[1]s::float8, $1, $2, $3), $3), count(*) from %[2]s
		where %[1]s is not null group by 1`, col, tbl), lo, hi, profileBins)
	if err != nil {
		return chart, fmt.Errorf("count the values of %s.%s: %w", table, column, err)
	}
	var bucket int
	var count int64
	if _, err := pgx.ForEachRow(rows, []any{&bucket, &count}, func() error {
		counts[bucket-1] = count
		return nil
	}); err != nil {
		return chart, fmt.Errorf("count the values of %s.%s: %w", table, column, err)
	}
	width := (hi - lo) / profileBins
	for i, c := range counts {
		from, to := lo+float64(i)*width, lo+float64(i+1)*width
		series.Points = append(series.Points, Point{Label: sig6(from) + "–" + sig6(to), X: from, Y: float64(c)})
	}
	chart.Series = []Series{series}
	return chart, nil
}

// cellText is a PostgreSQL value as the text a source would give it, as
// `datamill profile` reads a table; false for null.
func cellText(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case []byte:
		if utf8.Valid(x) {
			return string(x), true
		}
		return fmt.Sprintf("%x", x), true
	case time.Time:
		if x.Equal(x.Truncate(24*time.Hour)) && x.Location() == time.UTC {
			return x.Format(time.DateOnly), true
		}
		return x.UTC().Format(time.RFC3339Nano), true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32), true
	case int64, int32, int16, int8, int, uint32, uint64:
		return fmt.Sprint(x), true
	case [16]byte: // a uuid
		return fmt.Sprintf("%x-%x-%x-%x-%x", x[0:4], x[4:6], x[6:8], x[8:10], x[10:16]), true
	case driver.Valuer:
		dv, err := x.Value()
		if err == nil {
			return cellText(dv)
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v), true
	}
	return string(b), true
}

// clipText cuts s to n runes, an ellipsis last.
func clipText(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// sig6 writes v with up to 6 significant digits.
func sig6(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
