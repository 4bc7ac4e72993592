// Command extractor brings source records into raw.<dataset>, keeping the
// source's values as they came and giving each arrival of a record its own
// event id.
//
// It serves the HTTP ingest endpoint POST /v1/datasets/{dataset}/events on
// HTTP_ADDR (next to /metrics): a JSON object, a JSON array or NDJSON, each
// body published whole in one Kafka transaction before the 202 answer. A
// body is one arrival: its records are new events, timed when it came and
// identified within the request, so that content sent again later is a
// newer event than the one it repeats. A body with records that lack the
// dataset's key is refused with 400, naming them; one with a record larger
// than the broker takes with 413.
//
// It reads the files of EXTRACTOR_FILES (dataset=path entries; a path may
// be a file, a glob or a directory) — CSV with a header row, JSON arrays,
// NDJSON — and scans them again every EXTRACTOR_SCAN_INTERVAL, so files
// dropped into a directory are picked up. A file is published in batches,
// each in one transaction with the file's checkpoint (how many records
// were published, and a digest of their event ids) on the compacted topic
// _state.extractor.files, so a restart goes on where the last committed
// batch ended, with nothing published twice. Record n of a file is timed
// from the file's base time plus n µs, and its event id hashes that time,
// so reading a file again reproduces its events exactly and changes nothing
// downstream. A file that grows is read on from its checkpoint with the same
// base. One rewritten is read again from the start with a new base, later
// than every event of the previous version: its records are new events and
// win downstream, those that did not change are duplicates the cleaner
// drops. Records that cannot be read, and records larger than the broker
// takes for the raw topic (max.message.bytes, read at start), go to
// dlq.<dataset> with their position and reason; the rest of the file goes
// on.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/ingest"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/service"
	"github.com/datamill/datamill/schemas"
)

// settings is the extractor's configuration, read from the environment.
type settings struct {
	config.Service
	Kafka    kafka.Config
	Registry serde.Config
	Schemas  schemas.Config
	// HTTPToken, when set, is the bearer token the ingest endpoint requires.
	HTTPToken string `env:"EXTRACTOR_HTTP_TOKEN" envDefault:"" secret:"true"`
	// MaxBodyBytes caps an ingest request's body.
	MaxBodyBytes int64 `env:"EXTRACTOR_MAX_BODY_BYTES" envDefault:"10485760"`
	// PublishTimeout bounds how long a request waits for Kafka.
	PublishTimeout time.Duration `env:"EXTRACTOR_PUBLISH_TIMEOUT" envDefault:"10s"`
	// InstanceID makes the transactional id of this process stable, so
	// that a restart fences its predecessor; default: the host name.
	InstanceID string `env:"EXTRACTOR_INSTANCE_ID" envDefault:""`
	// Files are the file sources, dataset=path entries: a file, a glob
	// or a directory.
	Files []string `env:"EXTRACTOR_FILES" envDefault:"" envSeparator:","`
	// ScanInterval is how often the file sources are scanned again.
	ScanInterval time.Duration `env:"EXTRACTOR_SCAN_INTERVAL" envDefault:"2s"`
	// FileBatch is the most records of a file published in one
	// transaction, with the file's checkpoint.
	FileBatch int `env:"EXTRACTOR_FILE_BATCH" envDefault:"5000"`
}

// Validate checks the ranges.
func (s *settings) Validate() error {
	var errs []error
	if s.ScanInterval <= 0 {
		errs = append(errs, fmt.Errorf("EXTRACTOR_SCAN_INTERVAL %v: must be positive", s.ScanInterval))
	}
	if s.FileBatch < 1 {
		errs = append(errs, fmt.Errorf("EXTRACTOR_FILE_BATCH %d: must be at least 1", s.FileBatch))
	}
	if s.MaxBodyBytes < 1 {
		errs = append(errs, fmt.Errorf("EXTRACTOR_MAX_BODY_BYTES %d: must be at least 1", s.MaxBodyBytes))
	}
	return errors.Join(errs...)
}

func main() { service.Main("extractor", run) }

