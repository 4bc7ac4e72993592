// Command extractor brings source records into raw.<dataset>, keeping the
// source's values as they came and giving each arrival of a record its own
// event id.
//
// Its sources are declared per dataset, in the sources: list of its
// dataset.yaml, and built by kind (sourceKinds): each kind is a package
// under internal/source, and all of them publish through internal/publish,
// which holds what they share (the transactional producer, the datasets'
// encoders and keys, dead letters, size limits). A dataset.yaml without
// sources: has the HTTP source alone. An option a kind does not have stops
// the start, naming the file and the source.
//
// The HTTP source (kind http, package httpingest) serves the datasets of
// DATASETS that declare it at POST /v1/datasets/{dataset}/events on
// HTTP_ADDR, a listener of its own: /metrics, the health and the profiles
// are on the admin address (ADMIN_ADDR), never there; a POST for another dataset of DATASETS is
// refused with 404, saying it declares no http source. It takes a JSON
// object, a JSON array or NDJSON, each body published whole in one Kafka
// transaction before the 202 answer. A body is one
// arrival: its records are new events, timed when it came and identified
// within the request, so that content sent again later is a newer event
// than the one it repeats. A body with records that lack the dataset's key
// is refused with 400, naming them; one with a record larger than the
// broker takes with 413.
//
// The file source (kind files, package files) reads the files of the
// declared paths (path: a file, a glob or a directory; a relative one is
// read from the dataset's folder in DATASETS_DIR) — CSV with a header row,
// JSON arrays, NDJSON — or, for a dataset that has entries in
// EXTRACTOR_FILES (dataset=path), the paths of these instead, and scans them
// again every EXTRACTOR_SCAN_INTERVAL, so files dropped into a directory
// are picked up. A file is published in batches, each in one transaction
// with the file's checkpoint (how many records were published, and a
// digest of their event ids) on the compacted topic _state.extractor.files,
// so a restart goes on where the last committed batch ended, with nothing
// published twice. Record n of a file is timed from the file's base time
// plus n µs, and its event id hashes that time, so reading a file again
// reproduces its events exactly and changes nothing downstream. A file that
// grows is read on from its checkpoint with the same base. One rewritten is
// read again from the start with a new base, later than every event of the
// previous version: its records are new events and win downstream, those
// that did not change are duplicates the cleaner drops. Records that cannot
// be read, and records larger than the broker takes for the raw topic
// (max.message.bytes, read at start), go to dlq.<dataset> with their
// position and reason; the rest of the file goes on.
//
// The polled sources (kind api, package httpapi, and kind scrape, package
// scrape, both run by package poll) fetch a JSON API or a job board's
// pages every declared interval and publish each offer new or changed
// since it was last published, with its provenance; what was published
// of each offer, and each poll's end, are committed in the same
// transaction as the records on _state.extractor.poll, so a kill mid-poll
// loses and doubles nothing.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/service"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/services/extractor/internal/publish"
)

