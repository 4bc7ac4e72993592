// Command extractor brings source records into raw.<dataset>, keeping the
// source's values as they came and giving each record a deterministic
// event id.
//
// It serves the HTTP ingest endpoint POST /v1/datasets/{dataset}/events on
// HTTP_ADDR (next to /metrics): a JSON object, a JSON array or NDJSON, each
// body published whole in one Kafka transaction before the 202 answer.
// File sources land with the users pipeline issue.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/ingest"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/service"
	"github.com/datamill/datamill/schemas"
)

// settings is the extractor's configuration, read from the environment.
type settings struct {
	config.Service
	Kafka    kafka.Config
	Registry serde.Config
	// HTTPToken, when set, is the bearer token the ingest endpoint requires.
	HTTPToken string `env:"EXTRACTOR_HTTP_TOKEN" envDefault:"" secret:"true"`
	// MaxBodyBytes caps an ingest request's body.
	MaxBodyBytes int64 `env:"EXTRACTOR_MAX_BODY_BYTES" envDefault:"10485760"`
	// PublishTimeout bounds how long a request waits for Kafka.
	PublishTimeout time.Duration `env:"EXTRACTOR_PUBLISH_TIMEOUT" envDefault:"10s"`
	// InstanceID makes the transactional id of this process stable, so
	// that a restart fences its predecessor; default: the host name.
	InstanceID string `env:"EXTRACTOR_INSTANCE_ID" envDefault:""`
}

func main() { service.Main("extractor", run) }

func run(ctx context.Context, _, environ []string, stdout io.Writer) error {
	return service.Run(ctx, "extractor", environ, stdout, extract)
}

func extract(ctx context.Context, p *service.Process, cfg settings) error {
	p.Telemetry.SetReady("ingest", false, "starting")
	reg, err := p.Connect(ctx, cfg.Kafka, cfg.Registry, nil)
	if err != nil {
		return err
	}
	if cfg.InstanceID == "" {
		if cfg.InstanceID, err = os.Hostname(); err != nil {
			return fmt.Errorf("EXTRACTOR_INSTANCE_ID is unset and the host name is unknown: %w", err)
		}
	}
	api := &ingestAPI{sources: map[string]*source{}, token: cfg.HTTPToken, maxBody: cfg.MaxBodyBytes, timeout: cfg.PublishTimeout, log: p.Log}
	for _, name := range cfg.Datasets {
		src, err := newSource(ctx, reg, name)
		if err != nil {
			return err
		}
		api.sources[name] = src
	}
	api.producer, err = kafka.NewClient(cfg.Kafka, p.Log,
		kgo.TransactionalID("datamill-extractor-"+cfg.InstanceID),
		kgo.TransactionTimeout(cfg.PublishTimeout+5*time.Second),
		kgo.RecordDeliveryTimeout(cfg.PublishTimeout),
	)
	if err != nil {
		return err
	}
	defer api.producer.Close()
	p.Telemetry.Handle("POST /v1/datasets/{dataset}/events", api)
	p.Telemetry.SetReady("ingest", true, "")
	p.Log.Info("ingest endpoint ready", zap.String("path", "/v1/datasets/{dataset}/events"))
	<-ctx.Done()
	return nil
}

// newSource prepares a dataset for publishing to raw.<dataset>.
func newSource(ctx context.Context, reg *serde.Registry, name string) (*source, error) {
	raw, err := schemas.Schema(name + "/raw")
	if err != nil {
		return nil, fmt.Errorf("DATASETS: dataset %q has no raw schema: %w", name, err)
	}
	clean, err := schemas.Schema(name + "/clean")
	if err != nil {
		return nil, fmt.Errorf("DATASETS: dataset %q has no clean schema: %w", name, err)
	}
	key, err := schemas.KeyField(clean)
	if err != nil {
		return nil, err
	}
	ds, err := ingest.NewDataset(name, raw, key)
	if err != nil {
		return nil, err
	}
	topic := kafka.Topic(kafka.Raw, name)
	codec, err := serde.NewCodec[map[string]any](ctx, reg, topic, raw)
	if err != nil {
		return nil, err
	}
	return &source{dataset: ds, codec: codec, topic: topic}, nil
}
