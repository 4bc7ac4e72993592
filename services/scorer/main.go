// Command scorer applies the current model to every persisted.<dataset>
// record, writing the predictions table and scored.<dataset>; `scorer
// train` trains the model.
//
// `scorer train` reads labelled users from the users table (DATABASE_URL)
// or a CSV export of it, splits them (stratified, seeded), fits the
// preprocessing and an L2-regularised logistic regression on the training
// split (package internal/model), evaluates it on the test split and
// writes the versioned artefact models/<name>-<version>.json.
//
// The service waits (not ready) for the predictions table and for a model
// artefact in SCORER_MODEL_DIR, then consumes persisted.users on the
// transactional stage runner. Each batch is scored by one model, its
// predictions written in one database transaction, idempotent by event
// id, and its scored records produced from what the table holds, so a
// replay republishes the first prediction, model version included. A newer
// artefact in the directory is swapped in between batches; one that does
// not load is refused with the reason and the current model stays.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
}

func main() { service.Main("scorer", run) }

func run(ctx context.Context, args, environ []string, stdout io.Writer) error {
	if len(args) > 1 && args[1] == "train" {
		return train(ctx, args[2:], environ, stdout, os.Stderr)
	}
	return service.Run(ctx, "scorer", args, environ, stdout, score)
}

// score waits for the predictions table and a model, then scores every
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
	p.Telemetry.Registry().MustRegister(info, risk)
	ms := &models{dir: cfg.ModelDir, name: cfg.ModelName, log: p.Log, info: info}
	if err := ms.await(ctx, cfg.ModelPoll, func(r string) { p.Telemetry.SetReady("model", false, r) }); err != nil {
		return nil // ctx ended
	}
	p.Telemetry.SetReady("model", true, "")
	go ms.watch(ctx, cfg.ModelPoll)

	return service.RunStages(ctx, p, cfg.Datasets, cfg.Stage, cfg.Kafka, func(ctx context.Context, ds string) (*stage.Spec[users.Persisted, users.Scored], error) {
		if ds != "users" {
			return nil, fmt.Errorf("DATASETS: the scorer has no model for dataset %q", ds)
		}
		s := &scoring{pool: pool, models: ms, risk: risk}
		return stage.NewSpec(ctx, reg, stage.Step{
			Stage: p.Name, Dataset: ds,
			From: kafka.Persisted, In: schemas.MustSchema("users/persisted"),
			To: kafka.Scored, Out: schemas.MustSchema("users/scored"),
		}, s.handler)
	})
}
