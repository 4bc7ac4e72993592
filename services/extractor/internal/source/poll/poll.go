// Package poll is the extractor's engine for the sources it polls: JSON
// APIs and scraped boards. A Feed fetches what its source offers now; the
// engine publishes each offer new or changed since the offer was last
// published, and nothing for one seen again unchanged.
//
// An offer is identified by its source's own id. What was published of it
// is its content hash, written to the compacted topic _state.extractor.poll
// in the same Kafka transaction as the record, so a process killed mid-poll
// publishes, once restarted, what the interrupted poll had not, and nothing
// twice. The end of a poll writes the feed's mark (when it started, the
// first page's validators) the same way: polls start at least the feed's
// interval apart, across restarts too, and the next request can be a
// conditional one.
//
// Each record carries its provenance in the fields the dataset has of
// source_name, source_id, source_url and fetched_at, and, when the offer
// lacks the dataset's key, the key <source name>:<source id>. A poll that
// fails (the API down, a challenge page in place of JSON) keeps what it
// published and is tried again after a backoff; the others go on.
package poll

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/datamill/datamill/pkg/ingest"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/progress"
	"github.com/datamill/datamill/pkg/retry"
	"github.com/datamill/datamill/services/extractor/internal/publish"
)

// StateTopic holds what every feed published: one record per offer (its
// content hash) and one per feed (its mark), the last of each winning.
var StateTopic = kafka.StateTopic("extractor", "poll")

// The provenance fields a polled record fills when its dataset has them.
const (
	FieldSourceName = "source_name"
	FieldSourceID   = "source_id"
	FieldSourceURL  = "source_url"
	FieldFetchedAt  = "fetched_at"
)

// Offer is one record a source offers.
type Offer struct {
	// ID is the source's own id of the offer; an offer without one is
	// skipped (a legal notice among the records, say) and counted.
	ID string
	// URL is where the offer is, its source_url.
	URL string
	// Values are its fields, by the dataset's names.
	Values map[string]*string
	// Position places it in the poll, for dead letters: "<page URL> item 3".
	Position string
}

