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
// The service waits (not ready) for the users table, which the loader
// creates, then creates the predictions table it writes unless it exists,
// and waits for a model artefact in SCORER_MODEL_DIR; it then consumes
// persisted.users on the
// transactional stage runner. Each batch is scored by one model, its
// predictions written in one database transaction, idempotent by event
// id, and its scored records produced from what the table holds, so a
// replay republishes the first prediction, model version included. A newer
// artefact in the directory is swapped in between batches; one that does
// not load is refused with the reason and the current model stays.
//
// With SCORER_SELF_TRAIN, the scorer also trains each dataset's declared
// model by itself when it is due (selfTrainer), and records every model in
// the scorer_models table.
//
// Each feature's drift, the population stability index between the
// model's training split (its distribution is in the artefact) and the
// last SCORER_DRIFT_WINDOW records scored (by the stream or the
// reconciliation), is the gauge
// datamill_scorer_feature_psi{dataset, feature}.
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

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/service"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/schemas/users"
)

// settings is the scorer's configuration, read from the environment.
type settings struct {
	config.Service
	Kafka    kafka.Config
	Registry serde.Config
	Postgres pg.Config
	Stage    stage.Config
	// ModelDir holds the model artefacts; the newest one named ModelName
	// is applied, and a newer one is swapped in within ModelPoll.
	ModelDir  string        `env:"SCORER_MODEL_DIR" envDefault:"models"`
	ModelName string        `env:"SCORER_MODEL_NAME" envDefault:"churn"`
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
	SelfTrain         bool          `env:"SCORER_SELF_TRAIN" envDefault:"false"`
	SelfTrainInterval time.Duration `env:"SCORER_SELF_TRAIN_INTERVAL" envDefault:"1m"`
	// DriftWindow is how many recent scored records each feature's drift
	// (PSI against the training split) is measured on.
	DriftWindow int `env:"SCORER_DRIFT_WINDOW" envDefault:"10000"`
}

// Validate checks the settings that depend on each other.
func (s *settings) Validate() error {
	var errs []error
	if s.DriftWindow < 1 {
		errs = append(errs, fmt.Errorf("SCORER_DRIFT_WINDOW %d: want at least 1 record", s.DriftWindow))
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

// score creates the predictions table once the users table exists, waits
// for a model, then scores every
// persisted record of each dataset.
func score(ctx context.Context, p *service.Process, cfg settings) error {
	reg, err := p.Connect(ctx, cfg.Kafka, cfg.Registry, &cfg.Postgres)
	if err != nil {
		return err
	}
	pool, err := p.Database(ctx, cfg.Postgres, "scorer", nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := awaitTable(ctx, pool, func(r string) { p.Telemetry.SetReady("predictions", false, r) }); err != nil {
		return nil // ctx ended
	}
	p.Telemetry.SetReady("predictions", true, "")

	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "datamill_scorer_model_info", Help: "1 for the model version being applied, 0 for those swapped out.",
	}, []string{"version"})
	risk := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "datamill_scorer_churn_probability", Help: "Predicted churn probabilities of the scored events.",
		Buckets: prometheus.LinearBuckets(0.1, 0.1, 9),
	})
	psi := newDriftGauge()
	p.Telemetry.Registry().MustRegister(info, risk, psi)
	ms := &models{dir: cfg.ModelDir, name: cfg.ModelName, log: p.Log, info: info}
	if cfg.SelfTrain {
		for _, ds := range cfg.Datasets {
			t, err := newSelfTrainer(ds, pool, ms, cfg.ModelDir, p.Log)
			if err != nil {
				return err
			}
			go t.run(ctx, cfg.SelfTrainInterval)
		}
	}
	if err := ms.await(ctx, cfg.ModelPoll, func(r string) { p.Telemetry.SetReady("model", false, r) }); err != nil {
		return nil // ctx ended
	}
	p.Telemetry.SetReady("model", true, "")
	go ms.watch(ctx, cfg.ModelPoll)

	reconciled := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "datamill_scorer_reconciled_rows_total", Help: "Rows whose latest event had no prediction, scored by the reconciliation.",
	}, []string{"dataset"})
	p.Telemetry.Registry().MustRegister(reconciled)
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

	return service.RunStages(ctx, p, cfg.Datasets, cfg.Stage, cfg.Kafka, func(ctx context.Context, ds string) (*stage.Spec[users.Persisted, users.Scored], error) {
		if ds != "users" {
			return nil, fmt.Errorf("DATASETS: the scorer has no model for dataset %q", ds)
		}
		dr := &drift{dataset: ds, window: cfg.DriftWindow, psi: psi}
		s := &scoring{pool: pool, models: ms, risk: risk, drift: dr}
		spec, err := stage.NewSpec(ctx, reg, stage.Step{
			Stage: p.Name, Dataset: ds,
			From: kafka.Persisted, In: schemas.MustSchema("users/persisted"),
			To: kafka.Scored, Out: schemas.MustSchema("users/scored"),
		}, s.handler)
		if err != nil || cfg.ReconcileInterval <= 0 {
			return spec, err
		}
		rc := &reconciler{
			pool: pool, models: ms, log: p.Log, table: ds, topic: spec.Output, encoder: spec.Encoder, keys: spec.Keys,
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
