// Package serde encodes and decodes record values in the Confluent wire
// format: a zero magic byte, the writer schema's registry id as four
// big-endian bytes, then the Avro binary body.
//
// Value schemas are registered under <topic>-value. Keys are Avro strings
// (the entity's id) in the same wire format, under <topic>-key, so that
// Confluent's Avro clients read and write them as they do values.
// Registration is refused when
// the new schema is not BACKWARD compatible with the subject's latest
// version; datamill checks this itself, so it holds with any registry.
// Decoding looks the writer schema up by id and resolves it against the
// reader's schema, so consumers keep reading across compatible changes.
package serde

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/schemas"
)

// ErrMalformed marks a value that can never be decoded: retrying will not
// help, the record belongs in a dead-letter topic.
var ErrMalformed = errors.New("malformed value")

// Config is the schema registry block of a service's configuration.
type Config struct {
	// RegistryURL is the base URL of a Confluent-API schema registry.
	RegistryURL string `env:"SCHEMA_REGISTRY_URL"`
	Username    string `env:"SCHEMA_REGISTRY_USERNAME" envDefault:""`
	Password    string `env:"SCHEMA_REGISTRY_PASSWORD" envDefault:"" secret:"true"`
}

// Registry is a schema registry client that enforces BACKWARD
// compatibility on registration and caches schemas by id.
type Registry struct {
	cl   *sr.Client
	byID sync.Map // int → avro.Schema
}

// NewRegistry returns a client for the registry of cfg.
func NewRegistry(cfg Config) (*Registry, error) {
	opts := []sr.ClientOpt{sr.URLs(cfg.RegistryURL)}
	if cfg.Username != "" {
		opts = append(opts, sr.BasicAuth(cfg.Username, cfg.Password))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("schema registry client for %s: %w", config.RedactURL(cfg.RegistryURL), err)
	}
	return &Registry{cl: cl}, nil
}

// Subject is the registry subject of a topic's values.
func Subject(topic string) string { return topic + "-value" }

// KeySubject is the registry subject of a topic's keys.
func KeySubject(topic string) string { return topic + "-key" }

// keySchema is the schema of every key: the entity's id as a string.
var keySchema = avro.MustParse(`"string"`)

// Ping checks that the registry answers.
func (r *Registry) Ping(ctx context.Context) error {
	if _, err := r.cl.Subjects(ctx); err != nil {
		return fmt.Errorf("schema registry: %w", err)
	}
	return nil
}

// Register registers schema under subject and returns its id. It refuses,
// with an error wrapping schemas.ErrIncompatible, a schema that cannot read
// data written with the subject's latest version. Registering the same
// schema again returns the same id.
func (r *Registry) Register(ctx context.Context, subject string, schema avro.Schema) (int, error) {
	latest, err := r.cl.SchemaByVersion(ctx, subject, -1)
	switch {
	case notFound(err):
	case err != nil:
		return 0, fmt.Errorf("latest schema of %s: %w", subject, err)
	default:
		prev, err := schemas.Parse(latest.Schema.Schema)
		if err != nil {
			return 0, fmt.Errorf("latest schema of %s (id %d) does not parse: %w", subject, latest.ID, err)
		}
		if err := schemas.CheckBackward(schema, prev); err != nil {
			return 0, fmt.Errorf("register %s: refused against version %d (id %d): %w", subject, latest.Version, latest.ID, err)
		}
	}
	// The full form, not schema.String(): the canonical form drops
	// defaults, docs and attributes, and a registry that checks
	// compatibility itself would then see an added optional field as a
	// required one.
	text, err := json.Marshal(schema)
	if err != nil {
		return 0, fmt.Errorf("register %s: schema to JSON: %w", subject, err)
	}
	ss, err := r.cl.CreateSchema(ctx, subject, sr.Schema{Schema: string(text), Type: sr.TypeAvro})
	if err != nil {
		return 0, fmt.Errorf("register %s: %w", subject, err)
	}
	r.byID.Store(ss.ID, schema)
	return ss.ID, nil
}

// schema returns the schema with id, from the cache or the registry. An id
// the registry does not know is malformed input.
func (r *Registry) schema(ctx context.Context, id int) (avro.Schema, error) {
	if s, ok := r.byID.Load(id); ok {
		return s.(avro.Schema), nil
	}
	got, err := r.cl.SchemaByID(ctx, id)
	if notFound(err) {
		return nil, fmt.Errorf("%w: schema id %d is unknown to the registry", ErrMalformed, id)
	}
	if err != nil {
		return nil, fmt.Errorf("schema id %d: %w", id, err)
	}
	s, err := schemas.Parse(got.Schema)
	if err != nil {
		return nil, fmt.Errorf("%w: schema id %d does not parse: %w", ErrMalformed, id, err)
	}
	r.byID.Store(id, s)
	return s, nil
}

