// Package httpingest is the extractor's HTTP ingest endpoint, POST
// /v1/datasets/{dataset}/events: a JSON object, a JSON array of objects or
// NDJSON, each body published whole in one Kafka transaction before the 202
// answer. A body is one arrival: its records are new events, timed when it
// came and identified within the request, so that content sent again later
// is a newer event than the one it repeats. A body with records that lack
// the dataset's key is refused with 400, naming them; one with a record
// larger than the broker takes with 413. A refused request (no known token,
// a producer over its rate, too many bodies at once, a body not read in
// time) is a warning in the log, naming the producer's id, the status and
// the client's address, never a token, at most ten a second; Requests
// counts every one.
package httpingest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/datamill/datamill/pkg/ingest"
	"github.com/datamill/datamill/services/extractor/internal/publish"
)

// Pattern is the endpoint's route, for an http.ServeMux.
const Pattern = "POST /v1/datasets/{dataset}/events"

// Config is what the endpoint needs.
type Config struct {
	Log *zap.Logger
	// Out publishes each body in one transaction.
	Out *publish.Producer
	// Datasets are the datasets the endpoint accepts, by name.
	Datasets map[string]*publish.Dataset
	// Undeclared are datasets the process serves whose dataset.yaml
	// declares no http source: a POST for one is refused with 404 saying
	// so.
	Undeclared []string
	// Producers are the clients the endpoint takes, each with its
	// bearer token's hash; none means the endpoint is open to all.
	Producers []Producer
	// Rate is the requests per second each producer may send, Burst how
	// many at once above it; a request past them is answered 429 with
	// Retry-After, before its body is read. A zero Rate is no limit. An
	// open endpoint has none.
	Rate  float64
	Burst int
	// Requests counts the requests answered, by producer (an id of
	// Producers, "open" on an open endpoint, "none" for a request that
	// carries no known token) and status code.
	Requests *prometheus.CounterVec
	// MaxBody caps a request's body, in bytes.
	MaxBody int64
	// MaxBodies caps the bodies read at once; a request past it is
	// answered 503 with Retry-After, before its body is read. Zero is
	// no cap.
	MaxBodies int
	// Records counts the records published, by dataset.
	Records *prometheus.CounterVec
}

// Source is the HTTP ingest endpoint, an http.Handler to serve at
// Pattern. It answers 202 with the count only once Kafka has committed
// every record of the body in one transaction, so a body is published
// whole or not at all.
type Source struct {
	cfg    Config
	limits map[string]*rate.Limiter // by producer id, when limited
	slots  chan struct{}            // one per body being read, when capped
	// denials bounds the warnings of refused requests, so that a flood of
	// them cannot flood the log; Requests counts every one.
	denials *rate.Limiter
}

// At most deniedLogRate warnings of refused requests a second, and
// deniedLogBurst at once.
const (
	deniedLogRate  = 10
	deniedLogBurst = 20
)

// New returns the endpoint of cfg.
func New(cfg Config) *Source {
	s := &Source{cfg: cfg, denials: rate.NewLimiter(deniedLogRate, deniedLogBurst)}
	if cfg.Rate > 0 {
		s.limits = map[string]*rate.Limiter{}
		for _, p := range cfg.Producers {
			s.limits[p.ID] = rate.NewLimiter(rate.Limit(cfg.Rate), max(cfg.Burst, 1))
		}
	}
	if cfg.MaxBodies > 0 {
		s.slots = make(chan struct{}, cfg.MaxBodies)
	}
	return s
}

// Run reports the endpoint ready, which it is once served, and returns nil
// when ctx ends.
func (s *Source) Run(ctx context.Context, ready func(ready bool, reason string)) error {
	ready(true, "")
	s.cfg.Log.Info("ingest endpoint ready", zap.String("path", "/v1/datasets/{dataset}/events"))
	<-ctx.Done()
	return nil
}

// Producer labels of requests from no producer of the tokens file.
const (
	openProducer    = "open" // on an endpoint without tokens
	unknownProducer = "none" // without a known token
)

func (s *Source) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	producer := openProducer
	if len(s.cfg.Producers) > 0 {
		id, ok := s.producerOf(r)
		if !ok {
			s.count(unknownProducer, http.StatusUnauthorized)
			s.denied(r, "ingest request refused", unknownProducer, http.StatusUnauthorized, zap.String("reason", "missing or wrong bearer token"))
			w.Header().Set("WWW-Authenticate", `Bearer realm="datamill ingest"`)
			reply(w, http.StatusUnauthorized, "error", "missing or wrong bearer token (Authorization: Bearer <token>, one of EXTRACTOR_INGEST_TOKENS_FILE or EXTRACTOR_HTTP_TOKEN)")
			return
		}
		producer = id
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	defer func() { s.count(producer, sw.status) }()
	if lim := s.limits[producer]; lim != nil {
		res := lim.Reserve()
		if wait := res.Delay(); wait > 0 {
			res.Cancel()
			sw.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			s.denied(r, "ingest request refused", producer, http.StatusTooManyRequests, zap.String("reason", "over its rate"))
			reply(sw, http.StatusTooManyRequests, "error", fmt.Sprintf("producer %q is over its rate of %g requests a second (EXTRACTOR_INGEST_RATE); nothing was published, try again after Retry-After", producer, s.cfg.Rate))
			return
		}
	}
	s.serve(sw, r, producer)
}

