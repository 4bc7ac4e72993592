package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/pg"
	ecometer "github.com/datamill/datamill/services/ecometer/migrations"
	loader "github.com/datamill/datamill/services/loader/migrations"
)

// provisioning is what `datamill init` reads from the environment.
type provisioning struct {
	Kafka    kafka.Config
	Postgres pg.Config
	Datasets []string `env:"DATASETS" envDefault:"users" envSeparator:","`
}

// initCommand prepares a deployment before its services start: the pipeline
// topics of every dataset with KAFKA_TOPIC_PARTITIONS partitions and the
// database migrations. The services do both themselves as well, so init is
// idempotent and only makes the first start orderly (and lets an operator
// choose the partition count before any service creates a topic).
func initCommand(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("init", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: datamill init\n\nCreates the pipeline topics of DATASETS (default users) with\nKAFKA_TOPIC_PARTITIONS partitions (default 3) on KAFKA_BROKERS and applies the\nservices' migrations to DATABASE_URL. Existing topics and applied migrations\nare left as they are. The KAFKA_* and DATABASE_* variables are the services'.")
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if flags.NArg() > 0 {
		flags.Usage()
		return errUsage
	}
	cfg, err := config.Parse[provisioning](environ)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	topics, err := createTopics(ctx, cfg.Kafka, cfg.Datasets)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	fmt.Fprintf(stdout, "topics (%d partitions): %s\n", cfg.Kafka.Partitions, strings.Join(topics, " "))
	pool, err := pg.Open(ctx, cfg.Postgres)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	defer pool.Close()
	for _, m := range []struct {
		component string
		fs        fs.FS
	}{{"loader", loader.FS}, {"ecometer", ecometer.FS}} {
		n, err := pg.Migrate(ctx, pool, m.component, m.fs)
		if err != nil {
			return fmt.Errorf("init: %w", err)
		}
		fmt.Fprintf(stdout, "migrations of %s: %d applied\n", m.component, n)
	}
	return nil
}

// createTopics ensures the pipeline topics of datasets and names them.
func createTopics(ctx context.Context, cfg kafka.Config, datasets []string) ([]string, error) {
	cl, err := kafka.NewClient(cfg, zap.NewNop())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	topics := kafka.PipelineTopics(datasets...)
	return topics, kafka.EnsureTopics(ctx, cl, cfg, topics...)
}