// Validators are what a conditional request of a feed's first page sends.
type Validators struct {
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

// Outcome sums up a fetch.
type Outcome struct {
	// NotModified: the source answered that nothing changed since the
	// validators given; no offer was passed on.
	NotModified bool
	// Validators are the first page's, for the next poll.
	Validators Validators
	// Pages read, and offers Dropped by the source (required values
	// missing, a detail page refused), each with its reason.
	Pages   int
	Dropped []string
}

// Feed is one polled source of a dataset.
type Feed struct {
	Dataset string
	// Name is the source's name, unique in its dataset: the records'
	// source_name, and their source "<Kind>:<Name>".
	Name, Kind string
	// Every is the least time between the starts of two polls.
	Every time.Duration
	// Fetch passes on, through emit, every offer the source has now. It
	// stops at emit's first error, and returns it.
	Fetch func(ctx context.Context, since Validators, emit func(Offer) error) (Outcome, error)
}

func (f Feed) key() string { return f.Dataset + "\x00" + f.Name }

// source is what the records of f name as where they came from.
func (f Feed) source() string { return f.Kind + ":" + f.Name }

// Mark is a feed's state after its last complete poll.
type Mark struct {
	// Started is when that poll started.
	Started    time.Time  `json:"started"`
	Validators Validators `json:"validators"`
}

// Metrics count what the feeds do, by dataset and source name.
type Metrics struct {
	// Records published, Unchanged offers seen again as they were,
	// Skipped offers without an id or dropped by their source.
	Records, Unchanged, Skipped *prometheus.CounterVec
	// Dead counts the records dead-lettered, by dataset alone.
	Dead *prometheus.CounterVec
	// Polls by result: published, unchanged, not_modified, failed.
	Polls *prometheus.CounterVec
	// Requests by status class (2xx… , "none" without an answer), Bytes
	// of bodies read, Waited seconds spent on politeness (host spacing,
	// Crawl-delay, Retry-After) before requests.
	Requests, Bytes, Waited *prometheus.CounterVec
	// Offers are the offers the last complete poll that read the source
	// found, by state: published (new or changed), unchanged, dropped
	// (by the source: a required field missing) and no_id.
	Offers *prometheus.GaugeVec
}

// Observer is what a feed's fetcher calls after each request it made.
func (m Metrics) Observer(dataset, name string) func(status int, bytes int64, waited time.Duration) {
	bytesRead, waitedFor := m.Bytes.WithLabelValues(dataset, name), m.Waited.WithLabelValues(dataset, name)
	return func(status int, bytes int64, waited time.Duration) {
		class := "none"
		if status > 0 {
			class = strconv.Itoa(status/100) + "xx"
		}
		m.Requests.WithLabelValues(dataset, name, class).Inc()
		bytesRead.Add(float64(bytes))
		waitedFor.Add(waited.Seconds())
	}
}

// NewMetrics makes the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer, dead *prometheus.CounterVec) (Metrics, error) {
	labels := []string{"dataset", "source_name"}
	m := Metrics{
		Records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datamill_extractor_poll_records_total", Help: "Offers of polled sources published, new or changed.",
		}, labels),
		Unchanged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datamill_extractor_poll_unchanged_total", Help: "Offers of polled sources seen again unchanged, so not published.",
		}, labels),
		Skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datamill_extractor_poll_skipped_total", Help: "Records of polled sources left out: without an id, or dropped by the source (a required field missing).",
		}, labels),
		Polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datamill_extractor_polls_total", Help: "Polls, by result: published, unchanged, not_modified, failed.",
		}, append(labels, "result")),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datamill_extractor_poll_requests_total", Help: "HTTP requests of polled sources, by status class (none: no answer).",
		}, append(labels, "class")),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datamill_extractor_poll_bytes_total", Help: "Bytes of the bodies polled sources read.",
		}, labels),
		Waited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datamill_extractor_poll_politeness_wait_seconds_total", Help: "Time polled sources waited before requests to be polite: host spacing, Crawl-delay, Retry-After.",
		}, labels),
		Offers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "datamill_extractor_poll_offers", Help: "Offers the last complete poll of a source found, by state: published (new or changed), unchanged, dropped (by the source), no_id.",
		}, append(labels, "state")),
		Dead: dead,
	}
	for _, c := range []prometheus.Collector{m.Records, m.Unchanged, m.Skipped, m.Polls, m.Requests, m.Bytes, m.Waited, m.Offers} {
		if err := reg.Register(c); err != nil {
			return Metrics{}, fmt.Errorf("register the poll metrics: %w", err)
		}
	}
	return m, nil
}

