package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/stage"
)

// resume lifts the stop of a stage that stopped on a dead-letter flood
// (STAGE_DLQ_ON_FLOOD=stop).
func resume(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("resume", flag.ContinueOnError)
	fs.SetOutput(stderr)
	group := fs.String("group", "", "the stage's consumer group (default datamill-<stage>-<dataset>)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up when Kafka does not answer within this")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: datamill resume <stage> <dataset> [flags]\n\n"+
			"Lifts the stop of a stage that stopped consuming a dataset on a dead-letter flood\n"+
			"(STAGE_DLQ_ON_FLOOD=stop). Its running processes go on within a second, this time\n"+
			"committing the flood to dlq.<dataset>. The KAFKA_* variables are read as the\n"+
			"services read them; KAFKA_BROKERS defaults to that of datamill dev.\n\nflags:")
		fs.PrintDefaults()
	}
	stageName, rest := firstArg(args)
	dataset, rest := firstArg(rest)
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if stageName == "" || dataset == "" || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	kcfg, err := config.Parse[kafka.Config](append([]string{"KAFKA_BROKERS=" + defaultBrokers}, environ...))
	if err != nil {
		return err
	}
	if *group == "" {
		*group = stage.Group(stageName, dataset)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	host, _ := os.Hostname()
	stop, err := stage.Resume(ctx, kcfg, zap.NewNop(), stage.ControlTopic(stageName, dataset), *group, "datamill resume on "+host)
	if err != nil {
		return fmt.Errorf("resume %s %s: %w", stageName, dataset, err)
	}
	fmt.Fprintf(stdout, "resumed %s %s (group %s), stopped since %s by %s: %s\n",
		stageName, dataset, *group, stop.At.Format(time.RFC3339), stop.By, stop.Reason)
	return nil
}
