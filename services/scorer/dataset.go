package main

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/services/scorer/internal/model"
)

// persisted is a decoded persisted record: a pointer to a struct of the
// type the dataset builds from its persisted schema at start
// (dataset.persistedType), whose field 0 is the clean record, itself a
// struct with one field per clean field. The scorer is the same code for
// every dataset; decoding into a struct costs what decoding into generated
// types does.
type persisted = reflect.Value

// dataset is what the scorer knows of one dataset, all of it read from
// the catalog: its schemas, its key, its declared model and the tables it
// reads and writes.
type dataset struct {
	name string
	// key is the clean key field, which is also the key column of the
	// dataset's table and the key field of its scored records.
	key string
	// table is the dataset's table (the loader's), predictions its
	// predictions table (the scorer's), keyColumn the column of the
	// predictions table that refers to the table's key.
	table, predictions, keyColumn string
	decl                          *model.Decl
	persistedSchema, scoredSchema avro.Schema
	persistedType, keyType        reflect.Type
	// clean reads the clean struct by column; keyField and eventIDField
	// are its fields of the key and the event id.
	clean                  *model.Fields
	keyField, eventIDField int
	// textKey is set when the key is text, not an integer.
	textKey bool
	// estimateField and statedField are the scored record's fields of a
	// ridge model's estimate and of whether the record stated its own
	// value of the label (schemas.EstimateFields); "" for a logistic
	// model, whose scored records and predictions table have neither.
	estimateField, statedField string
	codec                      *serde.Codec[any]
}

// ridge says whether the dataset's scored records and predictions carry
// an estimate and whether the record stated its own label.
func (d *dataset) ridge() bool { return d.estimateField != "" }

// stated says whether a clean record has its own value of the label of
// the dataset's ridge model: false for a logistic model.
func (d *dataset) stated(r model.Record) bool {
	if !d.ridge() {
		return false
	}
	_, ok := model.Number(r.Value(d.decl.Label.Column))
	return ok
}

// predictionColumns are the columns of a predictions table besides the
// key's; a key named as one of them is prefixed (keyColumn).
var predictionColumns = []string{"id", "prediction", "probability", "model_version", schemas.FieldEventID, "created_at"}

// keyColumn names the key's column in a dataset's predictions table: the
// key's own name, unless the predictions table has a column of that name
// already; then the dataset's name, singular, and the key's ("id" of a
// dataset "orders": order_id).
func keyColumn(dataset, key string) string {
	for _, c := range predictionColumns {
		if c == key {
			return strings.TrimSuffix(dataset, "s") + "_" + key
		}
	}
	return key
}

// newDataset reads what the scorer needs of dataset ds from its catalog
// entry. A dataset that declares no model is an error; ask Decl.Model
// first.
func newDataset(ds *schemas.Dataset) (*dataset, error) {
	if ds.Decl.Model == nil {
		return nil, fmt.Errorf("dataset %s declares no model", ds.Name)
	}
	d := &dataset{
		name: ds.Name, key: ds.Key, table: ds.Name, predictions: schemas.PredictionsTable(ds.Name),
		keyColumn: keyColumn(ds.Name, ds.Key), decl: model.DeclOf(ds.Decl.Model),
		persistedSchema: ds.Persisted, scoredSchema: ds.Scored,
	}
	d.estimateField, d.statedField = schemas.EstimateFields(ds.Decl.Model)
	clean, ok := ds.Clean.(*avro.RecordSchema)
	if !ok {
		return nil, fmt.Errorf("dataset %s: the clean schema is no record", ds.Name)
	}
	var (
		errs   []error
		fields []reflect.StructField
	)
	d.keyField, d.eventIDField = -1, -1
	for _, f := range clean.Fields() {
		t, err := goType(f.Type())
		if err != nil {
			errs = append(errs, fmt.Errorf("field %s: %w", f.Name(), err))
			continue
		}
		switch f.Name() {
		case ds.Key:
			d.keyField, d.keyType = len(fields), t
		case schemas.FieldEventID:
			d.eventIDField = len(fields)
		}
		fields = append(fields, reflect.StructField{Name: fmt.Sprintf("F%d", len(fields)), Type: t, Tag: reflect.StructTag(fmt.Sprintf("avro:%q", f.Name()))})
	}
	switch {
	case d.keyField < 0:
		errs = append(errs, fmt.Errorf("the key field %s is no field of the clean schema", ds.Key))
	case d.keyType.Kind() == reflect.String:
		d.textKey = true
	case d.keyType.Kind() != reflect.Int32 && d.keyType.Kind() != reflect.Int64:
		errs = append(errs, fmt.Errorf("the key field %s is %s; the scorer keys predictions by an integer or a text", ds.Key, d.keyType))
	}
	if d.eventIDField < 0 || fields[d.eventIDField].Type.Kind() != reflect.String {
		errs = append(errs, fmt.Errorf("no string field %s", schemas.FieldEventID))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("dataset %s: clean schema: %w", ds.Name, err)
	}
	cleanType := reflect.StructOf(fields)
	d.clean = model.FieldsOf(cleanType)
	d.persistedType = reflect.StructOf([]reflect.StructField{
		{Name: "Record", Type: cleanType, Tag: `avro:"` + schemas.FieldRecord + `"`},
		{Name: "Action", Type: reflect.TypeFor[string](), Tag: `avro:"` + schemas.FieldAction + `"`},
		{Name: "PersistedAt", Type: reflect.TypeFor[time.Time](), Tag: `avro:"` + schemas.FieldPersistedAt + `"`},
	})
	return d, nil
}