// denied logs a request of producer refused with status, at most
// deniedLogRate a second: the producer's id and the client's address,
// never a token.
func (s *Source) denied(r *http.Request, msg, producer string, status int, fields ...zap.Field) {
	if !s.denials.Allow() {
		return
	}
	s.cfg.Log.Warn(msg, append([]zap.Field{
		zap.String("producer", producer), zap.Int("status", status), zap.String("remote", r.RemoteAddr),
	}, fields...)...)
}

// count counts a request of producer answered with status.
func (s *Source) count(producer string, status int) {
	if s.cfg.Requests != nil {
		s.cfg.Requests.WithLabelValues(producer, strconv.Itoa(status)).Inc()
	}
}

// statusWriter notes the status a handler answers with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

// serve handles a request of producer, authorized and within its rate.
func (s *Source) serve(w http.ResponseWriter, r *http.Request, producer string) {
	if s.slots != nil {
		select {
		case s.slots <- struct{}{}:
			defer func() { <-s.slots }()
		default:
			w.Header().Set("Retry-After", "1")
			s.denied(r, "ingest request refused", producer, http.StatusServiceUnavailable, zap.String("reason", "too many bodies at once"))
			reply(w, http.StatusServiceUnavailable, "error", fmt.Sprintf("%d bodies are being read already (EXTRACTOR_MAX_CONCURRENT_BODIES); try again", s.cfg.MaxBodies))
			return
		}
	}
	name := r.PathValue("dataset")
	src, ok := s.cfg.Datasets[name]
	switch {
	case !ok && slices.Contains(s.cfg.Undeclared, name):
		reply(w, http.StatusNotFound, "error", fmt.Sprintf("dataset %q declares no http source: add `- kind: http` to the sources of its dataset.yaml to accept it here", name))
		return
	case !ok:
		reply(w, http.StatusNotFound, "error", fmt.Sprintf("unknown dataset %q", name))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		reply(w, http.StatusRequestEntityTooLarge, "error", fmt.Sprintf("body larger than %d bytes (EXTRACTOR_MAX_BODY_BYTES); nothing was published", s.cfg.MaxBody))
		return
	case err != nil:
		// A client too slow to send its body within the server's read
		// timeout is cut off with 408; one that went away, 400.
		status := http.StatusBadRequest
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			status = http.StatusRequestTimeout
		}
		s.denied(r, "ingest body not read", producer, status, zap.Error(err))
		reply(w, status, "error", "read body: "+err.Error())
		return
	}
	recs, err := parse(src, body)
	switch {
	case errors.Is(err, publish.ErrTooLarge):
		reply(w, http.StatusRequestEntityTooLarge, "error", err.Error()+"; nothing was published")
		return
	case err != nil:
		reply(w, http.StatusBadRequest, "error", err.Error()+"; nothing was published")
		return
	}
	if err := s.cfg.Out.Publish(r.Context(), recs); err != nil {
		// A record the broker refuses for its size is refused again
		// whenever it is sent: no reason to try later.
		if errors.Is(err, kerr.MessageTooLarge) {
			reply(w, http.StatusRequestEntityTooLarge, "error", "Kafka refused a record as too large (MESSAGE_TOO_LARGE), nothing was published: "+err.Error())
			return
		}
		s.cfg.Log.Warn("ingest not published", zap.String("producer", producer), zap.String("dataset", name), zap.Int("batch_size", len(recs)), zap.Error(err))
		reply(w, http.StatusServiceUnavailable, "error", "Kafka did not take the records, nothing was published: "+err.Error())
		return
	}
	s.cfg.Records.WithLabelValues(name).Add(float64(len(recs)))
	s.cfg.Log.Debug("ingest published", zap.String("producer", producer), zap.String("dataset", name), zap.Int("batch_size", len(recs)))
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
// wrapping publish.ErrTooLarge).
//
// The body is one arrival: its records are timed from now, a microsecond
// apart, and positioned in the request, whose random id makes their event
// ids unique to it, whatever the time and the replica that took it.
func parse(src *publish.Dataset, body []byte) ([]*kgo.Record, error) {
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
		if unknown := src.Unknown(rec); len(unknown) > 0 {
			return &ingest.Error{Position: rec.Position, Err: fmt.Errorf("unknown fields %s (known: %s)",
				strings.Join(unknown, ", "), strings.Join(src.Fields(), ", "))}
		}
		key := src.Key(rec)
		if key == nil {
			keyless = append(keyless, rec.Position)
			return nil
		}
		pos := rec.Position
		rec.Position = request + " " + pos
		b, _, err := src.Value("http", rec, now.Add(time.Duration(len(recs))*time.Microsecond))
		if err != nil {
			return &ingest.Error{Position: pos, Err: err}
		}
		out, err := src.Record(key, b)
		if err != nil {
			return &ingest.Error{Position: pos, Err: err}
		}
		recs = append(recs, out)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(keyless) > 0 {
		return nil, &keylessError{field: src.KeyField, positions: keyless, records: len(keyless) + len(recs)}
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
