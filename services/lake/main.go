// Command lake archives every raw.<dataset> topic into the raw data lake:
// Parquet objects on S3-compatible storage (package pkg/lake), each raw
// event in exactly one object.
//
// For each dataset of DATASETS it consumes raw.<dataset> in its own
// consumer group (datamill-lake-<dataset>, read_committed, manual commits)
// and keeps, per partition, a buffer of the records read since start, the
// first offset of the partition's next object. The records stay as bytes
// until the buffer is cut; the cut decodes them with the dataset's raw
// schema (whatever schema id wrote them), writes one Parquet object to a
// temporary file in LAKE_SPOOL_DIR, uploads it from there with
// If-None-Match: * to lake.Key(S3_PREFIX, dataset, topic, topic id,
// partition, start, time of its first record), records it in the manifest
// (the lake_objects table) and only then commits the offset End, one past
// its last record. The next object of the partition starts at End.
//
// A buffer is cut at deterministic points: when it holds LAKE_MAX_RECORDS
// records or LAKE_MAX_BYTES bytes of record values, and before a record
// whose Kafka timestamp lies in another hour than the buffer's first (an
// object's dt and hour are those of its first record, never the wall
// clock). Two more cuts are not deterministic: a partition idle for
// LAKE_FLUSH_INTERVAL with records buffered is cut, so that a slow dataset
// reaches the lake, and when the memory the buffers take across the
// partitions would go above the dataset's share of LAKE_MAX_BUFFER
// (LAKE_MAX_BUFFER divided by the number of datasets), the largest buffer
// is cut first. A partition's records are packed in chunks (records.go),
// counted as allocated. Shutdown cuts
// every buffer, commits and leaves the group.
//
// # Exactly once into objects
//
// The [Start, End) ranges of a partition's objects form a chain: an
// object's key is a function of its Start only (for one topic), and the
// next object's Start is its End. When a partition is assigned, the sink
// starts at the greatest End the manifest holds for it, else at the group's
// committed offset (committed only after the manifest row, so never ahead
// of the manifest), else at the first record it reads; all three are links
// of the chain. Records below start are skipped.
//
// A topic is its Kafka topic id, not its name: raw.<dataset> deleted and
// created again (a restarted datamill dev, whose Kafka starts empty while
// its database and S3 persist; a reset broker; another Kafka) has a new id
// and numbers its offsets from 0 again, a chain of its own. The sink reads
// the id when it starts (a topic recreated while it runs is noticed at its
// next start); keys carry its first 8 hex digits, objects and manifest rows
// all of it. The manifest's End is that of the current id's rows; rows of
// another id are history, and while the manifest has only those for a
// partition the committed offset is not trusted either (a broker may keep
// the old topic's) and the sink starts at the topic's first record.
//
// An upload that finds its key taken (412 to If-None-Match: *) is a link
// someone else wrote from the same Start of the same topic id (an object of
// another id there is an error, which the id in the key rules out): a run that crashed after its
// upload and before its manifest row or commit, or another owner of the
// partition during a rebalance, which may have cut elsewhere (the idle and
// memory cuts are not deterministic). The sink adopts that object: its End,
// read from the object's metadata, is authoritative; the sink records it in
// the manifest, commits End, drops its buffered records below End and goes
// on from End. So whichever of two owners uploads first decides the link,
// the other follows it, and no offset can land in two objects: two objects
// with the same Start cannot both exist, and every Start is the End of the
// link before it. No offset is lost either: the offset committed and the
// manifest's greatest End are always the End of a stored object, and a
// revoked partition's buffer, dropped, is read again by its next owner from
// there. The consumer blocks rebalances while it polls and cuts
// (kgo.BlockRebalanceOnPoll), so a partition is never revoked in the middle
// of a cut; an owner that lost its partition without noticing (its session
// expired) is the two-owner case above.
//
// A record whose value does not decode with the raw schema is left out of
// its object (counted in datamill_lake_records_skipped_total); its offset
// still lies within the object's [Start, End). An upload whose server did
// not confirm encryption at rest (lake.ErrNotEncrypted) stops the sink: it
// fails closed and writes nothing more. Other failures of the store or the
// database are retried with backoff, the sink not ready meanwhile.
//
// # Readiness and metrics
//
// The /readyz component lake_<dataset> is ready once S3 answered and the
// sink joined its group; while S3 does not answer, or an upload or the
// manifest is being retried, it is not, with the reason. The sink reports
// the stage family with stage="lake" (records and bytes archived, consumer
// lag) and datamill_lake_* series (objects by outcome, object bytes, bytes
// buffered, upload time, records skipped); the manifest's bytes are the
// stored bytes of its eco samples, as HDD-class storage.
//
// # Settings
//
// S3_ENDPOINT is required, with the other S3_* variables of lake.Config.
// LAKE_MAX_RECORDS (default 50000), LAKE_MAX_BYTES (4 MiB),
// LAKE_FLUSH_INTERVAL (1m), LAKE_MAX_BUFFER (8 MiB), LAKE_SPOOL_DIR (the
// system's temporary directory) and LAKE_SESSION_TIMEOUT (10s, the consumer
// group session) tune the sink.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/eco"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/lake"
	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/service"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/services/lake/migrations"
)

