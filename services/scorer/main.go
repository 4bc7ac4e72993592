// Command scorer applies the current model to every persisted.<dataset>
// record, writing the predictions table and scored.<dataset>; `scorer
// train` trains the model.
//
// `scorer train --dataset <ds>` trains the model dataset ds declares in
// its dataset.yaml (its label, its features, logistic or ridge) on the
// labelled rows of the dataset's table (DATABASE_URL) or a CSV export of
// it, splits them (stratified, seeded), fits the preprocessing and the
// regression on the training split (package internal/model), evaluates it
// on the test split and writes the versioned artefact
// models/<name>-<version>.json. Its clients are built from the shared
// Kafka, registry and PostgreSQL settings.
//
// The service serves every dataset of DATASETS that declares a model
// (read through the schemas catalog: the built-in datasets and
// DATASETS_DIR); a dataset without a model: section is not served. For
// each, it waits (not ready) for the dataset's table, which the loader
// creates, then creates the predictions table it writes unless it exists
// (schemas.PredictionsTable, with a foreign key to the table's key), and
// waits for a model artefact in SCORER_MODEL_DIR named as the declared
// model. It then consumes persisted.<dataset> on the transactional stage
// runner, decoding records into a struct type built from the dataset's
// derived persisted schema, and writes scored.<dataset> with the derived
// scored schema. Each batch is scored by one model, its predictions
// written in one database transaction, idempotent by event id, and its
// scored records produced from what the table holds, so a replay
// republishes the first prediction, model version included. A ridge
// model's rows and scored records also carry its estimate and whether
// the record stated its own label (schemas.EstimateFields: jobs'
// salary_estimate and salary_stated). A newer
// artefact in the directory is swapped in between batches; one that does
// not load is refused with the reason and the current model stays.
//
// With SCORER_SELF_TRAIN (the default), the scorer also trains each
// dataset's declared model by itself when it is due (selfTrainer): a
// dataset with no model trains once its table holds the declared min_rows
// labelled rows, and waits (not ready, saying how many it holds) until
// then. Every model is recorded in the scorer_models table.
//
// Each feature's drift, the population stability index between the
// model's training split (its distribution is in the artefact) and the
// last SCORER_DRIFT_WINDOW records scored (by the stream or the
// reconciliation), is the gauge
// datamill_scorer_feature_psi{dataset, feature}; every
// SCORER_DRIFT_INTERVAL and at shutdown, the measurements since the last
// write become rows of the scorer_drift table (driftRecorder).
//
// Once a model is loaded, and then every SCORER_RECONCILE_INTERVAL, the
// scorer also scores the rows of the table whose latest event has no
// prediction (reconciler): rows whose persisted record never reached it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/service"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/services/scorer/migrations"
)

// settings is the scorer's configuration, read from the environment.
type settings struct {
	config.Service
	Kafka    kafka.Config
	Registry serde.Config
	Postgres pg.Config
	Stage    stage.Config
	Schemas  schemas.Config
	// ModelDir holds the model artefacts; for each dataset the newest one
	// named as its declared model is applied, and a newer one is swapped
	// in within ModelPoll.
	ModelDir  string        `env:"SCORER_MODEL_DIR" envDefault:"models"`
	ModelPoll time.Duration `env:"SCORER_MODEL_POLL" envDefault:"2s"`
	// ReconcileInterval is how often the rows whose latest event has no
	// prediction are scored (also once at start); 0 disables it.
	ReconcileInterval time.Duration `env:"SCORER_RECONCILE_INTERVAL" envDefault:"1m"`
	// ReconcileAge is how long a row's latest event is left to the stream
	// before the reconciliation scores it.
	ReconcileAge time.Duration `env:"SCORER_RECONCILE_AGE" envDefault:"2m"`
	// SelfTrain makes the scorer train each dataset's declared model by
	// itself (selfTrainer), checking every SelfTrainInterval whether it is
	// due.
	SelfTrain         bool          `env:"SCORER_SELF_TRAIN" envDefault:"true"`
	SelfTrainInterval time.Duration `env:"SCORER_SELF_TRAIN_INTERVAL" envDefault:"1m"`
	// DriftWindow is how many recent scored records each feature's drift
	// (PSI against the training split) is measured on.
	DriftWindow int `env:"SCORER_DRIFT_WINDOW" envDefault:"10000"`
	// DriftInterval is how often the drift measured since the last write
	// is written into scorer_drift (also at shutdown).
	DriftInterval time.Duration `env:"SCORER_DRIFT_INTERVAL" envDefault:"1m"`
}

