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
// The streaming step is not built yet: the service starts, waits for its
// dependencies, reports ready on /readyz and idles until SIGINT or SIGTERM.
package main

import (
	"context"
	"io"
	"os"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/service"
)

// settings is the scorer's configuration, read from the environment.
type settings struct {
	config.Service
	Kafka    kafka.Config
	Registry serde.Config
	Postgres pg.Config
}

func main() { service.Main("scorer", run) }

func run(ctx context.Context, args, environ []string, stdout io.Writer) error {
	if len(args) > 1 && args[1] == "train" {
		return train(ctx, args[2:], environ, stdout, os.Stderr)
	}
	return service.Run(ctx, "scorer", environ, stdout, func(ctx context.Context, p *service.Process, cfg settings) error {
		return p.Idle(ctx, cfg.Kafka, cfg.Registry, &cfg.Postgres)
	})
}
