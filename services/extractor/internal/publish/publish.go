// Package publish is what every source of the extractor publishes through: a
// dataset's records encoded for raw.<dataset>, keyed and held to the size
// the broker takes, the dead letters of those that cannot be published,
// encoded for dlq.<dataset>, and the producer that commits each batch of
// them in one Kafka transaction.
package publish

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/datamill/datamill/pkg/ingest"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/schemas"
)

// Dataset is one dataset as the sources publish it.
type Dataset struct {
	Name string
	// KeyField is the dataset's key field.
	KeyField string

	shape *ingest.Dataset
	codec *serde.Codec[map[string]any]
	keys  *serde.KeyCodec
	topic string
	// dead encodes the records that cannot be read into dlq, the
	// dataset's dead-letter topic.
	dead *serde.Codec[schemas.DeadLetter]
	dlq  string
	// limit and deadLimit are the largest records, in bytes as Kafka
	// counts them, that topic and dlq take (see TopicLimits).
	limit, deadLimit int
}

// NewDataset prepares dataset name, whose raw schema is rawSchema and
// whose records are keyed by key, for publishing to raw.<name>, its
// records held to the producer's limit until SetLimits says more.
func NewDataset(ctx context.Context, reg *serde.Registry, name string, rawSchema avro.Schema, key string) (*Dataset, error) {
	shape, err := ingest.NewDataset(name, rawSchema, key)
	if err != nil {
		return nil, err
	}
	topic := kafka.Topic(kafka.Raw, name)
	codec, err := serde.NewCodec[map[string]any](ctx, reg, topic, rawSchema)
	if err != nil {
		return nil, err
	}
	dlq := kafka.Topic(kafka.DLQ, name)
	dead, err := serde.NewCodec[schemas.DeadLetter](ctx, reg, dlq, schemas.MustSchema("deadletter"))
	if err != nil {
		return nil, err
	}
	keys, err := serde.NewKeyCodec(ctx, reg, topic)
	if err != nil {
		return nil, err
	}
	return &Dataset{
		Name: name, KeyField: key, shape: shape, codec: codec, keys: keys, topic: topic, dead: dead, dlq: dlq,
		limit: ProducerMaxBytes, deadLimit: ProducerMaxBytes,
	}, nil
}

// Topic is the dataset's raw topic, raw.<dataset>.
func (d *Dataset) Topic() string { return d.topic }

// SetLimits takes the limits of the dataset's topics from limits, as
// TopicLimits reads them.
func (d *Dataset) SetLimits(limits map[string]int) {
	d.limit, d.deadLimit = limits[d.topic], limits[d.dlq]
}

// Fields are the dataset's source fields.
func (d *Dataset) Fields() []string { return d.shape.Fields() }

// Unknown lists a record's fields the dataset does not have.
func (d *Dataset) Unknown(rec ingest.Record) []string { return d.shape.Unknown(rec) }

// Key is the record's key for the raw topic: its id as an Avro string, or
// nil when it has none.
func (d *Dataset) Key(rec ingest.Record) []byte {
	if k := d.shape.Key(rec); k != nil {
		return d.keys.Append(nil, k)
	}
	return nil
}

// Value encodes rec as the raw record of an arrival from source at at, and
// returns it with its event id.
func (d *Dataset) Value(source string, rec ingest.Record, at time.Time) (value []byte, eventID string, err error) {
	v := d.shape.Raw(source, rec, at)
	b, err := d.codec.Encode(&v)
	return b, v[ingest.FieldEventID].(string), err
}

// Record is the record of raw.<dataset> with key and value, or an error
// wrapping ErrTooLarge when the broker would refuse it for its size.
func (d *Dataset) Record(key, value []byte) (*kgo.Record, error) {
	out := &kgo.Record{Topic: d.topic, Key: key, Value: value}
	if err := fits(out, d.limit); err != nil {
		return nil, err
	}
	return out, nil
}

// DeadLetter is the record of dlq.<dataset> for the record at position of
// source (a position ends with its line or item number) that the extractor
// cannot publish for reason. It keeps at most MaxDeadBytes of raw, the
// record's bytes, and half of what the dead-letter topic takes.
func (d *Dataset) DeadLetter(source, position string, raw []byte, reason string) (*kgo.Record, error) {
	at, _ := strconv.ParseInt(position[strings.LastIndexByte(position, ' ')+1:], 10, 64)
	return stage.DeadLetterRecord(d.dead, d.dlq, d.Name, "extractor",
		&kgo.Record{Topic: source, Partition: -1, Offset: at, Value: clip(raw, d.deadLimit)}, []string{position + ": " + reason}, time.Now())
}

// IsDeadLetter reports whether rec is one of the dataset's dead letters.
func (d *Dataset) IsDeadLetter(rec *kgo.Record) bool { return rec.Topic == d.dlq }
