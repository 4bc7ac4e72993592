package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/ingest"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/schemas"
)

// source is one dataset the extractor publishes.
type source struct {
	dataset  *ingest.Dataset
	keyField string // the dataset's key field
	codec    *serde.Codec[map[string]any]
	keys     *serde.KeyCodec
	topic    string
	// dead encodes the records that cannot be read into dlq, the
	// dataset's dead-letter topic.
	dead *serde.Codec[schemas.DeadLetter]
	dlq  string
	// limit and deadLimit are the largest records, in bytes as Kafka
	// counts them, that topic and dlq take (see topicLimits).
	limit, deadLimit int
}

// key is the record's key for the raw topic: its id as an Avro string, or
// nil when it has none.
func (s *source) key(rec ingest.Record) []byte {
	if k := s.dataset.Key(rec); k != nil {
		return s.keys.Append(nil, k)
	}
	return nil
}

// publisher publishes batches of records, each whole or not at all, in
// one Kafka transaction at a time.
//
// A transaction that fails (Kafka unreachable, too slow) may leave its
// client stuck: records in flight to a broker that went away cannot be
// failed safely by an idempotent producer. So the client of a failed
// transaction is dropped and closed in the background, and the next
// publish starts a new one; its transactional id, the same, fences
// whatever the old one left open.
type publisher struct {
	connect func() (*kgo.Client, error)
	timeout time.Duration
	bytes   prometheus.Counter // of the records committed, keys and values

	mu       sync.Mutex
	producer *kgo.Client // nil after a failure, until the next publish
}

// publish produces recs in one transaction and waits for its commit, at
// most the publisher's timeout.
func (p *publisher) publish(ctx context.Context, recs []*kgo.Record) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.ensureProducer(); err != nil {
		return err
	}
	// The transaction runs on its own, so that a stuck client cannot hold
	// the caller past the timeout.
	done := make(chan error, 1)
	cl := p.producer
	go func() { done <- transact(ctx, cl, recs) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = fmt.Errorf("publish %d records: %w", len(recs), ctx.Err())
	}
	if err != nil {
		p.producer = nil
		go func() {
			<-done
			cl.Close()
		}()
		return err
	}
	n := 0
	for _, r := range recs {
		n += len(r.Key) + len(r.Value)
	}
	p.bytes.Add(float64(n))
	return nil
}

// fence initialises the producer's id, for which the broker aborts at once
// whatever transaction a predecessor with the same transactional id left
// open (a process killed mid-publish). Until then read_committed readers,
// the file checkpoints' among them, wait for that transaction to time out.
func (p *publisher) fence(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.ensureProducer(); err != nil {
		return err
	}
	if _, _, err := p.producer.ProducerID(ctx); err != nil {
		return fmt.Errorf("initialise the transactional producer: %w", err)
	}
	return nil
}

// ensureProducer connects when there is no client; p.mu is held.
func (p *publisher) ensureProducer() error {
	if p.producer != nil {
		return nil
	}
	cl, err := p.connect()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	p.producer = cl
	return nil
}

// close closes the current client.
func (p *publisher) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.producer != nil {
		p.producer.Close()
		p.producer = nil
	}
}

