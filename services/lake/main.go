// Command lake archives every raw.<dataset> topic into the raw data lake:
// Parquet objects on S3-compatible storage (package pkg/lake), each raw
// event in exactly one object. SKELETON for issue 21: the sink is filled
// in by the lake-sink part.
package main

import (
	"context"
	"io"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/lake"
	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/service"
	"github.com/datamill/datamill/schemas"
)

// settings is the lake sink's configuration, read from the environment.
type settings struct {
	config.Service
	Kafka    kafka.Config
	Registry serde.Config
	Postgres pg.Config
	Lake     lake.Config
	Schemas  schemas.Config
	Audit    AuditConfig // the S3 server's audit trail (audit.go)
}

func main() { service.Main("lake", run) }

func run(ctx context.Context, args, environ []string, stdout io.Writer) error {
	return service.Run(ctx, "lake", args, environ, stdout, archive)
}

// archive runs the sink of every dataset until ctx ends.
func archive(ctx context.Context, p *service.Process, cfg settings) error {
	return service.RunAll(ctx,
		func(ctx context.Context) error { return p.Idle(ctx, cfg.Kafka, cfg.Registry, &cfg.Postgres) },
		func(ctx context.Context) error { return runAudit(ctx, p, cfg.Audit, cfg.Postgres) })
}
