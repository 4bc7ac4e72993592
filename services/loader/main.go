// Command loader upserts clean.<dataset> records into PostgreSQL and publishes what it did to persisted.<dataset>.
//
// Its step is not built yet: it starts, waits for its dependencies, reports
// ready on /readyz and idles until SIGINT or SIGTERM.
package main

import (
	"context"
	"io"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/service"
)

// settings is the loader's configuration, read from the environment.
type settings struct {
	config.Service
	Kafka    kafka.Config
	Registry serde.Config
	Postgres pg.Config
}

func main() { service.Main("loader", run) }

func run(ctx context.Context, _, environ []string, stdout io.Writer) error {
	return service.Run(ctx, "loader", environ, stdout, func(ctx context.Context, p *service.Process, cfg settings) error {
		return p.Idle(ctx, cfg.Kafka, cfg.Registry, &cfg.Postgres)
	})
}
