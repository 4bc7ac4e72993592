// Package lake is the raw data lake: every raw.<dataset> event kept as
// Parquet on S3-compatible storage, one object per cut of one partition.
//
// It holds what the lake sink (services/lake), `datamill replay` and the
// tests share: where an object goes (Key), how its bytes are written and
// read (Writer, Open), and the object store (Store).
//
// # Objects
//
// An object holds the rows of one cut of one partition of raw.<dataset>, in
// offset order, under
//
//	<prefix>/dataset=<ds>/dt=<YYYY-MM-DD>/hour=<HH>/<topic>-<topic id, 8 hex>-<partition>-<start, 20 digits>.parquet
//
// so that a key is a function of topic (its name and Kafka topic id: a
// topic deleted and created again under the same name numbers its offsets
// from 0 again), partition and start offset alone and Hive-partitioned
// readers (DuckDB, Spark, Athena) prune by day and
// hour. It is Parquet, zstd-compressed, with one column per field of the
// dataset's raw Avro schema, in the schema's order and named as its fields,
// then the envelope columns (ColTopic ... ColKey). Avro types map to
// Parquet as follows: string and enum to STRING, int to INT(32), long to
// INT(64), long timestamp-micros and timestamp-millis to TIMESTAMP (UTC)
// of the same unit, float, double and boolean to themselves, bytes to
// BYTE_ARRAY, a ["null", T] union to an optional T, an array to a LIST, a
// map to a MAP of STRING keys, a record to a group. Any other type (fixed,
// wider unions, other logical types) is refused when the Writer is made.
//
// The file's key-value metadata holds the Avro schema (avro.schema, its
// canonical JSON), and datamill.dataset, datamill.topic,
// datamill.topic_id, datamill.partition, datamill.start_offset, datamill.end_offset and
// datamill.records; Open reads them back into Meta, and Rows gives every
// record back as hamba/avro decodes the raw schema into map[string]any, so
// that avro.Marshal(meta.Schema, row.Record) gives the record's original
// bytes.
//
// A Writer streams: rows are buffered for one row group at a time (at most
// RowGroupRows rows or about RowGroupBytes bytes of values), which is then
// compressed and written out.
//
// # Store
//
// Store is the bucket over the S3 API (minio-go, path-style addressing, TLS
// with a private CA, static credentials). PutNew writes an object only
// where none is (If-None-Match: *), asks for SSE-S3 encryption at rest and
// fails closed with ErrNotEncrypted when the server does not confirm it.
package lake

import (
	"errors"
	"time"

	"github.com/hamba/avro/v2"
)

// ErrExists is returned by Store.PutNew when an object already has the key
// (the server answered 412 to If-None-Match: *).
var ErrExists = errors.New("object exists")

// ErrNotEncrypted is returned by Store.PutNew when the server did not
// confirm server-side encryption of the object it stored; the sink fails
// closed on it.
var ErrNotEncrypted = errors.New("server did not confirm encryption at rest")

// ErrNotFound is returned by Store.Head and Store.Get when no object has
// the key.
var ErrNotFound = errors.New("object not found")

// Config is where the lake is and how to reach it, from the environment.
type Config struct {
	// Endpoint is the S3 server, http(s)://host:port; empty disables the lake.
	Endpoint string `env:"S3_ENDPOINT" envDefault:""`
	// Bucket holds the lake.
	Bucket string `env:"S3_BUCKET" envDefault:"datamill-lake"`
	// Prefix is the first part of every key the sink writes (raw).
	Prefix string `env:"S3_PREFIX" envDefault:"raw"`
	Region string `env:"S3_REGION" envDefault:"us-east-1"`
	// AccessKey and SecretKey are the credentials, required with an
	// Endpoint. Both are secrets: config.Parse reads S3_ACCESS_KEY_FILE
	// and S3_SECRET_KEY_FILE, and both are redacted from the logged
	// configuration.
	AccessKey string `env:"S3_ACCESS_KEY" envDefault:"" secret:"true"`
	SecretKey string `env:"S3_SECRET_KEY" envDefault:"" secret:"true"`
	// CAFile is a PEM bundle trusted for an https Endpoint.
	CAFile string `env:"S3_CA_FILE" envDefault:""`
	// SSE is the server-side encryption asked for and required: "s3"
	// (SSE-S3, the default) or "none" (nothing asked, nothing checked).
	SSE string `env:"S3_SSE" envDefault:"s3"`
}

// Enabled reports whether a lake is configured.
func (c Config) Enabled() bool { return c.Endpoint != "" }

// Envelope is where a raw event was in Kafka.
type Envelope struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time // the Kafka record's timestamp
	SchemaID  int       // the registry id of the schema it was written with
	Key       []byte    // the Kafka record's key as it came (nil when none)
}

// Envelope columns, after the dataset's raw fields.
const (
	ColTopic     = "_topic"
	ColPartition = "_partition"
	ColOffset    = "_offset"
	ColTimestamp = "_timestamp"
	ColSchemaID  = "_schema_id"
	ColKey       = "_key"
)

// Meta is what a lake object's key-value metadata and S3 user metadata
// say of it.
type Meta struct {
	Dataset string
	Topic   string
	// TopicID is the Kafka topic id of Topic, 32 lower-case hex digits
	// (all zeros from a broker without topic ids): a topic deleted and
	// created again under the same name has a new one.
	TopicID   string
	Partition int32
	// Start is where the cut began: the End of the partition's previous
	// object (or where the sink first started reading). The first record
	// may lie above it (transaction markers and aborted records take
	// offsets too). End is one past the last record's offset. The
	// [Start, End) ranges of a partition's objects tile it: no gap, no
	// overlap.
	Start   int64
	End     int64
	Records int64
	Schema  avro.Schema // the raw schema the rows follow
}

// Row is one event read back from a lake object.
type Row struct {
	Record   map[string]any // the raw record, as it would be encoded with Meta.Schema
	Envelope Envelope
}

// Object is what a listing or a HEAD says of a stored object.
type Object struct {
	Key       string
	Size      int64
	Encrypted bool              // the server says it is encrypted at rest
	Meta      map[string]string // user metadata, lower-case names without x-amz-meta-
}
