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

// Schema is the loader's Schema (service.Migrator): `loader migrate`.
func (s settings) Schema(p *service.Process) (pg.Config, service.Schema, error) {
	datasets, err := loadedDatasets(p, s)
	if err != nil {
		return pg.Config{}, service.Schema{}, err
	}
	return s.Postgres, schemaOf(p.Log, datasets, nil), nil
}

// loadedDatasets reads the datasets of DATASETS from the catalog.
func loadedDatasets(p *service.Process, cfg settings) ([]*dataset, error) {
	cat, err := p.Datasets(cfg.Schemas, cfg.Datasets)
	if err != nil {
		return nil, err
	}
	out := make([]*dataset, 0, len(cfg.Datasets))
	for _, ds := range cfg.Datasets {
		d, err := newDataset(cat, ds)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// schemaOf is what the loader keeps in the database: its ledger, from its
// migrations, and each dataset's table and views, created or evolved from
// the dataset's declaration (evolve). waiting, when set, hears of the
// datasets whose views wait for a table.
func schemaOf(log *zap.Logger, datasets []*dataset, waiting func(*dataset)) service.Schema {
	return service.Schema{
		Component: "loader", Migrations: migrations.FS,
		Tables: pg.Tables{"applied_events": pg.LoaderLedger},
		DDL: func(ctx context.Context, pool *pgxpool.Pool) (pg.Tables, error) {
			tables := pg.Tables{}
			for _, d := range datasets {
				ev, err := d.evolve(ctx, pool)
				if err != nil {
					return nil, err
				}
				logEvolution(log, d, ev)
				tables[d.table.Name] = pg.Dataset
				for _, v := range ev.Views {
					tables[v] = pg.View
				}
				if len(ev.Waiting) > 0 && waiting != nil {
					waiting(d)
				}
			}
			return tables, nil
		},
	}
}

// load runs one stage runner per dataset until ctx ends.
func load(ctx context.Context, p *service.Process, cfg settings) error {
	reg, err := p.Connect(ctx, cfg.Kafka, cfg.Registry, &cfg.Postgres)
	if err != nil {
		return err
	}
	datasets, err := loadedDatasets(p, cfg)
	if err != nil {
		return err
	}
	var waiting []*dataset
	db, err := p.Database(ctx, cfg.Postgres, schemaOf(p.Log, datasets, func(d *dataset) { waiting = append(waiting, d) }))
	if err != nil {
		return err
	}
	defer db.Close()
	for _, d := range waiting {
		go d.awaitViews(ctx, p.Log, db)
	}
	// What the database keeps, on SSD.
	p.ReportStored(func(ctx context.Context) (map[string]int64, error) {
		n, err := storedBytes(ctx, db.Pool)
		return map[string]int64{eco.MediaSSD: n}, err
	})
	byName := map[string]*dataset{}
	for _, d := range datasets {
		byName[d.table.Name] = d
	}
	return service.RunStages(ctx, p, cfg.Datasets, cfg.Stage, cfg.Kafka, func(ctx context.Context, ds string) (*stage.Spec[record, persisted], error) {
		return spec(ctx, p, reg, db.Pool, byName[ds])
	})
}

// logEvolution logs what evolve did to a dataset's table and views.
func logEvolution(log *zap.Logger, d *dataset, ev evolution) {
	ds := d.table.Name
	if ev.Created {
		log.Info("table created", zap.String("dataset", ds), zap.String("table", d.table.Name))
	}
	if len(ev.Constrained) > 0 {
		log.Info("check constraints added, not validated on the rows already there",
			zap.String("dataset", ds), zap.String("table", d.table.Name), zap.Strings("constraints", ev.Constrained))
	}
	for _, c := range ev.Added {
		log.Info("column added", zap.String("dataset", ds), zap.String("table", d.table.Name), zap.String("column", c.Name), zap.String("type", c.Type))
	}
	if len(ev.Differ) > 0 {
		log.Warn("columns of another type than the clean schema's; left as they are",
			zap.String("dataset", ds), zap.String("table", d.table.Name), zap.Strings("columns", ev.Differ))
	}
	if len(ev.Replaced) > 0 {
		log.Info("views created or replaced", zap.String("dataset", ds), zap.Strings("views", ev.Replaced))
	}
	if len(ev.Recreated) > 0 {
		log.Info("views dropped and created again, their columns changed", zap.String("dataset", ds), zap.Strings("views", ev.Recreated))
	}
	if len(ev.Waiting) > 0 {
		log.Warn("views wait for the tables they read; tried again every "+viewRetry.String(), zap.String("dataset", ds), zap.Strings("views", ev.Waiting))
	}
}

// spec builds the stage spec of one dataset, whose table Database made
// sure of.
func spec(ctx context.Context, p *service.Process, reg *serde.Registry, pool *pgxpool.Pool, d *dataset) (*stage.Spec[record, persisted], error) {
	ds := d.table.Name
	var err error
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
	}, d.handler(pool, p.Name))
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

// schemaChanger changes the database's schema: *service.DB.
type schemaChanger interface {
	Change(ctx context.Context, ddl service.DDL) error
}

// awaitViews tries the dataset's views again every viewRetry until none
// waits for a table (the scorer creates its predictions table when it
// first starts), or until ctx ends: a change of the schema (DB.Change),
// made with the migration owner's URL when there is one.
func (d *dataset) awaitViews(ctx context.Context, log *zap.Logger, db schemaChanger) {
	for retry.Sleep(ctx, viewRetry) {
		var ev evolution
		err := db.Change(ctx, func(ctx context.Context, pool *pgxpool.Pool) (pg.Tables, error) {
			var err error
			if ev, err = d.evolve(ctx, pool); err != nil {
				return nil, err
			}
			tables := pg.Tables{d.table.Name: pg.Dataset}
			for _, v := range ev.Views {
				tables[v] = pg.View
			}
			return tables, nil
		})
		switch {
		case err != nil:
			log.Warn("views not created; tried again", zap.String("table", d.table.Name), zap.Error(err))
		case len(ev.Waiting) == 0:
			log.Info("views created, the tables they read there now", zap.String("table", d.table.Name), zap.Strings("views", ev.Views))
			return
		}
	}
}
