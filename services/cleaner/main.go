// Command cleaner turns raw.<dataset> records into typed clean.<dataset>
// records by the rules declared in the dataset's clean schema, and sends
// what it rejects to dlq.<dataset> with every reason.
//
// It is the same code for every dataset: a dataset is its pair of schemas,
// schemas/avro/<dataset>/raw.avsc and clean.avsc. Each batch's clean
// records, dead letters and consumed offsets commit in one Kafka
// transaction.
//
// A record whose clean content (its content_hash) equals the last one the
// cleaner emitted for its key is dropped and counted as a duplicate: the
// exact duplicates and unchanged re-sends of an export. The last hash of
// every key is kept per input partition in the compacted topic
// _state.cleaner.<dataset>, written in the same transactions, so the
// check survives restarts and rebalances.
package main

import (
	"context"
	"io"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/service"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/schemas"
)

// settings is the cleaner's configuration, read from the environment.
type settings struct {
	config.Service
	Kafka    kafka.Config
	Registry serde.Config
	Stage    stage.Config
	Schemas  schemas.Config
}

func main() { service.Main("cleaner", run) }

func run(ctx context.Context, args, environ []string, stdout io.Writer) error {
	return service.Run(ctx, "cleaner", args, environ, stdout, clean)
}

// clean runs one stage runner per dataset until ctx ends.
func clean(ctx context.Context, p *service.Process, cfg settings) error {
	reg, err := p.Connect(ctx, cfg.Kafka, cfg.Registry, nil)
	if err != nil {
		return err
	}
	cat, err := p.Datasets(cfg.Schemas, cfg.Datasets)
	if err != nil {
		return err
	}
	return service.RunStages(ctx, p, cfg.Datasets, cfg.Stage, cfg.Kafka, func(ctx context.Context, ds string) (*stage.Spec[record, record], error) {
		d, err := cat.Dataset(ds)
		if err != nil {
			return nil, err
		}
		raw, cleanSchema := d.Raw, d.Clean
		c, err := newCleaning(cleanSchema)
		if err != nil {
			return nil, err
		}
		spec, err := stage.NewSpec(ctx, reg, stage.Step{
			Stage: p.Name, Dataset: ds,
			From: kafka.Raw, In: raw,
			To: kafka.Clean, Out: cleanSchema,
		}, stage.PerRecord(c.transform))
		if err != nil {
			return nil, err
		}
		spec.Digest = contentDigest
		return spec, nil
	})
}