// settings is the lake sink's configuration, read from the environment.
type settings struct {
	config.Service
	Kafka    kafka.Config
	Registry serde.Config
	Postgres pg.Config
	Lake     lake.Config
	Schemas  schemas.Config
	Sink     sinkConfig
	Audit    AuditConfig // the S3 server's audit trail (audit.go)
}

// Validate requires the lake: the sink has nowhere else to write.
func (s *settings) Validate() error {
	if s.Lake.Endpoint == "" {
		return errors.New("S3_ENDPOINT is required: the lake sink archives the raw topics to an S3 server")
	}
	return nil
}

// sinkConfig tunes the sink: the LAKE_* variables.
type sinkConfig struct {
	// MaxRecords and MaxBytes (of record values) cut an object.
	MaxRecords int `env:"LAKE_MAX_RECORDS" envDefault:"50000"`
	MaxBytes   int `env:"LAKE_MAX_BYTES" envDefault:"4194304"`
	// FlushInterval cuts a partition's buffer that has not grown for
	// that long.
	FlushInterval time.Duration `env:"LAKE_FLUSH_INTERVAL" envDefault:"1m"`
	// MaxBuffer caps the bytes the process's buffered records take in
	// memory (keys, values and a 32-byte header each, in chunks, counted
	// as allocated), shared equally between its datasets; a record larger
	// than a dataset's share is buffered alone. Its default keeps the
	// lake under 64 MiB of resident memory: the heap is about twice what
	// is live, and the buffers are most of that.
	MaxBuffer int `env:"LAKE_MAX_BUFFER" envDefault:"8388608"`
	// SpoolDir holds an object's file while it is written and uploaded;
	// empty is the system's temporary directory.
	SpoolDir string `env:"LAKE_SPOOL_DIR" envDefault:""`
	// SessionTimeout is the consumer group session timeout.
	SessionTimeout time.Duration `env:"LAKE_SESSION_TIMEOUT" envDefault:"10s"`
}

// Validate checks the ranges.
func (c *sinkConfig) Validate() error {
	var errs []error
	if c.MaxRecords < 1 {
		errs = append(errs, fmt.Errorf("LAKE_MAX_RECORDS %d: must be at least 1", c.MaxRecords))
	}
	if c.MaxBytes < 1 {
		errs = append(errs, fmt.Errorf("LAKE_MAX_BYTES %d: must be at least 1", c.MaxBytes))
	}
	if c.MaxBuffer < 1 {
		errs = append(errs, fmt.Errorf("LAKE_MAX_BUFFER %d: must be at least 1", c.MaxBuffer))
	}
	if c.FlushInterval <= 0 {
		errs = append(errs, fmt.Errorf("LAKE_FLUSH_INTERVAL %s: must be positive", c.FlushInterval))
	}
	return errors.Join(errs...)
}

func main() { service.Main("lake", run) }

func run(ctx context.Context, args, environ []string, stdout io.Writer) error {
	if limit, ok := memoryLimit(environ); ok {
		debug.SetMemoryLimit(limit)
	}
	return service.Run(ctx, "lake", args, environ, stdout, archive)
}

