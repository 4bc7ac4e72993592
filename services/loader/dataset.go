package main

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/services/loader/internal/sink"
)

// record is a decoded Avro record: the loader is the same code for every
// dataset, whose table is declared by its clean schema.
type record = map[string]any

// dataset is what the loader knows of one dataset, all of it read from the
// dataset's schemas: its table, named after the dataset, has a data column
// for every field of the clean schema but the lineage fields, the key
// first, and the lineage columns of sink.Table.
type dataset struct {
	table            *sink.Table
	cleanSchema      avro.Schema
	persistedSchema  avro.Schema
	key              string
	values           []func(any) any // per column: the Avro value as PostgreSQL takes it
	clean, persisted string          // the schemas' paths, for messages
	// cleanCodec reads clean records; copyBodies is set when the persisted
	// schema embeds the clean one as it is, so that clean records written
	// with it are copied into persisted records (persistedEncoder).
	cleanCodec *serde.Codec[record]
	copyBodies bool
}

// lineage are the clean fields the table holds in its lineage columns.
var lineage = map[string]avro.Type{
	schemas.FieldEventID:     avro.String,
	schemas.FieldSource:      avro.Union,
	schemas.FieldEventTime:   avro.Long,
	schemas.FieldContentHash: avro.String,
}

// newDataset reads a dataset's clean and persisted schemas from cat.
func newDataset(cat *schemas.Catalog, name string) (*dataset, error) {
	d := &dataset{clean: name + "/clean", persisted: name + "/persisted"}
	var err error
	if d.cleanSchema, err = cat.Schema(d.clean); err != nil {
		return nil, fmt.Errorf("DATASETS: dataset %q has no clean schema: %w", name, err)
	}
	if d.persistedSchema, err = cat.Schema(d.persisted); err != nil {
		return nil, fmt.Errorf("DATASETS: dataset %q has no persisted schema: %w", name, err)
	}
	if d.key, err = schemas.KeyField(d.cleanSchema); err != nil {
		return nil, err
	}
	rec := d.cleanSchema.(*avro.RecordSchema)
	d.table = &sink.Table{Name: name, Key: d.key}
	var errs []error
	found := map[string]bool{}
	for _, f := range rec.Fields() {
		if want, ok := lineage[f.Name()]; ok {
			found[f.Name()] = true
			if f.Type().Type() != want {
				errs = append(errs, fmt.Errorf("lineage field %s is %s, want %s", f.Name(), f.Type().Type(), want))
			}
			continue
		}
		typ, value, err := columnOf(f.Type())
		if err != nil {
			errs = append(errs, fmt.Errorf("field %s: %w", f.Name(), err))
			continue
		}
		col := sink.Column{Name: f.Name(), Type: typ}
		if f.Name() == d.key {
			d.table.Columns = append([]sink.Column{col}, d.table.Columns...)
			d.values = append([]func(any) any{value}, d.values...)
			continue
		}
		d.table.Columns = append(d.table.Columns, col)
		d.values = append(d.values, value)
	}
	for f := range lineage {
		if !found[f] {
			errs = append(errs, fmt.Errorf("no lineage field %s", f))
		}
	}
	if err := checkPersisted(d.persistedSchema); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", d.persisted, err))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("dataset %s: %s: %w", name, d.clean, errors.Join(errs...))
	}
	return d, nil
}

// checkPersisted checks that a persisted schema has the fields the loader
// writes: the clean record, the action and the commit time.
func checkPersisted(s avro.Schema) error {
	rec, ok := s.(*avro.RecordSchema)
	if !ok {
		return errors.New("not a record")
	}
	want := map[string]avro.Type{"record": avro.Record, "action": avro.Enum, "persisted_at": avro.Long}
	var errs []error
	for _, f := range rec.Fields() {
		if t, ok := want[f.Name()]; ok {
			if f.Type().Type() != t {
				errs = append(errs, fmt.Errorf("field %s is %s, want %s", f.Name(), f.Type().Type(), t))
			}
			delete(want, f.Name())
		}
	}
	for f := range want {
		errs = append(errs, fmt.Errorf("no field %s", f))
	}
	return errors.Join(errs...)
}

// evolve adds the columns the dataset's table lacks.
func (d *dataset) evolve(ctx context.Context, pool *pgxpool.Pool) (sink.Evolution, error) {
	var ev sink.Evolution
	err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
		var err error
		ev, err = d.table.Evolve(ctx, tx)
		return err
	})
	return ev, err
}

// row is the table row of a clean record.
func (d *dataset) row(v record) sink.Row {
	values := make([]any, len(d.table.Columns))
	for i, c := range d.table.Columns {
		values[i] = d.values[i](v[c.Name])
	}
	r := sink.Row{Values: values}
	r.EventID, _ = v[schemas.FieldEventID].(string)
	if s, ok := v[schemas.FieldSource].(string); ok {
		r.Source = &s
	}
	r.IngestedAt, _ = v[schemas.FieldEventTime].(time.Time)
	r.ContentHash, _ = v[schemas.FieldContentHash].(string)
	return r
}