// settings is the extractor's configuration, read from the environment.
type settings struct {
	config.Service
	Kafka    kafka.Config
	Registry serde.Config
	Schemas  schemas.Config
	// HTTPAddr is where the ingest endpoint listens: the extractor's API,
	// apart from the admin address.
	HTTPAddr string `env:"HTTP_ADDR" envDefault:":8080"`
	// HTTPReadTimeout bounds the reading of an ingest request, body
	// included, so that a client that stalls mid-body frees its
	// connection and memory.
	HTTPReadTimeout time.Duration `env:"HTTP_READ_TIMEOUT" envDefault:"1m"`
	// HTTPTLSCertFile and HTTPTLSKeyFile, when set, make the ingest
	// endpoint serve HTTPS alone with that certificate and key (PEM).
	HTTPTLSCertFile string `env:"HTTP_TLS_CERT_FILE" envDefault:""`
	HTTPTLSKeyFile  string `env:"HTTP_TLS_KEY_FILE" envDefault:""`
	// HTTPToken, when set, is a bearer token the ingest endpoint takes,
	// of the producer "default".
	HTTPToken string `env:"EXTRACTOR_HTTP_TOKEN" envDefault:"" secret:"true"`
	// IngestTokensFile, when set, is a file of the ingest endpoint's
	// producers, `<id> <sha256 hex of the token>` a line.
	IngestTokensFile string `env:"EXTRACTOR_INGEST_TOKENS_FILE" envDefault:""`
	// IngestRate is the requests per second each producer may send to
	// the ingest endpoint, with a burst of twice that; 0 is no limit.
	IngestRate float64 `env:"EXTRACTOR_INGEST_RATE" envDefault:"50"`
	// IngestOpen lets the ingest endpoint serve without tokens on an
	// address other than loopback.
	IngestOpen bool `env:"EXTRACTOR_INGEST_OPEN" envDefault:"false"`
	// MaxBodyBytes caps an ingest request's body.
	MaxBodyBytes int64 `env:"EXTRACTOR_MAX_BODY_BYTES" envDefault:"10485760"`
	// MaxBodies caps the ingest bodies read at once: with MaxBodyBytes,
	// what requests may hold in memory.
	MaxBodies int `env:"EXTRACTOR_MAX_CONCURRENT_BODIES" envDefault:"16"`
	// PublishTimeout bounds how long a request waits for Kafka.
	PublishTimeout time.Duration `env:"EXTRACTOR_PUBLISH_TIMEOUT" envDefault:"10s"`
	// InstanceID makes the transactional id of this process stable, so
	// that a restart fences its predecessor; default: the host name.
	InstanceID string `env:"EXTRACTOR_INSTANCE_ID" envDefault:""`
	// Files are the file sources of this deployment, dataset=path
	// entries (a file, a glob or a directory): a dataset's entries replace
	// the file paths its dataset.yaml declares.
	Files []string `env:"EXTRACTOR_FILES" envDefault:"" envSeparator:","`
	// ScanInterval is how often the file sources are scanned again.
	ScanInterval time.Duration `env:"EXTRACTOR_SCAN_INTERVAL" envDefault:"2s"`
	// SecretsDir holds the secret files the api sources' auth names: a
	// source whose files are not there is off.
	SecretsDir string `env:"EXTRACTOR_SECRETS_DIR" envDefault:"/run/secrets"`
	// ContactURL is the contact the scrapers' User-Agent names, unless a
	// source declares its own.
	ContactURL string `env:"EXTRACTOR_CONTACT_URL" envDefault:"https://github.com/datamill/datamill"`
	// PollRetry is the wait before a failed poll is tried again; it
	// doubles with each further failure, up to the source's interval.
	PollRetry time.Duration `env:"EXTRACTOR_POLL_RETRY" envDefault:"30s"`
	// FileBatch is the most records of a file published in one
	// transaction, with the file's checkpoint.
	FileBatch int `env:"EXTRACTOR_FILE_BATCH" envDefault:"5000"`
}

// API is where the ingest endpoint listens, and how long a request may
// take to arrive: service.Start listens there apart from ADMIN_ADDR.
func (s settings) API() service.API {
	return service.API{Addr: s.HTTPAddr, ReadTimeout: s.HTTPReadTimeout, TLSCertFile: s.HTTPTLSCertFile, TLSKeyFile: s.HTTPTLSKeyFile}
}

// Validate checks the ranges.
func (s *settings) Validate() error {
	var errs []error
	if s.ScanInterval <= 0 {
		errs = append(errs, fmt.Errorf("EXTRACTOR_SCAN_INTERVAL %v: must be positive", s.ScanInterval))
	}
	if s.PollRetry <= 0 {
		errs = append(errs, fmt.Errorf("EXTRACTOR_POLL_RETRY %v: must be positive", s.PollRetry))
	}
	if s.FileBatch < 1 {
		errs = append(errs, fmt.Errorf("EXTRACTOR_FILE_BATCH %d: must be at least 1", s.FileBatch))
	}
	if s.MaxBodies < 1 {
		errs = append(errs, fmt.Errorf("EXTRACTOR_MAX_CONCURRENT_BODIES %d: must be at least 1", s.MaxBodies))
	}
	if s.IngestRate < 0 {
		errs = append(errs, fmt.Errorf("EXTRACTOR_INGEST_RATE %v: must not be negative", s.IngestRate))
	}
	if s.MaxBodyBytes < 1 {
		errs = append(errs, fmt.Errorf("EXTRACTOR_MAX_BODY_BYTES %d: must be at least 1", s.MaxBodyBytes))
	}
	if (s.HTTPTLSCertFile == "") != (s.HTTPTLSKeyFile == "") {
		errs = append(errs, errors.New("HTTP_TLS_CERT_FILE and HTTP_TLS_KEY_FILE go together"))
	}
	return errors.Join(errs...)
}

func main() { service.Main("extractor", run) }

func run(ctx context.Context, args, environ []string, stdout io.Writer) error {
	return service.Run(ctx, "extractor", args, environ, stdout, extract)
}