func notFound(err error) bool {
	var re *sr.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

// Codec encodes and decodes the values of one topic as T.
type Codec[T any] struct {
	reg      *Registry
	schema   avro.Schema
	id       int
	header   [5]byte
	resolved sync.Map // writer id → avro.Schema to decode with
}

// NewCodec registers schema for topic's values and returns the codec that
// writes with it and reads into T through it.
func NewCodec[T any](ctx context.Context, reg *Registry, topic string, schema avro.Schema) (*Codec[T], error) {
	return newCodec[T](ctx, reg, Subject(topic), schema)
}

// KeyCodec writes and reads a topic's keys: Avro strings in the wire
// format.
type KeyCodec struct {
	header [5]byte
}

// NewKeyCodec registers the key schema, an Avro string, for topic's keys
// and returns the codec of its keys.
func NewKeyCodec(ctx context.Context, reg *Registry, topic string) (*KeyCodec, error) {
	id, err := reg.Register(ctx, KeySubject(topic), keySchema)
	if err != nil {
		return nil, err
	}
	k := &KeyCodec{}
	binary.BigEndian.PutUint32(k.header[1:], uint32(id)) // #nosec G115 -- schema ids are int32 in the registry protocol
	return k, nil
}

// Append appends key in the wire format to dst: the header, the string's
// length as a zigzag varint, its bytes.
func (k *KeyCodec) Append(dst []byte, key []byte) []byte {
	dst = append(dst, k.header[:]...)
	dst = binary.AppendVarint(dst, int64(len(key)))
	return append(dst, key...)
}

// Decode returns the key b holds, whatever string schema id wrote it.
func (k *KeyCodec) Decode(b []byte) ([]byte, error) {
	if len(b) < 6 || b[0] != 0 {
		return nil, fmt.Errorf("%w: key %q is not an Avro string in the wire format", ErrMalformed, b)
	}
	n, size := binary.Varint(b[5:])
	if size <= 0 || n < 0 || int64(len(b)-5-size) != n {
		return nil, fmt.Errorf("%w: key %q: bad string length", ErrMalformed, b)
	}
	return b[5+size:], nil
}

func newCodec[T any](ctx context.Context, reg *Registry, subject string, schema avro.Schema) (*Codec[T], error) {
	id, err := reg.Register(ctx, subject, schema)
	if err != nil {
		return nil, err
	}
	c := &Codec[T]{reg: reg, schema: schema, id: id}
	binary.BigEndian.PutUint32(c.header[1:], uint32(id)) // #nosec G115 -- schema ids are int32 in the registry protocol
	c.resolved.Store(id, schema)
	return c, nil
}

// ID is the registry id of the codec's schema.
func (c *Codec[T]) ID() int { return c.id }

// Schema is the codec's schema.
func (c *Codec[T]) Schema() avro.Schema { return c.schema }

// Body returns the Avro body of b, a value in the wire format, when b was
// written with the codec's own schema: the body is then laid out exactly
// as that schema says, and can be copied into another value instead of
// decoded and encoded again.
func (c *Codec[T]) Body(b []byte) ([]byte, bool) {
	if len(b) < 5 || b[0] != 0 || int(binary.BigEndian.Uint32(b[1:5])) != c.id {
		return nil, false
	}
	return b[5:], true
}

// AppendHeader appends the wire-format header of the codec's schema to dst:
// a body written with that schema follows it.
func (c *Codec[T]) AppendHeader(dst []byte) []byte { return append(dst, c.header[:]...) }

// writers holds Avro writers for AppendEncode, which copies the body out
// of the writer's buffer into the caller's.
var writers = sync.Pool{New: func() any { return avro.NewWriter(nil, 512) }}

// maxPooledBuffer bounds the buffer a pooled writer keeps, so that one huge
// record does not pin its memory in the pool.
const maxPooledBuffer = 64 << 10

// AppendEncode appends v in the wire format to dst.
func (c *Codec[T]) AppendEncode(dst []byte, v *T) ([]byte, error) {
	w := writers.Get().(*avro.Writer)
	w.Reset(nil)
	w.WriteVal(c.schema, v)
	err := w.Error
	if err == nil {
		dst = append(dst, c.header[:]...)
		dst = append(dst, w.Buffer()...)
	}
	w.Error = nil
	if cap(w.Buffer()) <= maxPooledBuffer {
		writers.Put(w)
	}
	if err != nil {
		return dst, fmt.Errorf("encode %s: %w", name(c.schema), err)
	}
	return dst, nil
}

// Encode returns v in the wire format.
func (c *Codec[T]) Encode(v *T) ([]byte, error) {
	return c.AppendEncode(make([]byte, 0, 64), v)
}

// Decode reads b into v. Bytes that can never decode give an error matching
// ErrMalformed, and so do values the schema cannot hold (an array or map of
// more than 2^20 items, a decimal wider than its precision); an unreachable registry gives another error, worth a retry.
func (c *Codec[T]) Decode(b []byte, v *T) error {
	if len(b) < 5 {
		return fmt.Errorf("%w: %d bytes, shorter than the 5-byte header", ErrMalformed, len(b))
	}
	if b[0] != 0 {
		return fmt.Errorf("%w: magic byte %d, want 0", ErrMalformed, b[0])
	}
	id := int(binary.BigEndian.Uint32(b[1:5]))
	s, err := c.readerFor(id)
	if err != nil {
		return err
	}
	writer, err := c.reg.schema(context.Background(), id)
	if err != nil {
		return err
	}
	if err := check(writer, b[5:]); err != nil {
		return fmt.Errorf("%w: avro body (schema id %d): %w", ErrMalformed, id, err)
	}
	if err := unmarshal(s, b[5:], v); err != nil {
		return fmt.Errorf("%w: avro body (schema id %d): %w", ErrMalformed, id, err)
	}
	return nil
}

var readers = sync.Pool{New: func() any { return avro.NewReader(nil, 0) }}

// unmarshal decodes body, which must hold exactly one value. Unlike
// avro.Unmarshal it treats a body that ends early as an error (hamba
// reports a truncated value as io.EOF, which Unmarshal swallows) and
// refuses trailing bytes.
func unmarshal(s avro.Schema, body []byte, v any) error {
	r := readers.Get().(*avro.Reader)
	defer func() {
		r.Reset(nil) // drop the reference to body
		r.Error = nil
		readers.Put(r)
	}()
	r.Error = nil
	r.Reset(body)
	r.ReadVal(s, v)
	if r.Error != nil {
		return r.Error
	}
	r.Peek()
	if r.Error == nil {
		return errors.New("trailing bytes after the value")
	}
	return nil
}

// readerFor returns the schema that decodes data written with schema id
// into T: the codec's own schema resolved against the writer's.
func (c *Codec[T]) readerFor(id int) (avro.Schema, error) {
	if s, ok := c.resolved.Load(id); ok {
		return s.(avro.Schema), nil
	}
	writer, err := c.reg.schema(context.Background(), id)
	if err != nil {
		return nil, err
	}
	s, err := avro.NewSchemaCompatibility().Resolve(c.schema, writer)
	if err != nil {
		return nil, fmt.Errorf("%w: schema id %d cannot be read as %s: %w", ErrMalformed, id, name(c.schema), err)
	}
	c.resolved.Store(id, s)
	return s, nil
}

// DecodeAny decodes a wire-format value with the schema it was written
// with into generic values (records as map[string]any), for tools that
// show any topic. It returns the writer schema's id.
func (r *Registry) DecodeAny(ctx context.Context, b []byte) (int, any, error) {
	if len(b) < 5 || b[0] != 0 {
		return 0, nil, fmt.Errorf("%w: not in the Confluent wire format", ErrMalformed)
	}
	id := int(binary.BigEndian.Uint32(b[1:5]))
	s, err := r.schema(ctx, id)
	if err != nil {
		return id, nil, err
	}
	var v any
	if err := check(s, b[5:]); err != nil {
		return id, nil, fmt.Errorf("%w: avro body (schema id %d): %w", ErrMalformed, id, err)
	}
	if err := unmarshal(s, b[5:], &v); err != nil {
		return id, nil, fmt.Errorf("%w: avro body (schema id %d): %w", ErrMalformed, id, err)
	}
	return id, v, nil
}

// name names a schema in errors: its full name, or its type when unnamed.
func name(s avro.Schema) string {
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	return string(s.Type())
}