// Config is what the engine needs.
type Config struct {
	Log   *zap.Logger
	Kafka kafka.Config
	// Out publishes the records with the state that counts them.
	Out *publish.Producer
	// Datasets are the feeds' datasets, by name.
	Datasets map[string]*publish.Dataset
	Feeds    []Feed
	// Batch is the most records published in one transaction.
	Batch int
	// Retry paces the polls again after a failure.
	Retry retry.Backoff
	// Terminal is where progress goes, when it is a terminal.
	Terminal io.Writer
	Metrics  Metrics
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Source polls its feeds, each on its own schedule.
type Source struct {
	cfg Config
	log *zap.Logger

	mu    sync.Mutex
	seen  map[string]map[string]string // feed key → offer id → content hash
	marks map[string]Mark              // by feed key
}

// New checks cfg and returns its source.
func New(cfg Config) (*Source, error) {
	names := map[string]bool{}
	for _, f := range cfg.Feeds {
		if cfg.Datasets[f.Dataset] == nil {
			return nil, fmt.Errorf("%s source %q: unknown dataset %q", f.Kind, f.Name, f.Dataset)
		}
		if f.Name == "" {
			return nil, fmt.Errorf("%s source of dataset %s: no name", f.Kind, f.Dataset)
		}
		if names[f.key()] {
			return nil, fmt.Errorf("dataset %s: two sources named %q: a polled source's name must be unique in its dataset", f.Dataset, f.Name)
		}
		names[f.key()] = true
		if f.Every <= 0 {
			return nil, fmt.Errorf("%s source %q of dataset %s: poll interval %v: must be positive", f.Kind, f.Name, f.Dataset, f.Every)
		}
	}
	if cfg.Batch < 1 {
		cfg.Batch = 500
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Source{cfg: cfg, log: cfg.Log}, nil
}

// seenKey and markKey are the state topic's keys of an offer and a feed.
func seenKey(f Feed, id string) []byte { return []byte("seen\x00" + f.key() + "\x00" + id) }
func markKey(f Feed) []byte            { return []byte("mark\x00" + f.key()) }

// Run loads the state, then polls every feed until ctx ends, when it
// returns nil; it returns an error when the state cannot be loaded. It is
// ready once the state is loaded, and not ready while a feed's last poll
// failed, saying which.
func (s *Source) Run(ctx context.Context, ready func(ready bool, reason string)) error {
	ready(false, "loading poll state")
	if err := s.load(ctx); err != nil {
		return err
	}
	ready(true, "")
	var mu sync.Mutex
	failing := map[string]string{}
	report := func(f Feed, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			delete(failing, f.source())
		} else {
			failing[f.source()] = f.Dataset + " " + f.source() + ": " + err.Error()
		}
		if len(failing) == 0 {
			ready(true, "")
			return
		}
		reasons := slices.Sorted(maps.Values(failing))
		ready(false, strings.Join(reasons, "; "))
	}
	g, ctx := errgroup.WithContext(ctx)
	for _, f := range s.cfg.Feeds {
		g.Go(func() error {
			s.schedule(ctx, f, report)
			return nil
		})
	}
	return g.Wait()
}

// load reads the committed state, once a predecessor's open transaction
// is aborted.
func (s *Source) load(ctx context.Context) error {
	seen, marks := map[string]map[string]string{}, map[string]Mark{}
	var bad error
	err := s.cfg.Out.ReadState(ctx, s.cfg.Kafka, s.log, StateTopic, func(r *kgo.Record) {
		kind, rest, _ := strings.Cut(string(r.Key), "\x00")
		switch kind {
		case "seen":
			i := strings.LastIndexByte(rest, 0)
			if i < 0 {
				return
			}
			feed, id := rest[:i], rest[i+1:]
			if seen[feed] == nil {
				seen[feed] = map[string]string{}
			}
			seen[feed][id] = string(r.Value)
		case "mark":
			var m Mark
			if err := json.Unmarshal(r.Value, &m); err != nil {
				bad = fmt.Errorf("mark %q at offset %d: %w", r.Key, r.Offset, err)
				return
			}
			marks[rest] = m
		}
	})
	if err := errors.Join(err, bad); err != nil {
		return fmt.Errorf("read the poll state from %s: %w", StateTopic, err)
	}
	s.mu.Lock()
	s.seen, s.marks = seen, marks
	s.mu.Unlock()
	n := 0
	for _, f := range s.cfg.Feeds {
		n += len(seen[f.key()])
	}
	s.log.Info("poll state loaded", zap.Int("feeds", len(s.cfg.Feeds)), zap.Int("offers", n))
	return nil
}

// schedule polls f every f.Every from the start of its last complete poll,
// and after a failed one when the backoff says, until ctx ends.
func (s *Source) schedule(ctx context.Context, f Feed, report func(Feed, error)) {
	log := s.log.With(zap.String("dataset", f.Dataset), zap.String("source", f.source()))
	failures := 0
	for {
		s.mu.Lock()
		last, polled := s.marks[f.key()]
		s.mu.Unlock()
		var wait time.Duration
		switch {
		case failures > 0:
			wait = min(s.cfg.Retry.Delay(failures), f.Every)
		case polled:
			wait = last.Started.Add(f.Every).Sub(s.cfg.Now())
		}
		if wait > 0 && !retry.Sleep(ctx, wait) {
			return
		}
		err := s.Poll(ctx, f)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			s.cfg.Metrics.Polls.WithLabelValues(f.Dataset, f.Name, "failed").Inc()
			log.Warn("poll failed; what it published stays, and it is tried again",
				zap.Error(err), zap.Duration("in", min(s.cfg.Retry.Delay(failures), f.Every)))
		} else {
			failures = 0
		}
		report(f, err)
	}
}