func extract(ctx context.Context, p *service.Process, cfg settings) error {
	cat, err := p.Datasets(cfg.Schemas, cfg.Datasets)
	if err != nil {
		return err
	}
	declared := map[string]schemas.Declaration{}
	for _, name := range cfg.Datasets {
		d, err := cat.Dataset(name)
		if err != nil {
			return err
		}
		declared[name] = d.Decl
	}
	producers, err := ingestProducers(cfg)
	if err != nil {
		return err
	}
	if len(producers) == 0 && !config.Loopback(cfg.HTTPAddr) {
		if !cfg.IngestOpen {
			return fmt.Errorf("HTTP_ADDR %q is not loopback and the ingest endpoint has no tokens: give it EXTRACTOR_INGEST_TOKENS_FILE (or EXTRACTOR_HTTP_TOKEN), or set EXTRACTOR_INGEST_OPEN=true to take anyone's records", cfg.HTTPAddr)
		}
		p.Log.Warn("ingest endpoint open to anyone who reaches it (EXTRACTOR_INGEST_OPEN=true, no tokens)", zap.String("addr", cfg.HTTPAddr))
	}
	kinds := sourceKinds()
	decls, err := declarations(kinds, cfg.Datasets, declared, slices.DeleteFunc(cfg.Files, func(e string) bool { return strings.TrimSpace(e) == "" }))
	if err != nil {
		return err
	}
	byKind, err := groupByKind(kinds, decls)
	if err != nil {
		return err
	}
	for kind := range byKind {
		p.Telemetry.SetReady(kinds[kind].component, false, "starting")
	}
	reg, err := p.Connect(ctx, cfg.Kafka, cfg.Registry, nil)
	if err != nil {
		return err
	}
	if cfg.InstanceID == "" {
		if cfg.InstanceID, err = os.Hostname(); err != nil {
			return fmt.Errorf("EXTRACTOR_INSTANCE_ID is unset and the host name is unknown: %w", err)
		}
	}
	sources := map[string]*publish.Dataset{}
	for _, name := range cfg.Datasets {
		if sources[name], err = newSource(ctx, reg, cat, name); err != nil {
			return err
		}
	}
	connect := func() (*kgo.Client, error) {
		return kafka.NewClient(cfg.Kafka, p.Log,
			kgo.TransactionalID("datamill-extractor-"+cfg.InstanceID),
			kgo.TransactionTimeout(cfg.PublishTimeout+5*time.Second),
			kgo.RecordDeliveryTimeout(cfg.PublishTimeout),
		)
	}
	admin, err := kafka.NewClient(cfg.Kafka, p.Log)
	if err != nil {
		return err
	}
	var topics []string
	for _, name := range cfg.Datasets {
		topics = append(topics, kafka.Topic(kafka.Raw, name), kafka.Topic(kafka.DLQ, name))
	}
	err = kafka.EnsureTopics(ctx, admin, cfg.Kafka, topics...)
	if err != nil {
		admin.Close()
		return err
	}
	limits := publish.TopicLimits(ctx, kadm.NewClient(admin), p.Log, topics...)
	admin.Close()
	for _, s := range sources {
		s.SetLimits(limits)
	}
	bytes := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "datamill_extractor_bytes_total", Help: "Bytes of the records published and committed (raw records, dead letters, checkpoints).",
	})
	out := publish.NewProducer(connect, cfg.PublishTimeout, bytes)
	defer out.Close()

	metrics := p.Telemetry.Registry()
	records := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "datamill_extractor_records_total", Help: "Records published to raw topics, by dataset and source kind (http, file).",
	}, []string{"dataset", "source"})
	dead := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "datamill_extractor_records_dead_lettered_total", Help: "Source records that could not be read, sent to the dead-letter topic.",
	}, []string{"dataset"})
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "datamill_extractor_ingest_requests_total", Help: "Requests answered by the HTTP ingest endpoint, by producer (a token id; open without tokens, none without a known token) and status code.",
	}, []string{"producer", "code"})
	metrics.MustRegister(records, dead, bytes, requests)

	w := &wiring{
		cfg: cfg, log: p.Log, out: out, datasets: sources, handle: p.Handle,
		metrics: metrics, records: records, dead: dead, producers: producers, requests: requests,
	}
	if _, ok := byKind["http"]; !ok {
		refuseHTTP(w)
	}
	built := map[string]source{}
	for _, kind := range slices.Sorted(maps.Keys(byKind)) {
		if built[kind], err = kinds[kind].build(w, byKind[kind]); err != nil {
			return err
		}
	}
	return runSources(ctx, built, func(kind string) func(bool, string) {
		return func(ready bool, reason string) { p.Telemetry.SetReady(kinds[kind].component, ready, reason) }
	})
}

// newSource prepares a dataset for publishing to raw.<dataset>.
func newSource(ctx context.Context, reg *serde.Registry, cat *schemas.Catalog, name string) (*publish.Dataset, error) {
	d, err := cat.Dataset(name)
	if err != nil {
		return nil, err
	}
	return publish.NewDataset(ctx, reg, name, d.Raw, d.Key)
}