// handler upserts a batch in one database transaction and returns a
// persisted record for every record the table now holds because of it. A
// record the database refuses is rejected with the database's reason; a
// record that changed nothing (same content, or an older event) is counted
// as a duplicate.
func (d *dataset) handler(pool *pgxpool.Pool) stage.Handler[record, persisted] {
	return func(ctx context.Context, batch []stage.Message[record]) (stage.Result[persisted], error) {
		rows := make([]sink.Row, len(batch))
		for i := range batch {
			rows[i] = d.row(batch[i].Value)
			o := batch[i].Origin
			rows[i].Origin = fmt.Sprintf("%s/%d/%d", o.Topic, o.Partition, o.Offset)
		}
		var results []sink.Result
		err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
			var err error
			results, err = d.table.Apply(ctx, tx, rows)
			return err
		})
		if err != nil {
			return stage.Result[persisted]{}, fmt.Errorf("upsert %d %s: %w", len(rows), d.table.Name, err)
		}
		now := time.Now()
		var res stage.Result[persisted]
		for i, r := range results {
			m := &batch[i]
			switch {
			case r.Err != nil:
				res.Rejected = append(res.Rejected, stage.Rejection{Index: i, Reasons: []string{"database: " + r.Err.Error()}})
			case r.Action.Applied():
				res.Outputs = append(res.Outputs, stage.Output[persisted]{
					Key:   fmt.Append(nil, m.Value[d.key]),
					Value: persisted{clean: m.Value, body: d.bodyOf(m.Raw), action: r.Action, at: now},
				})
			default:
				res.Duplicates++
			}
		}
		return res, nil
	}
}

// columnOf returns the column type of an Avro field's type, and how its
// decoded values become that column's. A union of null and one type is
// that type, nullable; every column is nullable.
func columnOf(s avro.Schema) (string, func(any) any, error) {
	if u, ok := s.(*avro.UnionSchema); ok {
		var types []avro.Schema
		for _, t := range u.Types() {
			if t.Type() != avro.Null {
				types = append(types, t)
			}
		}
		if len(types) != 1 {
			return "", nil, fmt.Errorf("a union of %d types besides null has no column type", len(types))
		}
		typ, value, err := columnOf(types[0])
		return typ, nullable(value), err
	}
	if ls, ok := s.(avro.LogicalTypeSchema); ok && ls.Logical() != nil {
		switch l := ls.Logical().(type) {
		case *avro.DecimalLogicalSchema:
			return fmt.Sprintf("numeric(%d,%d)", l.Precision(), l.Scale()), decimal(l.Scale()), nil
		}
		switch ls.Logical().Type() {
		case avro.Date:
			return "date", same, nil
		case avro.TimestampMillis, avro.TimestampMicros:
			return "timestamp with time zone", same, nil
		case avro.UUID:
			return "text", same, nil
		}
		return "", nil, fmt.Errorf("the logical type %s has no column type", ls.Logical().Type())
	}
	switch s.Type() {
	case avro.String, avro.Enum:
		return "text", same, nil
	case avro.Int:
		return "integer", same, nil
	case avro.Long:
		return "bigint", same, nil
	case avro.Boolean:
		return "boolean", same, nil
	case avro.Float:
		return "real", same, nil
	case avro.Double:
		return "double precision", same, nil
	case avro.Bytes:
		return "bytea", same, nil
	case avro.Array:
		items := s.(*avro.ArraySchema).Items()
		switch items.Type() {
		case avro.String, avro.Enum:
			return "text[]", slice[string], nil
		case avro.Int:
			return "integer[]", slice[int], nil
		case avro.Long:
			return "bigint[]", slice[int64], nil
		case avro.Double:
			return "double precision[]", slice[float64], nil
		case avro.Boolean:
			return "boolean[]", slice[bool], nil
		}
		return "", nil, fmt.Errorf("an array of %s has no column type", items.Type())
	}
	return "", nil, fmt.Errorf("a %s has no column type", s.Type())
}

// nullable is value for a field that may be null.
func nullable(value func(any) any) func(any) any {
	return func(v any) any {
		if v == nil {
			return nil
		}
		return value(v)
	}
}

// same passes a decoded value on as it is: pgx takes it.
func same(v any) any { return v }

// decimal renders a decimal for numeric, with its scale's digits.
func decimal(scale int) func(any) any {
	return func(v any) any {
		r, ok := v.(*big.Rat)
		if !ok || r == nil {
			return nil
		}
		return r.FloatString(scale)
	}
}

// slice turns a decoded array ([]any) into a []T, which pgx writes as an
// array column: never NULL, as the field is not.
func slice[T any](v any) any {
	items, _ := v.([]any)
	out := make([]T, 0, len(items))
	for _, it := range items {
		if x, ok := it.(T); ok {
			out = append(out, x)
		}
	}
	return out
}
