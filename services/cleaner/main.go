// Command cleaner turns raw.<dataset> records into typed clean.<dataset> records, sending what it rejects to dlq.<dataset> with the reasons.
//
// Its step is not built yet: it starts, waits for its dependencies, reports
// ready on /readyz and idles until SIGINT or SIGTERM.
package main

import (
	"context"
	"io"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/service"
)

// settings is the cleaner's configuration, read from the environment.
type settings struct {
	config.Service
	Kafka    kafka.Config
	Registry serde.Config
}

func main() { service.Main("cleaner", run) }

func run(ctx context.Context, _, environ []string, stdout io.Writer) error {
	return service.Run(ctx, "cleaner", environ, stdout, func(ctx context.Context, p *service.Process, cfg settings) error {
		return p.Idle(ctx, cfg.Kafka, cfg.Registry, nil)
	})
}