// Poll fetches f once and publishes its new and changed offers, each with
// the hash that marks it published, in transactions of at most Batch
// records; the last one carries the feed's mark. On an error, what was
// published stays published and the mark is not written.
func (s *Source) Poll(ctx context.Context, f Feed) error {
	p := &pollRun{
		ctx: ctx, s: s, f: f, ds: s.cfg.Datasets[f.Dataset], started: s.cfg.Now().UTC().Truncate(time.Microsecond),
		batch: map[string]string{}, fields: map[string]bool{},
		bar: progress.New(s.cfg.Terminal, nil, f.Dataset+" "+f.source(), 0, 0),
	}
	for _, name := range p.ds.Fields() {
		p.fields[name] = true
	}
	s.mu.Lock()
	mark := s.marks[f.key()]
	p.seen = s.seen[f.key()]
	s.mu.Unlock()
	out, err := f.Fetch(ctx, mark.Validators, p.emit)
	if ferr := p.flush(ctx, nil); err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	m := s.cfg.Metrics
	m.Skipped.WithLabelValues(f.Dataset, f.Name).Add(float64(len(out.Dropped)))
	for _, d := range out.Dropped {
		s.log.Debug("offer left out by its source", zap.String("dataset", f.Dataset), zap.String("source", f.source()), zap.String("why", d))
	}
	next := Mark{Started: p.started, Validators: out.Validators}
	if out.NotModified {
		next.Validators = mark.Validators
	}
	if err := p.flush(ctx, &next); err != nil {
		return err
	}
	result := "unchanged"
	switch {
	case out.NotModified:
		result = "not_modified"
	case p.published > 0:
		result = "published"
	}
	m.Polls.WithLabelValues(f.Dataset, f.Name, result).Inc()
	if !out.NotModified {
		for state, n := range map[string]int{"published": p.published, "unchanged": p.unchanged, "dropped": len(out.Dropped), "no_id": p.skipped} {
			m.Offers.WithLabelValues(f.Dataset, f.Name, state).Set(float64(n))
		}
	}
	p.bar.Finish()
	s.log.Info("polled", zap.String("dataset", f.Dataset), zap.String("source", f.source()), zap.String("result", result),
		zap.Int("published", p.published), zap.Int("unchanged", p.unchanged), zap.Int("skipped", p.skipped+len(out.Dropped)),
		zap.Int("pages", out.Pages), zap.Duration("took", s.cfg.Now().Sub(p.started)))
	return nil
}

// pollRun is one poll of one feed.
type pollRun struct {
	ctx     context.Context
	s       *Source
	f       Feed
	ds      *publish.Dataset
	started time.Time
	seen    map[string]string // as committed before the poll, and by its flushes

	pending []*kgo.Record
	batch   map[string]string // offer id → hash, of the records pending
	dead    int
	n       int // offers numbered in the poll, to time them apart

	published, unchanged, skipped int
	bar                           *progress.Bar
	// fields are the dataset's fields, read once a poll.
	fields map[string]bool
}

