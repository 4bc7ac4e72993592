// Command loader upserts clean.<dataset> records into PostgreSQL and
// publishes what it did to persisted.<dataset>.
//
// It is the same code for every dataset: the table is named after the
// dataset and holds a column for every field of its clean schema, plus
// lineage. The clean schema is the table's one declaration: at start the
// loader creates the table from it when it does not exist (column types
// from the Avro types, NOT NULL for required fields, the key as primary
// key, check constraints from the cleaning rules' ranges), and otherwise
// adds the columns a newer clean schema has and the table lacks, and the
// check constraints it lacks, NOT VALID (additive only: nothing is dropped
// or retyped, the rows already there keep their values). Then, in the
// same transaction, it creates or replaces the views the dataset declares
// in its dataset.yaml, dropping and creating again one whose columns
// changed. The loader's migrations create its ledger, applied_events.
//
// Each batch is written in one database transaction (COPY into a staging
// table, then one INSERT … ON CONFLICT DO UPDATE that applies only newer,
// changed events); the consumed offsets and the persisted records commit in
// one Kafka transaction after the database commit. Records the database
// refuses go to dlq.<dataset> with its error; an outage pauses the loader
// without committing.
package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/eco"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/retry"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/service"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/services/loader/migrations"
)

// settings is the loader's configuration, read from the environment.
type settings struct {
	config.Service
	Kafka    kafka.Config
	Registry serde.Config
	Postgres pg.Config
	Stage    stage.Config
	Schemas  schemas.Config
}

func main() { service.Main("loader", run) }

func run(ctx context.Context, args, environ []string, stdout io.Writer) error {
	return service.Run(ctx, "loader", args, environ, stdout, load)
}

// load runs one stage runner per dataset until ctx ends.
func load(ctx context.Context, p *service.Process, cfg settings) error {
	reg, err := p.Connect(ctx, cfg.Kafka, cfg.Registry, &cfg.Postgres)
	if err != nil {
		return err
	}
	pool, err := p.Database(ctx, cfg.Postgres, "loader", migrations.FS)
	if err != nil {
		return err
	}
	defer pool.Close()
	// What the database keeps, on SSD.
	p.ReportStored(func(ctx context.Context) (map[string]int64, error) {
		n, err := storedBytes(ctx, pool)
		return map[string]int64{eco.MediaSSD: n}, err
	})
	cat, err := p.Datasets(cfg.Schemas, cfg.Datasets)
	if err != nil {
		return err
	}
	return service.RunStages(ctx, p, cfg.Datasets, cfg.Stage, cfg.Kafka, func(ctx context.Context, ds string) (*stage.Spec[record, persisted], error) {
		return spec(ctx, p, reg, pool, cat, ds)
	})
}

// spec builds the stage spec of one dataset, once its table exists with a
// column for every field of its clean schema.
func spec(ctx context.Context, p *service.Process, reg *serde.Registry, pool *pgxpool.Pool, cat *schemas.Catalog, ds string) (*stage.Spec[record, persisted], error) {
	d, err := newDataset(cat, ds)
	if err != nil {
		return nil, err
	}
	ev, err := d.evolve(ctx, pool)
	if err != nil {
		return nil, err
	}
	if ev.Created {
		p.Log.Info("table created", zap.String("dataset", ds), zap.String("table", d.table.Name))
	}
	if len(ev.Constrained) > 0 {
		p.Log.Info("check constraints added, not validated on the rows already there",
			zap.String("dataset", ds), zap.String("table", d.table.Name), zap.Strings("constraints", ev.Constrained))
	}
	for _, c := range ev.Added {
		p.Log.Info("column added", zap.String("dataset", ds), zap.String("table", d.table.Name), zap.String("column", c.Name), zap.String("type", c.Type))
	}
	if len(ev.Differ) > 0 {
		p.Log.Warn("columns of another type than the clean schema's; left as they are",
			zap.String("dataset", ds), zap.String("table", d.table.Name), zap.Strings("columns", ev.Differ))
	}
	if len(ev.Views) > 0 {
		p.Log.Info("views created or replaced", zap.String("dataset", ds), zap.Strings("views", ev.Views))
	}
	if len(ev.Recreated) > 0 {
		p.Log.Info("views dropped and created again, their columns changed", zap.String("dataset", ds), zap.Strings("views", ev.Recreated))
	}
	if len(ev.Waiting) > 0 {
		p.Log.Warn("views wait for the tables they read; tried again every "+viewRetry.String(), zap.String("dataset", ds), zap.Strings("views", ev.Waiting))
		go d.awaitViews(ctx, p.Log, pool)
	}
	if d.cleanCodec, err = serde.NewCodec[any](ctx, reg, kafka.Topic(kafka.Clean, ds), d.cleanSchema); err != nil {
		return nil, err
	}
	out, err := serde.NewCodec[map[string]any](ctx, reg, kafka.Topic(kafka.Persisted, ds), d.persistedSchema)
	if err != nil {
		return nil, err
	}
	d.copyBodies = embedsAsIs(d.persistedSchema, d.cleanSchema)
	s, err := stage.NewSpec(ctx, reg, stage.Step{
		Stage: p.Name, Dataset: ds,
		From: kafka.Clean, In: d.cleanSchema,
		To: kafka.Persisted, Out: d.persistedSchema,
	}, d.handler(pool))
	if err != nil {
		return nil, err
	}
	// The loader's own codecs, of the same schemas as the spec's: records
	// decode into the dataset's struct type, and the handler asks the clean
	// codec which ones it can copy as they came.
	s.Decoder, s.Encoder = d, newPersistedEncoder(out)
	return s, nil
}

// storedBytes is what the tables of the database schema the loader writes
// in keep, indexes and TOAST included: every dataset's table, its
// predictions, the ledger and any other table there, with no list to keep
// up to date as datasets come and go.
func storedBytes(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	var n int64
	err := pool.QueryRow(ctx, `select coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint from pg_class c
		where c.relkind in ('r', 'm') and c.relnamespace = to_regnamespace(current_schema())`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("stored bytes: %w", err)
	}
	return n, nil
}

// viewRetry is how often views that wait for a table are tried again.
const viewRetry = 5 * time.Second

// awaitViews tries the dataset's views again every viewRetry until none
// waits for a table (the scorer creates its predictions table when it
// first starts), or until ctx ends.
func (d *dataset) awaitViews(ctx context.Context, log *zap.Logger, pool *pgxpool.Pool) {
	for retry.Sleep(ctx, viewRetry) {
		ev, err := d.evolve(ctx, pool)
		switch {
		case err != nil:
			log.Warn("views not created; tried again", zap.String("table", d.table.Name), zap.Error(err))
		case len(ev.Waiting) == 0:
			log.Info("views created, the tables they read there now", zap.String("table", d.table.Name), zap.Strings("views", ev.Views))
			return
		}
	}
}