// transact produces recs in one transaction of cl and commits it.
func transact(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	if err := cl.BeginTransaction(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		_ = cl.EndTransaction(ctx, kgo.TryAbort)
		return fmt.Errorf("produce %d records: %w", len(recs), err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("commit %d records: %w", len(recs), err)
	}
	return nil
}

// ingestAPI is the HTTP ingest endpoint, POST /v1/datasets/{dataset}/events:
// a JSON object, a JSON array of objects or NDJSON. It answers 202 with the
// count only once Kafka has committed every record of the body in one
// transaction, so a body is published whole or not at all.
type ingestAPI struct {
	sources map[string]*source
	token   string
	maxBody int64
	log     *zap.Logger
	out     *publisher
	records *prometheus.CounterVec // by dataset
}

func (a *ingestAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.token != "" && r.Header.Get("Authorization") != "Bearer "+a.token {
		reply(w, http.StatusUnauthorized, "error", "missing or wrong bearer token (Authorization: Bearer <EXTRACTOR_HTTP_TOKEN>)")
		return
	}
	name := r.PathValue("dataset")
	src, ok := a.sources[name]
	if !ok {
		reply(w, http.StatusNotFound, "error", fmt.Sprintf("unknown dataset %q", name))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.maxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		reply(w, http.StatusRequestEntityTooLarge, "error", fmt.Sprintf("body larger than %d bytes (EXTRACTOR_MAX_BODY_BYTES); nothing was published", a.maxBody))
		return
	case err != nil:
		reply(w, http.StatusBadRequest, "error", "read body: "+err.Error())
		return
	}
	recs, err := a.parse(src, body)
	switch {
	case errors.Is(err, errTooLarge):
		reply(w, http.StatusRequestEntityTooLarge, "error", err.Error()+"; nothing was published")
		return
	case err != nil:
		reply(w, http.StatusBadRequest, "error", err.Error()+"; nothing was published")
		return
	}
	if err := a.out.publish(r.Context(), recs); err != nil {
		// A record the broker refuses for its size is refused again
		// whenever it is sent: no reason to try later.
		if errors.Is(err, kerr.MessageTooLarge) {
			reply(w, http.StatusRequestEntityTooLarge, "error", "Kafka refused a record as too large (MESSAGE_TOO_LARGE), nothing was published: "+err.Error())
			return
		}
		a.log.Warn("ingest not published", zap.String("dataset", name), zap.Int("batch_size", len(recs)), zap.Error(err))
		reply(w, http.StatusServiceUnavailable, "error", "Kafka did not take the records, nothing was published: "+err.Error())
		return
	}
	a.records.WithLabelValues(name).Add(float64(len(recs)))
	reply(w, http.StatusAccepted, "accepted", len(recs))
}

// maxNamed is how many records without a key a refusal names.
const maxNamed = 10

// keylessError refuses a body whose records at positions, of records in
// all, lack the key field.
type keylessError struct {
	field     string
	positions []string
	records   int
}

func (e *keylessError) Error() string {
	n := len(e.positions)
	named := strings.Join(e.positions[:min(n, maxNamed)], ", ")
	if n > maxNamed {
		named += fmt.Sprintf(" and %d more", n-maxNamed)
	}
	return fmt.Sprintf("%d of %d records lack the key field %q: %s", n, e.records, e.field, named)
}

// parse reads a body into records: a JSON array, or one object per line
// (a single object is one line). Unknown fields are refused; so is a body
// with records that lack the dataset's key (every one counted, the first
// maxNamed named), or a record larger than the broker takes (an error
// wrapping errTooLarge).
//
// The body is one arrival: its records are timed from now, a microsecond
// apart, and positioned in the request, whose random id makes their event
// ids unique to it, whatever the time and the replica that took it.
func (a *ingestAPI) parse(src *source, body []byte) ([]*kgo.Record, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, errors.New("empty body: send a JSON object, a JSON array of objects or NDJSON")
	}
	format := ingest.NDJSON
	if trimmed[0] == '[' {
		format = ingest.JSON
	}
	now := time.Now().Truncate(time.Microsecond)
	request := "request " + rand.Text()
	var (
		recs    []*kgo.Record
		keyless []string // positions of the records without a key
	)
	err := ingest.Read(bytes.NewReader(trimmed), format, func(rec ingest.Record) error {
		if unknown := src.dataset.Unknown(rec); len(unknown) > 0 {
			return &ingest.Error{Position: rec.Position, Err: fmt.Errorf("unknown fields %s (known: %s)",
				strings.Join(unknown, ", "), strings.Join(src.dataset.Fields(), ", "))}
		}
		key := src.key(rec)
		if key == nil {
			keyless = append(keyless, rec.Position)
			return nil
		}
		pos := rec.Position
		rec.Position = request + " " + pos
		v := src.dataset.Raw("http", rec, now.Add(time.Duration(len(recs))*time.Microsecond))
		b, err := src.codec.Encode(&v)
		if err != nil {
			return &ingest.Error{Position: pos, Err: err}
		}
		out := &kgo.Record{Topic: src.topic, Key: key, Value: b}
		if err := fits(out, src.limit); err != nil {
			return &ingest.Error{Position: pos, Err: err}
		}
		recs = append(recs, out)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(keyless) > 0 {
		return nil, &keylessError{field: src.keyField, positions: keyless, records: len(keyless) + len(recs)}
	}
	if len(recs) == 0 {
		return nil, errors.New("no records in the body")
	}
	return recs, nil
}

func reply(w http.ResponseWriter, status int, key string, value any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{key: value})
}
