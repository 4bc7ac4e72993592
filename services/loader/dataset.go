package main

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
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

// record is a decoded clean record: a pointer to a struct of the type the
// dataset builds from its clean schema at start (dataset.typ), one field
// per schema field. The loader is the same code for every dataset, whose
// table is declared by its clean schema; decoding into a struct costs what
// decoding into generated types does, about half a map's cost.
type record = reflect.Value

// dataset is what the loader knows of one dataset, all of it read from the
// dataset's schemas: its table, named after the dataset, has a data column
// for every field of the clean schema but the lineage fields, the key
// first, and the lineage columns of sink.Table.
type dataset struct {
	table            *sink.Table
	cleanSchema      avro.Schema
	persistedSchema  avro.Schema
	views            []schemas.View // declared in dataset.yaml
	clean, persisted string         // the schemas' paths, for messages
	typ              reflect.Type
	// columns[i] reads table.Columns[i] from a record.
	columns []column
	// Struct fields of the key and the lineage.
	key, eventID, source, eventTime, contentHash int
	// cleanCodec reads clean records; copyBodies is set when the persisted
	// schema embeds the clean one as it is, so that clean records written
	// with it are copied into persisted records (persistedEncoder).
	cleanCodec *serde.Codec[any]
	copyBodies bool
}

// column reads one column's value from a record.
type column struct {
	field int                     // the struct field
	value func(reflect.Value) any // the field as pgx takes it; nil: as it is
}

// lineage are the clean fields the table holds in its lineage columns,
// and the Go types the loader reads them as.
var lineage = map[string]reflect.Type{
	schemas.FieldEventID:     reflect.TypeFor[string](),
	schemas.FieldSource:      reflect.TypeFor[*string](),
	schemas.FieldEventTime:   reflect.TypeFor[time.Time](),
	schemas.FieldContentHash: reflect.TypeFor[string](),
}

// newDataset reads a dataset's clean and persisted schemas from cat.
func newDataset(cat *schemas.Catalog, name string) (*dataset, error) {
	ds, err := cat.Dataset(name)
	if err != nil {
		return nil, err
	}
	d := &dataset{clean: name + "/clean", persisted: name + "/persisted", cleanSchema: ds.Clean, persistedSchema: ds.Persisted, views: ds.Decl.Views}
	key := ds.Key
	d.table = &sink.Table{Name: name, Key: key}
	var (
		errs   []error
		fields []reflect.StructField
		keyCol sink.Column
	)
	index := map[string]int{}
	for _, f := range d.cleanSchema.(*avro.RecordSchema).Fields() {
		c, err := columnOf(f.Type())
		if err != nil {
			errs = append(errs, fmt.Errorf("field %s: %w", f.Name(), err))
			continue
		}
		i := len(fields)
		index[f.Name()] = i
		fields = append(fields, reflect.StructField{Name: fmt.Sprintf("F%d", i), Type: c.typ, Tag: reflect.StructTag(fmt.Sprintf("avro:%q", f.Name()))})
		if want, ok := lineage[f.Name()]; ok {
			if c.typ != want {
				errs = append(errs, fmt.Errorf("lineage field %s is %s, want %s", f.Name(), c.typ, want))
			}
			continue
		}
		col := tableColumn(f, c.sql)
		if f.Name() == key {
			keyCol = col
			d.columns = append([]column{{field: i, value: c.value}}, d.columns...)
			continue
		}
		d.table.Columns = append(d.table.Columns, col)
		d.columns = append(d.columns, column{field: i, value: c.value})
	}
	d.table.Columns = append([]sink.Column{keyCol}, d.table.Columns...)
	var ok bool
	if d.key, ok = index[key]; !ok {
		errs = append(errs, fmt.Errorf("the key field %s is no field", key))
	}
	for f := range lineage {
		if _, ok := index[f]; !ok {
			errs = append(errs, fmt.Errorf("no lineage field %s", f))
		}
	}
	d.eventID, d.source, d.eventTime, d.contentHash = index[schemas.FieldEventID], index[schemas.FieldSource],
		index[schemas.FieldEventTime], index[schemas.FieldContentHash]
	if err := checkPersisted(d.persistedSchema); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", d.persisted, err))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("dataset %s: %s: %w", name, d.clean, errors.Join(errs...))
	}
	d.typ = reflect.StructOf(fields)
	return d, nil
}