// Validate checks the settings that depend on each other.
func (s *settings) Validate() error {
	var errs []error
	if s.DriftWindow < 1 {
		errs = append(errs, fmt.Errorf("SCORER_DRIFT_WINDOW %d: want at least 1 record", s.DriftWindow))
	}
	if s.DriftInterval <= 0 {
		errs = append(errs, fmt.Errorf("SCORER_DRIFT_INTERVAL %s: want a positive interval", s.DriftInterval))
	}
	if s.SelfTrain && s.SelfTrainInterval <= 0 {
		errs = append(errs, fmt.Errorf("SCORER_SELF_TRAIN_INTERVAL %s: want a positive interval", s.SelfTrainInterval))
	}
	return errors.Join(errs...)
}

// reconcilePage is how many rows a reconciliation reads and scores at a
// time.
const reconcilePage = 1000

func main() { service.Main("scorer", run) }

func run(ctx context.Context, args, environ []string, stdout io.Writer) error {
	if len(args) > 1 && args[1] == "train" {
		return train(ctx, args[2:], environ, stdout, os.Stderr)
	}
	return service.Run(ctx, "scorer", args, environ, stdout, score)
}

// Schema is the scorer's Schema (service.Migrator): `scorer migrate`.
func (s settings) Schema(p *service.Process) (pg.Config, service.Schema, error) {
	datasets, _, err := scoredDatasets(p, s)
	if err != nil {
		return pg.Config{}, service.Schema{}, err
	}
	return s.Postgres, schemaOf(datasets), nil
}

// scoredDatasets reads the datasets of DATASETS that declare a model, by
// name, and their names in DATASETS order.
func scoredDatasets(p *service.Process, cfg settings) (map[string]*dataset, []string, error) {
	cat, err := p.Datasets(cfg.Schemas, cfg.Datasets)
	if err != nil {
		return nil, nil, err
	}
	datasets := map[string]*dataset{}
	var served []string
	for _, name := range cfg.Datasets {
		ds, err := cat.Dataset(name)
		if err != nil {
			return nil, nil, err
		}
		if ds.Decl.Model == nil {
			p.Log.Info("dataset declares no model; the scorer does not serve it", zap.String("dataset", name))
			continue
		}
		d, err := newDataset(ds)
		if err != nil {
			return nil, nil, err
		}
		datasets[name] = d
		served = append(served, name)
	}
	return datasets, served, nil
}

// schemaOf is what the scorer keeps in the database: its own tables, from
// its migrations, and the predictions table of each of datasets whose
// table the loader created already (the others are created once it has:
// awaitTable).
func schemaOf(datasets map[string]*dataset) service.Schema {
	return service.Schema{
		Component: "scorer", Migrations: migrations.FS,
		Tables: pg.Tables{"scorer_drift": pg.Scorer, "scorer_models": pg.Scorer},
		DDL: func(ctx context.Context, pool *pgxpool.Pool) (pg.Tables, error) {
			tables := pg.Tables{}
			for _, d := range datasets {
				found, err := d.predictionsDDL(ctx, pool)
				if err != nil {
					return nil, err
				}
				if found {
					tables[d.predictions] = pg.Predictions
				}
			}
			return tables, nil
		},
	}
}

