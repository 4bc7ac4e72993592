package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/parquet-go/parquet-go"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/progress"
)

const exportUsage = `usage: datamill export <dataset> [--format csv|parquet] [--out FILE]

Writes a dataset's clean table (DATABASE_URL), the table the loader keeps
(a column per clean field and the lineage columns), to FILE or standard
output, streamed row by row.

csv: a header row, then PostgreSQL's text form of every value (arrays as
{a,b}, timestamps with their offset); NULL is an empty field, an empty
string a quoted "" (PostgreSQL's COPY ... CSV).

parquet: a column per table column, typed from the table's (the clean
schema's) types: text as string, integer as int32, bigint as int64,
real as float, double precision as double, boolean, date, timestamps as
microseconds since the epoch (UTC), text[] as a list of strings, bytea as
bytes, and any other type (numeric …) as its text. Every column is
optional (nullable); columns come in name order. A row group is written
every 65536 rows, so that memory does not grow with the table.

flags:`

// exportRowGroup is how many rows a Parquet row group holds: the rows
// export keeps in memory at most.
const exportRowGroup = 1 << 16

func exportCommand(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "csv", "csv or parquet")
	out := fs.String("out", "", "the file to write (default: standard output)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, exportUsage)
		fs.PrintDefaults()
	}
	dataset, rest := firstArg(args)
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if dataset == "" || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if *format != "csv" && *format != "parquet" {
		return fmt.Errorf("export %s: unknown format %q: csv or parquet", dataset, *format)
	}
	ds, err := lookUp(environ, stderr, dataset)
	if err != nil {
		return err
	}
	url := config.ToMap(environ)["DATABASE_URL"]
	if url == "" {
		return fmt.Errorf("export %s: DATABASE_URL is not set", dataset)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	table := ident(ds.Name)
	var exists bool
	if err := conn.QueryRow(ctx, "select to_regclass($1) is not null", table).Scan(&exists); err != nil {
		return fmt.Errorf("export %s: look up table %s: %w", dataset, ds.Name, err)
	}
	if !exists {
		return fmt.Errorf("export %s: no table %s in this database: run the dataset's pipeline first", dataset, ds.Name)
	}

	w, name := stdout, "standard output"
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w, name = f, *out
	}
	var bar *progress.Bar
	if progress.IsTerminal(stderr) {
		var estimate float64
		// The statistics' estimate is enough for a progress bar.
		_ = conn.QueryRow(ctx, "select reltuples from pg_class where oid = $1::regclass", table).Scan(&estimate)
		bar = progress.New(stderr, nil, "export "+dataset, int64(max(estimate, 0)), time.Second)
	}
	var n int64
	if *format == "csv" {
		n, err = exportCSV(ctx, conn, table, w, bar)
	} else {
		n, err = exportParquet(ctx, conn, table, w, bar)
	}
	if err != nil {
		return fmt.Errorf("export %s as %s: %w", dataset, *format, err)
	}
	if bar != nil {
		bar.Finish()
	}
	if f, ok := w.(*os.File); ok && *out != "" {
		if err := f.Close(); err != nil {
			return fmt.Errorf("export %s: close %s: %w", dataset, name, err)
		}
	}
	fmt.Fprintf(stderr, "export: %d rows of table %s as %s to %s\n", n, ds.Name, *format, name)
	return nil
}