// Decode reads a clean record in the wire format into v, a new struct of
// the dataset's type: stage.Decoder.
func (d *dataset) Decode(b []byte, v *record) error {
	p := reflect.New(d.typ)
	x := p.Interface()
	if err := d.cleanCodec.Decode(b, &x); err != nil {
		return err
	}
	*v = p
	return nil
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

// evolution is what evolve found and did: to the table (sink.Evolution)
// and to the dataset's views.
type evolution struct {
	sink.Evolution
	// Views names the declared views there, as declared.
	Views []string
	// Replaced names the views created or replaced now: those that were
	// missing or not as declared.
	Replaced []string
	// Recreated names the views whose columns changed, dropped and
	// created again.
	Recreated []string
	// Waiting are the views that read a table that does not exist yet,
	// each with why, not created.
	Waiting []string
}

// evolve creates the dataset's table, or adds the columns and check
// constraints it lacks (sink.Table.Evolve), then creates or replaces its
// declared views (createViews), in one transaction under the table's lock.
func (d *dataset) evolve(ctx context.Context, pool *pgxpool.Pool) (evolution, error) {
	var ev evolution
	err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
		var err error
		if ev.Evolution, err = d.table.Evolve(ctx, tx); err != nil {
			return err
		}
		if ev.Replaced, ev.Recreated, ev.Waiting, err = createViews(ctx, tx, d.views); err != nil {
			return fmt.Errorf("dataset %s: %w", d.table.Name, err)
		}
		for _, v := range d.views {
			if !slices.ContainsFunc(ev.Waiting, func(w string) bool { return strings.HasPrefix(w, v.Name+": ") }) {
				ev.Views = append(ev.Views, v.Name)
			}
		}
		return nil
	})
	if err != nil {
		return evolution{}, err
	}
	return ev, nil
}

// row is the table row of a clean record.
func (d *dataset) row(v record) sink.Row {
	e := v.Elem()
	values := make([]any, len(d.columns))
	for i, c := range d.columns {
		if f := e.Field(c.field); c.value != nil {
			values[i] = c.value(f)
		} else {
			values[i] = f.Interface() // pgx takes a nil pointer as NULL
		}
	}
	return sink.Row{
		Values:      values,
		EventID:     e.Field(d.eventID).String(),
		Source:      e.Field(d.source).Interface().(*string),
		IngestedAt:  e.Field(d.eventTime).Interface().(time.Time),
		ContentHash: e.Field(d.contentHash).String(),
	}
}

// keyOf is a record's key, as the cleaner wrote it: its key field's value
// in decimal or as it is.
func (d *dataset) keyOf(v record) []byte {
	f := v.Elem().Field(d.key)
	switch f.Kind() {
	case reflect.Int32, reflect.Int64:
		return strconv.AppendInt(nil, f.Int(), 10)
	case reflect.String:
		return []byte(f.String())
	}
	return fmt.Append(nil, f.Interface())
}

// handler upserts a batch in one database transaction and returns a
// persisted record for every record the table now holds because of it. A
// record the database refuses is rejected with the database's reason; a
// record that changed nothing (same content, or an older event) is counted
// as a duplicate.
//
// The batch's datamill_batches rows, one per input partition, are
// written in its transaction (pg.AuditBatch), as stage.
func (d *dataset) handler(pool *pgxpool.Pool, stageName string) stage.Handler[record, persisted] {
	return func(ctx context.Context, batch []stage.Message[record]) (stage.Result[persisted], error) {
		rows := make([]sink.Row, len(batch))
		for i := range batch {
			rows[i] = d.row(batch[i].Value)
			rows[i].Origin = originOf(batch[i].Origin)
		}
		var results []sink.Result
		err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
			var err error
			if results, err = d.table.Apply(ctx, tx, rows); err != nil {
				return err
			}
			return pg.AuditBatch(ctx, tx, pg.Batches(stageName, len(batch), func(i int) (string, int32, int64) {
				o := batch[i].Origin
				return o.Topic, o.Partition, o.Offset
			})...)
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
					Key:   d.keyOf(m.Value),
					Value: persisted{clean: m.Value, body: d.bodyOf(m.Raw), action: r.Action, at: now},
				})
			default:
				res.Duplicates++
			}
		}
		return res, nil
	}
}