// emit takes the next offer of the poll.
func (p *pollRun) emit(o Offer) error {
	f, ds := p.f, p.ds
	if strings.TrimSpace(o.ID) == "" {
		p.skipped++
		p.s.cfg.Metrics.Skipped.WithLabelValues(f.Dataset, f.Name).Inc()
		return nil
	}
	values := maps.Clone(o.Values)
	if values == nil {
		values = map[string]*string{}
	}
	set := func(field, v string) {
		if p.fields[field] {
			values[field] = &v
		}
	}
	set(FieldSourceName, f.Name)
	set(FieldSourceID, o.ID)
	if o.URL != "" {
		set(FieldSourceURL, o.URL)
	}
	if k := values[ds.KeyField]; k == nil || strings.TrimSpace(*k) == "" {
		set(ds.KeyField, f.Name+":"+o.ID)
	}
	hash := contentHash(values)
	if p.seen[o.ID] == hash || p.batch[o.ID] == hash {
		p.unchanged++
		p.s.cfg.Metrics.Unchanged.WithLabelValues(f.Dataset, f.Name).Inc()
		return nil
	}
	set(FieldFetchedAt, p.started.Format(time.RFC3339))
	rec := ingest.Record{Values: values, Position: o.Position}
	at := p.started.Add(time.Duration(p.n) * time.Microsecond)
	p.n++
	var out *kgo.Record
	b, _, err := ds.Value(f.source(), rec, at)
	if err == nil {
		out, err = ds.Record(ds.Key(rec), b)
	}
	if err != nil {
		// Refused for ever (too large for the broker): a dead letter,
		// and the offer counts as published, so it is not tried again
		// until it changes.
		if out, err = ds.DeadLetter(f.source(), deadPosition(o), publish.ValuesOf(rec), err.Error()); err != nil {
			return err
		}
		p.dead++
	}
	p.pending = append(p.pending, out, &kgo.Record{Topic: StateTopic, Key: seenKey(f, o.ID), Value: []byte(hash)})
	p.batch[o.ID] = hash
	p.bar.Set(0, int64(p.published+len(p.batch)))
	if len(p.batch) >= p.s.cfg.Batch {
		return p.flush(p.ctx, nil)
	}
	return nil
}

// deadPosition is o's position as DeadLetter wants it, ending with a number.
func deadPosition(o Offer) string {
	if o.Position != "" {
		return o.Position
	}
	return "offer " + o.ID + " item 0"
}

// flush publishes the pending records with their hashes, and mark when
// given, in one transaction.
func (p *pollRun) flush(ctx context.Context, mark *Mark) error {
	if len(p.pending) == 0 && mark == nil {
		return nil
	}
	recs := p.pending
	if mark != nil {
		v, err := json.Marshal(mark)
		if err != nil {
			return err
		}
		recs = append(recs, &kgo.Record{Topic: StateTopic, Key: markKey(p.f), Value: v})
	}
	if err := p.s.cfg.Out.Publish(ctx, recs); err != nil {
		return err
	}
	f, m := p.f, p.s.cfg.Metrics
	m.Records.WithLabelValues(f.Dataset, f.Name).Add(float64(len(p.batch) - p.dead))
	m.Dead.WithLabelValues(f.Dataset).Add(float64(p.dead))
	p.published += len(p.batch)
	p.s.mu.Lock()
	seen := p.s.seen[f.key()]
	if seen == nil {
		seen = map[string]string{}
		p.s.seen[f.key()] = seen
	}
	maps.Copy(seen, p.batch)
	if mark != nil {
		p.s.marks[f.key()] = *mark
	}
	p.s.mu.Unlock()
	p.seen = seen
	p.pending, p.batch, p.dead = nil, map[string]string{}, 0
	return nil
}

// contentHash hashes an offer's values, every field but when it was
// fetched, so that an offer seen again as it was hashes the same.
func contentHash(values map[string]*string) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(values)) {
		if k == FieldFetchedAt {
			continue
		}
		h.Write([]byte(k))
		if v := values[k]; v != nil {
			h.Write([]byte{1})
			h.Write([]byte(*v))
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