// goType is the Go type a value of Avro type s decodes into: a union of
// null and one type is a pointer to that type.
func goType(s avro.Schema) (reflect.Type, error) {
	if u, ok := s.(*avro.UnionSchema); ok {
		var types []avro.Schema
		for _, t := range u.Types() {
			if t.Type() != avro.Null {
				types = append(types, t)
			}
		}
		if len(types) != 1 {
			return nil, fmt.Errorf("a union of %d types besides null", len(types))
		}
		t, err := goType(types[0])
		if err != nil {
			return nil, err
		}
		return reflect.PointerTo(t), nil
	}
	if ls, ok := s.(avro.LogicalTypeSchema); ok && ls.Logical() != nil {
		switch ls.Logical().Type() {
		case avro.Decimal:
			return reflect.TypeFor[*big.Rat](), nil
		case avro.Date, avro.TimestampMillis, avro.TimestampMicros:
			return reflect.TypeFor[time.Time](), nil
		case avro.UUID:
			return reflect.TypeFor[string](), nil
		}
		return nil, fmt.Errorf("the logical type %s is not read", ls.Logical().Type())
	}
	switch s.Type() {
	case avro.String, avro.Enum:
		return reflect.TypeFor[string](), nil
	case avro.Int:
		return reflect.TypeFor[int32](), nil
	case avro.Long:
		return reflect.TypeFor[int64](), nil
	case avro.Boolean:
		return reflect.TypeFor[bool](), nil
	case avro.Float:
		return reflect.TypeFor[float32](), nil
	case avro.Double:
		return reflect.TypeFor[float64](), nil
	case avro.Bytes:
		return reflect.TypeFor[[]byte](), nil
	case avro.Array:
		t, err := goType(s.(*avro.ArraySchema).Items())
		if err != nil {
			return nil, err
		}
		return reflect.SliceOf(t), nil
	case avro.Map:
		t, err := goType(s.(*avro.MapSchema).Values())
		if err != nil {
			return nil, err
		}
		return reflect.MapOf(reflect.TypeFor[string](), t), nil
	}
	return nil, fmt.Errorf("a %s is not read", s.Type())
}

// codecs registers the dataset's persisted schema for decoding and
// returns the encoder of its scored records.
func (d *dataset) codecs(ctx context.Context, reg *serde.Registry) (*scoredEncoder, error) {
	var err error
	if d.codec, err = serde.NewCodec[any](ctx, reg, kafka.Topic(kafka.Persisted, d.name), d.persistedSchema); err != nil {
		return nil, err
	}
	out, err := serde.NewCodec[any](ctx, reg, kafka.Topic(kafka.Scored, d.name), d.scoredSchema)
	if err != nil {
		return nil, err
	}
	return newScoredEncoder(out, d.key, d.keyType, d.estimateField, d.statedField), nil
}

// Decode reads a persisted record in the wire format into v, a new struct
// of the dataset's type: stage.Decoder.
func (d *dataset) Decode(b []byte, v *persisted) error {
	p := reflect.New(d.persistedType)
	x := p.Interface()
	if err := d.codec.Decode(b, &x); err != nil {
		return err
	}
	*v = p
	return nil
}