// originOf names the input record a row came in, for the ledger: its
// topic, partition and offset, and its timestamp, which tells it from the
// record at the same offset of another Kafka (one that lost its topics, as
// `datamill dev`'s in-process broker does when it stops, and filled them
// again). Only the same record again is a replay.
func originOf(o stage.Origin) string {
	return fmt.Sprintf("%s/%d/%d@%d", o.Topic, o.Partition, o.Offset, o.Timestamp.UnixMicro())
}

// columnType is how one Avro type is decoded and stored: the Go type a
// record's field has, the column type, and how the field's value becomes
// the column's (nil: as it is).
type columnType struct {
	typ   reflect.Type
	sql   string
	value func(reflect.Value) any
}

// columnOf returns the column type of an Avro field's type. A union of
// null and one type is that type, nullable: a pointer to it in the record.
// Every column is nullable.
func columnOf(s avro.Schema) (columnType, error) {
	if _, ok := s.(*avro.UnionSchema); ok {
		types := schemas.NonNull(s)
		if len(types) != 1 {
			return columnType{}, fmt.Errorf("a union of %d types besides null has no column type", len(types))
		}
		c, err := columnOf(types[0])
		if err != nil {
			return c, err
		}
		return columnType{typ: reflect.PointerTo(c.typ), sql: c.sql, value: nullable(c.value)}, nil
	}
	if ls, ok := s.(avro.LogicalTypeSchema); ok && ls.Logical() != nil {
		if d, ok := ls.Logical().(*avro.DecimalLogicalSchema); ok {
			return columnType{reflect.TypeFor[*big.Rat](), fmt.Sprintf("numeric(%d,%d)", d.Precision(), d.Scale()), decimal(d.Scale())}, nil
		}
		switch ls.Logical().Type() {
		case avro.Date:
			return columnType{reflect.TypeFor[time.Time](), "date", nil}, nil
		case avro.TimestampMillis, avro.TimestampMicros:
			return columnType{reflect.TypeFor[time.Time](), "timestamp with time zone", nil}, nil
		case avro.UUID:
			return columnType{reflect.TypeFor[string](), "text", nil}, nil
		}
		return columnType{}, fmt.Errorf("the logical type %s has no column type", ls.Logical().Type())
	}
	if s.Type() == avro.Array {
		items := s.(*avro.ArraySchema).Items()
		if c, ok := scalars[items.Type()]; ok && items.Type() != avro.Bytes {
			return columnType{reflect.SliceOf(c.typ), c.sql + "[]", nil}, nil
		}
		return columnType{}, fmt.Errorf("an array of %s has no column type", items.Type())
	}
	if c, ok := scalars[s.Type()]; ok {
		return c, nil
	}
	return columnType{}, fmt.Errorf("a %s has no column type", s.Type())
}

// scalars are the column types of the Avro types without a logical type.
var scalars = map[avro.Type]columnType{
	avro.String:  {reflect.TypeFor[string](), "text", nil},
	avro.Enum:    {reflect.TypeFor[string](), "text", nil},
	avro.Int:     {reflect.TypeFor[int32](), "integer", nil},
	avro.Long:    {reflect.TypeFor[int64](), "bigint", nil},
	avro.Boolean: {reflect.TypeFor[bool](), "boolean", nil},
	avro.Float:   {reflect.TypeFor[float32](), "real", nil},
	avro.Double:  {reflect.TypeFor[float64](), "double precision", nil},
	avro.Bytes:   {reflect.TypeFor[[]byte](), "bytea", nil},
}

// nullable is value for a pointer to the field it reads.
func nullable(value func(reflect.Value) any) func(reflect.Value) any {
	if value == nil {
		return nil
	}
	return func(f reflect.Value) any {
		if f.IsNil() {
			return nil
		}
		return value(f.Elem())
	}
}

// decimal renders a decimal for numeric, with its scale's digits.
func decimal(scale int) func(reflect.Value) any {
	return func(f reflect.Value) any {
		r := f.Interface().(*big.Rat)
		if r == nil {
			return nil
		}
		return r.FloatString(scale)
	}
}