func run(ctx context.Context, args, environ []string, stdout io.Writer) error {
	return service.Run(ctx, "extractor", args, environ, stdout, extract)
}

func extract(ctx context.Context, p *service.Process, cfg settings) error {
	p.Telemetry.SetReady("ingest", false, "starting")
	reg, err := p.Connect(ctx, cfg.Kafka, cfg.Registry, nil)
	if err != nil {
		return err
	}
	if cfg.InstanceID == "" {
		if cfg.InstanceID, err = os.Hostname(); err != nil {
			return fmt.Errorf("EXTRACTOR_INSTANCE_ID is unset and the host name is unknown: %w", err)
		}
	}
	patterns, err := parsePatterns(slices.DeleteFunc(cfg.Files, func(e string) bool { return strings.TrimSpace(e) == "" }), cfg.Datasets)
	if err != nil {
		return err
	}
	cat, err := p.Schemas(cfg.Schemas)
	if err != nil {
		return err
	}
	sources := map[string]*source{}
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
	limits := topicLimits(ctx, kadm.NewClient(admin), p.Log, topics...)
	admin.Close()
	for _, s := range sources {
		s.limit, s.deadLimit = limits[s.topic], limits[s.dlq]
	}
	out := &publisher{connect: connect, timeout: cfg.PublishTimeout, bytes: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "datamill_extractor_bytes_total", Help: "Bytes of the records published and committed (raw records, dead letters, checkpoints).",
	})}
	defer out.close()

	metrics := p.Telemetry.Registry()
	records := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "datamill_extractor_records_total", Help: "Records published to raw topics, by dataset and source kind (http, file).",
	}, []string{"dataset", "source"})
	dead := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "datamill_extractor_records_dead_lettered_total", Help: "Source records that could not be read, sent to the dead-letter topic.",
	}, []string{"dataset"})
	filesDone := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "datamill_extractor_files_total", Help: "Files read to their end.",
	}, []string{"dataset"})
	metrics.MustRegister(records, dead, filesDone, out.bytes)

	api := &ingestAPI{
		sources: sources, token: cfg.HTTPToken, maxBody: cfg.MaxBodyBytes, log: p.Log, out: out,
		records: records.MustCurryWith(prometheus.Labels{"source": "http"}),
	}
	p.Telemetry.Handle("POST /v1/datasets/{dataset}/events", api)
	p.Telemetry.SetReady("ingest", true, "")
	p.Log.Info("ingest endpoint ready", zap.String("path", "/v1/datasets/{dataset}/events"))
	if len(patterns) == 0 {
		<-ctx.Done()
		return nil
	}
	files := &fileSource{
		log: p.Log.Named("files"), kafka: cfg.Kafka, out: out, sources: sources, patterns: patterns,
		batch: cfg.FileBatch, interval: cfg.ScanInterval, terminal: os.Stderr,
		ready:   func(ready bool, reason string) { p.Telemetry.SetReady("files", ready, reason) },
		records: records.MustCurryWith(prometheus.Labels{"source": "file"}), dead: dead, done: filesDone,
	}
	p.Telemetry.SetReady("files", false, "loading checkpoints")
	return files.run(ctx)
}

// newSource prepares a dataset for publishing to raw.<dataset>.
func newSource(ctx context.Context, reg *serde.Registry, cat *schemas.Catalog, name string) (*source, error) {
	d, err := cat.Dataset(name)
	if err != nil {
		return nil, fmt.Errorf("DATASETS: %w", err)
	}
	raw, key := d.Raw, d.Key
	ds, err := ingest.NewDataset(name, raw, key)
	if err != nil {
		return nil, err
	}
	topic := kafka.Topic(kafka.Raw, name)
	codec, err := serde.NewCodec[map[string]any](ctx, reg, topic, raw)
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
	return &source{
		dataset: ds, keyField: key, codec: codec, keys: keys, topic: topic, dead: dead, dlq: dlq,
		limit: producerMaxBytes, deadLimit: producerMaxBytes,
	}, nil
}