// exportCSV copies table to w as CSV with PostgreSQL's COPY, which
// streams and writes PostgreSQL's text forms.
func exportCSV(ctx context.Context, conn *pgx.Conn, table string, w io.Writer, bar *progress.Bar) (int64, error) {
	if bar != nil {
		w = &lineCounter{w: w, bar: bar}
	}
	tag, err := conn.PgConn().CopyTo(ctx, w, "copy (select * from "+table+") to stdout with (format csv, header)")
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// lineCounter shows on a progress bar the lines written through it (rows,
// but for values holding line breaks).
type lineCounter struct {
	w     io.Writer
	bar   *progress.Bar
	lines int64
}

func (c *lineCounter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	for _, b := range p[:n] {
		if b == '\n' {
			c.lines++
		}
	}
	rows := max(c.lines-1, 0) // the header
	c.bar.Set(rows, rows)
	return n, err
}

// parquetColumn is how one table column is written to Parquet: its node
// in the schema, whether it is selected as its text, and the conversion
// of the value pgx reads.
type parquetColumn struct {
	name    string
	node    parquet.Node
	asText  bool
	convert func(any) (any, error)
}

// parquetColumnOf types a column from its PostgreSQL type.
func parquetColumnOf(name string, oid uint32) parquetColumn {
	c := parquetColumn{name: name}
	same := func(v any) (any, error) { return v, nil }
	switch oid {
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID:
		c.node, c.convert = parquet.String(), same
	case pgtype.Int2OID:
		c.node, c.convert = parquet.Int(32), func(v any) (any, error) { return int32(v.(int16)), nil }
	case pgtype.Int4OID:
		c.node, c.convert = parquet.Int(32), same
	case pgtype.Int8OID:
		c.node, c.convert = parquet.Int(64), same
	case pgtype.Float4OID:
		c.node, c.convert = parquet.Leaf(parquet.FloatType), same
	case pgtype.Float8OID:
		c.node, c.convert = parquet.Leaf(parquet.DoubleType), same
	case pgtype.BoolOID:
		c.node, c.convert = parquet.Leaf(parquet.BooleanType), same
	case pgtype.ByteaOID:
		c.node, c.convert = parquet.Leaf(parquet.ByteArrayType), same
	case pgtype.DateOID:
		c.node, c.convert = parquet.Date(), finite
	case pgtype.TimestamptzOID, pgtype.TimestampOID:
		c.node, c.convert = parquet.Timestamp(parquet.Microsecond), finite
	case pgtype.TextArrayOID, pgtype.VarcharArrayOID:
		c.node, c.convert = parquet.List(parquet.Optional(parquet.String())), func(v any) (any, error) {
			items, ok := v.([]any)
			if !ok {
				return nil, fmt.Errorf("an array read as %T", v)
			}
			return items, nil
		}
	default:
		c.node, c.asText, c.convert = parquet.String(), true, same
	}
	c.node = parquet.Optional(c.node)
	return c
}

// finite passes a date or time on, and refuses PostgreSQL's infinities,
// which Parquet's dates and timestamps cannot hold.
func finite(v any) (any, error) {
	if t, ok := v.(time.Time); ok {
		return t, nil
	}
	return nil, fmt.Errorf("%v has no Parquet date or timestamp", v)
}

// exportParquet writes table to w as Parquet, a row group every
// exportRowGroup rows.
func exportParquet(ctx context.Context, conn *pgx.Conn, table string, w io.Writer, bar *progress.Bar) (int64, error) {
	rows, err := conn.Query(ctx, "select * from "+table+" limit 0")
	if err != nil {
		return 0, err
	}
	fds := rows.FieldDescriptions()
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	cols := make([]parquetColumn, len(fds))
	group := parquet.Group{}
	selects := make([]string, len(fds))
	for i, fd := range fds {
		cols[i] = parquetColumnOf(fd.Name, fd.DataTypeOID)
		group[fd.Name] = cols[i].node
		selects[i] = ident(fd.Name)
		if cols[i].asText {
			selects[i] += "::text"
		}
	}
	pw := parquet.NewGenericWriter[map[string]any](w, parquet.NewSchema(strings.Trim(table, `"`), group))
	rows, err = conn.Query(ctx, "select "+strings.Join(selects, ", ")+" from "+table)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var n int64
	batch := make([]map[string]any, 0, 1024)
	flush := func() error {
		if _, err := pw.Write(batch); err != nil {
			return err
		}
		batch = batch[:0]
		return nil
	}
	for rows.Next() {
		values, err := rows.Values()
		if err != nil {
			return n, err
		}
		row := make(map[string]any, len(cols))
		for i, v := range values {
			if v == nil {
				row[cols[i].name] = nil
				continue
			}
			c, err := cols[i].convert(v)
			if err != nil {
				return n, fmt.Errorf("row %d, column %s: %w", n+1, cols[i].name, err)
			}
			// A pointer: parquet-go writes an optional column's zero
			// value (0, false, "") as NULL, but not what a pointer
			// points to.
			p := reflect.New(reflect.TypeOf(c))
			p.Elem().Set(reflect.ValueOf(c))
			row[cols[i].name] = p.Interface()
		}
		batch = append(batch, row)
		n++
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return n, err
			}
		}
		if n%exportRowGroup == 0 {
			if err := pw.Flush(); err != nil {
				return n, err
			}
		}
		if bar != nil {
			bar.Set(n, n)
		}
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	if err := flush(); err != nil {
		return n, err
	}
	return n, pw.Close()
}
