// Package lake is the raw data lake: every raw.<dataset> event kept as
// Parquet on S3-compatible storage, one object per cut of one partition.
//
// It holds what the lake sink (services/lake), `datamill replay` and the
// tests share: where an object goes (Key), how its bytes are written and
// read (Writer, Open), and the object store (Store). API FROZEN for the
// parallel work of issue 21: bodies are filled in by the lake-core part.
package lake

import (
	"context"
	"errors"
	"io"
	"iter"
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

// Config is where the lake is and how to reach it, from the environment.
type Config struct {
	// Endpoint is the S3 server, http(s)://host:port; empty disables the lake.
	Endpoint string `env:"S3_ENDPOINT"`
	// Bucket holds the lake.
	Bucket string `env:"S3_BUCKET" envDefault:"datamill-lake"`
	// Prefix is the first part of every key the sink writes (raw).
	Prefix string `env:"S3_PREFIX" envDefault:"raw"`
	Region string `env:"S3_REGION" envDefault:"us-east-1"`
	// AccessKey and SecretKey are the credentials; *_FILE variants read
	// them from files (trailing newline trimmed).
	AccessKey     string `env:"S3_ACCESS_KEY"`
	AccessKeyFile string `env:"S3_ACCESS_KEY_FILE"`
	SecretKey     string `env:"S3_SECRET_KEY"`
	SecretKeyFile string `env:"S3_SECRET_KEY_FILE"`
	// CAFile is a PEM bundle trusted for an https Endpoint.
	CAFile string `env:"S3_CA_FILE"`
	// SSE is the server-side encryption asked for and required: "s3"
	// (SSE-S3, the default) or "none" (refused unless Insecure).
	SSE string `env:"S3_SSE" envDefault:"s3"`
}

// Validate checks the configuration; it reads the *_FILE secrets.
func (c *Config) Validate() error { return nil } // lake-core checks it

// Enabled reports whether a lake is configured.
func (c Config) Enabled() bool { return c.Endpoint != "" }

// Key is where the object of one cut goes:
// <prefix>/dataset=<ds>/dt=<YYYY-MM-DD>/hour=<HH>/<topic>-<partition>-<start, 20 digits>.parquet,
// dt and hour of t (the time of the cut's first record) in UTC.
func Key(prefix, dataset, topic string, partition int32, start int64, t time.Time) string {
	panic("lake: not yet")
}

// DatasetPrefix is the prefix every key of a dataset starts with
// (<prefix>/dataset=<ds>/).
func DatasetPrefix(prefix, dataset string) string { panic("lake: not yet") }

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
	Dataset   string
	Topic     string
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

// UserMetadata is Meta as S3 user metadata (x-amz-meta-*), what Head
// reads back without fetching the object.
func (m Meta) UserMetadata() map[string]string { panic("lake: not yet") }

// ParseUserMetadata reads back what UserMetadata wrote (Schema stays nil).
func ParseUserMetadata(user map[string]string) (Meta, error) { panic("lake: not yet") }

// Writer writes one lake object: Parquet (zstd), a column for every field
// of the raw schema plus the envelope columns, the Avro schema and the
// offset range in the file's key-value metadata.
type Writer struct{}

// NewWriter starts an object of rows of raw schema s on w.
func NewWriter(w io.Writer, s avro.Schema) (*Writer, error) { panic("lake: not yet") }

// Write appends one decoded raw record (as serde decodes into
// map[string]any) and where it was.
func (w *Writer) Write(rec map[string]any, env Envelope) error { panic("lake: not yet") }

// Close writes m into the file's metadata and ends the file.
func (w *Writer) Close(m Meta) error { panic("lake: not yet") }

// Row is one event read back from a lake object.
type Row struct {
	Record   map[string]any // the raw record, as it would be encoded with Meta.Schema
	Envelope Envelope
}

// File is an opened lake object.
type File struct{ Meta Meta }

// Open reads a lake object's metadata.
func Open(r io.ReaderAt, size int64) (*File, error) { panic("lake: not yet") }

// Rows yields the object's rows in offset order.
func (f *File) Rows() iter.Seq2[Row, error] { panic("lake: not yet") }

// Object is what a listing or a HEAD says of a stored object.
type Object struct {
	Key       string
	Size      int64
	Encrypted bool              // the server says it is encrypted at rest
	Meta      map[string]string // user metadata, lower-case names without x-amz-meta-
}

// Store is the lake's bucket.
type Store struct{}

// OpenStore connects to the bucket of cfg; it does not create it.
func OpenStore(ctx context.Context, cfg Config) (*Store, error) { panic("lake: not yet") }

// Ping checks the bucket answers, for readiness.
func (s *Store) Ping(ctx context.Context) error { panic("lake: not yet") }

// PutNew stores body under key only if no object has it (If-None-Match: *),
// asking for cfg.SSE and returning ErrNotEncrypted when the server did not
// confirm it, ErrExists when the key is taken.
func (s *Store) PutNew(ctx context.Context, key string, body io.Reader, size int64, meta map[string]string) error {
	panic("lake: not yet")
}

// Head describes the object at key.
func (s *Store) Head(ctx context.Context, key string) (Object, error) { panic("lake: not yet") }

// Get opens the object at key for reading (ranges included, for Open).
func (s *Store) Get(ctx context.Context, key string) (io.ReaderAt, int64, error) {
	panic("lake: not yet")
}

// List yields the objects under prefix in key order.
func (s *Store) List(ctx context.Context, prefix string) iter.Seq2[Object, error] {
	panic("lake: not yet")
}