// cleanOf is the clean record of a persisted one.
func cleanOf(p persisted) reflect.Value { return p.Elem().Field(0) }

// record is what the model reads of a clean record.
func (d *dataset) record(clean reflect.Value) model.Record { return d.clean.Value(clean) }

// keyOf is a clean record's key as the predictions table takes it: an
// int64 or a string.
func (d *dataset) keyOf(clean reflect.Value) any {
	f := clean.Field(d.keyField)
	if d.textKey {
		return f.String()
	}
	return f.Int()
}

// recordKey is a key as the records of every topic carry it: an integer
// in decimal, a text as it is.
func recordKey(key any) []byte {
	switch k := key.(type) {
	case int64:
		return strconv.AppendInt(nil, k, 10)
	case int32:
		return strconv.AppendInt(nil, int64(k), 10)
	case string:
		return []byte(k)
	}
	return fmt.Append(nil, key)
}

// scored is one record for scored.<dataset>: the model's prediction for
// one persisted event, as the predictions table holds it.
type scored struct {
	// Key is the row's key: an int64, an int32 or a string.
	Key            any
	EventID        string
	Probability    float64
	PredictedLabel int32
	ModelVersion   string
	ScoredAt       time.Time
	// Estimate (a ridge model's prediction; nil in a row written before
	// the table kept it) and Stated (whether the record had its own
	// value of the label) are a ridge model's; a logistic one leaves them
	// out of its scored records.
	Estimate *float64
	Stated   bool
}

// scoredEncoder writes scored records with the dataset's derived scored
// schema, through a struct type whose key field has the clean key's name
// and type.
type scoredEncoder struct {
	codec *serde.Codec[any]
	typ   reflect.Type
}

// newScoredEncoder encodes scored records whose key field is key, of
// keyType; estimate and stated, when set, name the fields of a ridge
// model's estimate and of whether the record stated its own label.
func newScoredEncoder(codec *serde.Codec[any], key string, keyType reflect.Type, estimate, stated string) *scoredEncoder {
	tag := func(name string) reflect.StructTag { return reflect.StructTag(fmt.Sprintf("avro:%q", name)) }
	fields := []reflect.StructField{
		{Name: "Key", Type: keyType, Tag: tag(key)},
		{Name: "EventID", Type: reflect.TypeFor[string](), Tag: tag(schemas.FieldEventID)},
		{Name: "Probability", Type: reflect.TypeFor[float64](), Tag: tag(schemas.FieldProbability)},
		{Name: "PredictedLabel", Type: reflect.TypeFor[int32](), Tag: tag(schemas.FieldPredictedLabel)},
		{Name: "ModelVersion", Type: reflect.TypeFor[string](), Tag: tag(schemas.FieldModelVersion)},
		{Name: "ScoredAt", Type: reflect.TypeFor[time.Time](), Tag: tag(schemas.FieldScoredAt)},
	}
	if estimate != "" {
		fields = append(fields,
			reflect.StructField{Name: "Estimate", Type: reflect.TypeFor[*float64](), Tag: tag(estimate)},
			reflect.StructField{Name: "Stated", Type: reflect.TypeFor[bool](), Tag: tag(stated)})
	}
	return &scoredEncoder{codec: codec, typ: reflect.StructOf(fields)}
}

// AppendEncode appends s in the wire format to dst: stage.Encoder.
func (e *scoredEncoder) AppendEncode(dst []byte, s *scored) ([]byte, error) {
	p := reflect.New(e.typ)
	v := p.Elem()
	k, want := reflect.ValueOf(s.Key), e.typ.Field(0).Type
	if !k.IsValid() || !k.CanConvert(want) || (k.Kind() == reflect.String) != (want.Kind() == reflect.String) {
		return dst, fmt.Errorf("encode the scored record of event %s: key %v (%T) is no %s", s.EventID, s.Key, s.Key, want)
	}
	v.Field(0).Set(k.Convert(want))
	v.Field(1).SetString(s.EventID)
	v.Field(2).SetFloat(s.Probability)
	v.Field(3).SetInt(int64(s.PredictedLabel))
	v.Field(4).SetString(s.ModelVersion)
	v.Field(5).Set(reflect.ValueOf(s.ScoredAt))
	if e.typ.NumField() > 6 {
		v.Field(6).Set(reflect.ValueOf(s.Estimate))
		v.Field(7).SetBool(s.Stated)
	}
	x := p.Interface()
	return e.codec.AppendEncode(dst, &x)
}