// defaultMemoryLimit is the sink's soft memory limit unless GOMEMLIMIT sets
// one. What it holds live is about 25 MiB (the buffers of LAKE_MAX_BUFFER, a
// cut's Parquet writer, the fetches); left to GOGC alone, the heap grows to
// twice what was live at the last collection, and a cut's garbage on top of
// the buffers took the process to 74 MiB in a bench. The limit makes the
// collector run earlier instead, only when the heap nears it.
const defaultMemoryLimit = 40 << 20

// memoryLimit is the soft memory limit the sink sets itself: none when the
// environment sets GOMEMLIMIT, which the Go runtime has read already.
func memoryLimit(environ []string) (int64, bool) {
	if slices.ContainsFunc(environ, func(kv string) bool { return strings.HasPrefix(kv, "GOMEMLIMIT=") }) {
		return 0, false
	}
	return defaultMemoryLimit, true
}

// archive runs the sink of every dataset until ctx ends or one fails.
// schema is what the lake keeps in the database: its manifest and its
// audit of S3 calls.
var schema = service.Schema{
	Component: "lake", Migrations: migrations.FS,
	Tables: pg.Tables{"lake_objects": pg.LakeObjects, "lake_audit": pg.LakeAudit},
}

// Schema is the lake's Schema (service.Migrator): `lake migrate`.
func (s settings) Schema(*service.Process) (pg.Config, service.Schema, error) {
	return s.Postgres, schema, nil
}

func archive(ctx context.Context, p *service.Process, cfg settings) error {
	for _, ds := range cfg.Datasets {
		p.Telemetry.SetReady(component(ds), false, "starting")
	}
	reg, err := p.Connect(ctx, cfg.Kafka, cfg.Registry, &cfg.Postgres)
	if err != nil {
		return err
	}
	db, err := p.Database(ctx, cfg.Postgres, schema)
	if err != nil {
		return err
	}
	defer db.Close()
	pool := db.Pool
	// Object storage is HDD-class: what the lake keeps counts as HDD.
	p.ReportStored(func(ctx context.Context) (map[string]int64, error) {
		n, err := storedBytes(ctx, pool)
		return map[string]int64{eco.MediaHDD: n}, err
	})
	cat, err := p.Datasets(cfg.Schemas, cfg.Datasets)
	if err != nil {
		return err
	}
	store, err := lake.OpenStore(ctx, cfg.Lake)
	if err != nil {
		return err
	}
	m := newMetrics(p.Telemetry.Registry())
	host, _ := os.Hostname()
	runs := make([]func(context.Context) error, 0, len(cfg.Datasets))
	for _, ds := range cfg.Datasets {
		d, err := cat.Dataset(ds)
		if err != nil {
			return err
		}
		codec, err := serde.NewCodec[map[string]any](ctx, reg, kafka.Topic(kafka.Raw, ds), d.Raw)
		if err != nil {
			return err
		}
		s := &sink{
			dataset: ds, group: stage.Group(stageName, ds), cfg: cfg.Sink, kafka: cfg.Kafka, prefix: cfg.Lake.Prefix,
			store: store, db: pool, codec: codec, log: p.Log.Named(ds), metrics: m,
			maxBuffer: max(cfg.Sink.MaxBuffer/len(cfg.Datasets), 1),
			writtenBy: fmt.Sprintf("%s:%d", host, os.Getpid()),
			ready:     func(ready bool, reason string) { p.Telemetry.SetReady(component(ds), ready, reason) },
		}
		runs = append(runs, s.run)
	}
	runs = append(runs, func(ctx context.Context) error { return runAudit(ctx, p, cfg.Audit, pool) })
	return service.RunAll(ctx, runs...)
}

// component is the /readyz component of a dataset's sink: ready once S3
// answered and the sink joined its group.
func component(dataset string) string { return "lake_" + dataset }

// storedBytes is what the lake keeps: the bytes of every object of the
// manifest.
func storedBytes(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	var n int64
	if err := pool.QueryRow(ctx, `select coalesce(sum(bytes), 0)::bigint from lake_objects`).Scan(&n); err != nil {
		return 0, fmt.Errorf("lake bytes stored: %w", err)
	}
	return n, nil
}