// score serves every dataset of DATASETS that declares a model: it waits
// for the dataset's table, creates its predictions table, waits for a
// model, then scores every persisted record of the dataset. A dataset
// without a model section is served by no stage.
func score(ctx context.Context, p *service.Process, cfg settings) error {
	reg, err := p.Connect(ctx, cfg.Kafka, cfg.Registry, &cfg.Postgres)
	if err != nil {
		return err
	}
	datasets, served, err := scoredDatasets(p, cfg)
	if err != nil {
		return err
	}
	db, err := p.Database(ctx, cfg.Postgres, schemaOf(datasets))
	if err != nil {
		return err
	}
	defer db.Close()
	pool := db.Pool

	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "datamill_scorer_model_info", Help: "1 for the model version being applied to a dataset, 0 for those swapped out.",
	}, []string{"dataset", "version"})
	risk := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "datamill_scorer_churn_probability", Help: "Predicted probabilities (a ridge model's predicted values) of the scored events.",
		Buckets: prometheus.LinearBuckets(0.1, 0.1, 9),
	}, []string{"dataset"})
	reconciled := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "datamill_scorer_reconciled_rows_total", Help: "Rows whose latest event had no prediction, scored by the reconciliation.",
	}, []string{"dataset"})
	psi := newDriftGauge()
	p.Telemetry.Registry().MustRegister(info, risk, psi, reconciled)
	if len(served) == 0 {
		p.Log.Info("no dataset of DATASETS declares a model; nothing to score", zap.Strings("datasets", cfg.Datasets))
		<-ctx.Done()
		return nil
	}

	applied := map[string]*models{}
	for _, name := range served {
		d := datasets[name]
		ms := &models{dataset: name, dir: cfg.ModelDir, name: d.decl.Name, log: p.Log, info: info}
		applied[name] = ms
		if cfg.SelfTrain {
			go newSelfTrainer(d, pool, ms, cfg.ModelDir, p.Log).run(ctx, cfg.SelfTrainInterval)
		}
	}
	// The reconciliation's producer: idempotent, acknowledged by every
	// in-sync replica.
	producer, err := kafka.NewClient(cfg.Kafka, p.Log)
	if err != nil {
		return err
	}
	defer producer.Close()
	// Each dataset's reconciliation runs beside its stage runner and ends
	// with it, before the producer closes.
	var reconcilers sync.WaitGroup
	defer reconcilers.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The drift recorder writes a last time once the stages have stopped,
	// before the pool closes.
	recorder := &driftRecorder{pool: pool, log: p.Log}
	reconcilers.Go(func() { recorder.run(ctx, cfg.DriftInterval) })

	// Each dataset waits for its table, then for its model, and its stage
	// starts once it has them, whatever the other datasets wait for.
	return service.RunStagesIndependently(ctx, p, served, cfg.Stage, cfg.Kafka, func(ctx context.Context, ds string) (*stage.Spec[persisted, scored], error) {
		d, ms := datasets[ds], applied[ds]
		if err := d.awaitTable(ctx, db, pool, func(r string) { p.Telemetry.SetReady("predictions_"+ds, false, r) }); err != nil {
			return nil, err // ctx ended
		}
		p.Telemetry.SetReady("predictions_"+ds, true, "")
		if err := ms.await(ctx, cfg.ModelPoll, func(r string) { p.Telemetry.SetReady("model_"+ds, false, r) }); err != nil {
			return nil, err // ctx ended
		}
		p.Telemetry.SetReady("model_"+ds, true, "")
		go ms.watch(ctx, cfg.ModelPoll)
		enc, err := d.codecs(ctx, reg)
		if err != nil {
			return nil, err
		}
		dr := &drift{dataset: ds, window: cfg.DriftWindow, psi: psi}
		recorder.add(dr)
		s := &scoring{dataset: d, pool: pool, models: ms, risk: risk.WithLabelValues(ds), drift: dr}
		spec, err := stage.NewSpec(ctx, reg, stage.Step{
			Stage: p.Name, Dataset: ds,
			From: kafka.Persisted, In: d.persistedSchema,
			To: kafka.Scored, Out: d.scoredSchema,
		}, s.handler)
		if err != nil {
			return nil, err
		}
		// The scorer's own codecs, of the same schemas as the spec's:
		// records decode into the dataset's struct type.
		spec.Decoder, spec.Encoder = d, enc
		if cfg.ReconcileInterval <= 0 {
			return spec, nil
		}
		rc := &reconciler{
			dataset: d, pool: pool, models: ms, log: p.Log, topic: spec.Output, encoder: enc, keys: spec.Keys,
			produce: produceSync(producer), age: cfg.ReconcileAge, page: reconcilePage, reconciled: reconciled.WithLabelValues(ds), drift: dr,
		}
		reconcilers.Go(func() {
			if err := kafka.EnsureTopics(ctx, producer, cfg.Kafka, spec.Output); err != nil {
				if ctx.Err() == nil {
					p.Log.Error("reconciliation not started", zap.String("dataset", ds), zap.Error(err))
				}
				return
			}
			rc.run(ctx, cfg.ReconcileInterval)
		})
		return spec, nil
	})
}
