package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/ingest"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/schemas"
)

func produce(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("produce", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "", "csv, json or ndjson (default: from the file name, else from the first bytes)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: datamill produce <dataset> [file|-] [flags]\n\nPublishes the records of a CSV (with a header row), JSON array or NDJSON file\n(or standard input) to raw.<dataset>, Avro-encoded through the schema registry,\nwith the same deterministic event ids as the extractor. The whole input is\nread and checked first: a bad record stops it before anything is published.\nKAFKA_BROKERS and SCHEMA_REGISTRY_URL default to those of datamill dev;\nSCHEMAS_DIR, when set, replaces the built-in schemas as it does for the\nservices.\n\nflags:")
		fs.PrintDefaults()
	}
	dataset, rest := firstArg(args)
	file, rest := firstArg(rest)
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if dataset == "" || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if file == "" {
		file = "-"
	}
	cat, err := schemas.Open(config.ToMap(environ)["SCHEMAS_DIR"])
	if err != nil {
		return err
	}
	ds, raw, err := newDataset(cat, dataset)
	if err != nil {
		return err
	}

	in, source, at := io.Reader(os.Stdin), "stdin", time.Now()
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		abs, err := filepath.Abs(file)
		if err != nil {
			return err
		}
		// Named and timed as the extractor does: publishing an unchanged
		// file again, either way, reproduces its events exactly, so
		// nothing changes downstream.
		in, source, at = f, "file:"+abs, st.ModTime()
	}
	br := bufio.NewReaderSize(in, 1<<16)
	f := ingest.FormatOf(file, peek(br))
	if *format != "" {
		if f, err = ingest.ParseFormat(*format); err != nil {
			return err
		}
	}

	values, keys, err := readRecords(ds, source, br, f, at, stderr)
	if err != nil {
		return err
	}
	topic, err := publish(ctx, config.ToMap(environ), dataset, raw, values, keys)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "published %d %s records to %s\n", len(values), dataset, topic)
	return nil
}

// publish encodes raw records of dataset and produces them to
// raw.<dataset>, keyed, waiting until every one is acknowledged.
func publish(ctx context.Context, env map[string]string, dataset string, raw avro.Schema, values []map[string]any, keys [][]byte) (string, error) {
	kcfg := kafka.Config{Brokers: strings.Split(cmpOr(env["KAFKA_BROKERS"], defaultBrokers), ","), Partitions: 1}
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: cmpOr(env["SCHEMA_REGISTRY_URL"], defaultRegistry)})
	if err != nil {
		return "", err
	}
	topic := kafka.Topic(kafka.Raw, dataset)
	codec, err := serde.NewCodec[map[string]any](ctx, reg, topic, raw)
	if err != nil {
		return "", err
	}
	keyCodec, err := serde.NewKeyCodec(ctx, reg, topic)
	if err != nil {
		return "", err
	}
	recs := make([]*kgo.Record, len(values))
	for i := range values {
		b, err := codec.Encode(&values[i])
		if err != nil {
			return "", fmt.Errorf("encode record %d: %w", i+1, err)
		}
		recs[i] = &kgo.Record{Topic: topic, Value: b}
		if keys[i] != nil {
			recs[i].Key = keyCodec.Append(nil, keys[i])
		}
	}
	cl, err := kafka.NewClient(kcfg, zap.NewNop(), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		return "", err
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return "", fmt.Errorf("publish to %s: %w", topic, err)
	}
	return topic, nil
}

// peek returns the first bytes of r without consuming them.
func peek(r *bufio.Reader) []byte {
	b, _ := r.Peek(512)
	return b
}

// readRecords reads and checks a whole source into raw records and their
// keys. Later records of the source are newer: their ingestion times
// follow their order from at, a microsecond apart.
func readRecords(ds *ingest.Dataset, source string, r io.Reader, f ingest.Format, at time.Time, stderr io.Writer) ([]map[string]any, [][]byte, error) {
	now := at.Truncate(time.Microsecond)
	var values []map[string]any
	var keys [][]byte
	unknown := map[string]bool{}
	err := ingest.Read(r, f, func(rec ingest.Record) error {
		for _, u := range ds.Unknown(rec) {
			unknown[u] = true
		}
		values = append(values, ds.Raw(source, rec, now.Add(time.Duration(len(values))*time.Microsecond)))
		keys = append(keys, ds.Key(rec))
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w; nothing was published", source, err)
	}
	if len(unknown) > 0 {
		fmt.Fprintf(stderr, "datamill: ignoring fields %s has no place for: %s\n", ds.Name, strings.Join(slices.Sorted(maps.Keys(unknown)), ", "))
	}
	return values, keys, nil
}

// newDataset prepares a dataset of cat for reading sources.
func newDataset(cat *schemas.Catalog, name string) (*ingest.Dataset, avro.Schema, error) {
	raw, err := cat.Schema(name + "/raw")
	if err != nil {
		return nil, nil, fmt.Errorf("unknown dataset %q: %w", name, err)
	}
	clean, err := cat.Schema(name + "/clean")
	if err != nil {
		return nil, nil, fmt.Errorf("dataset %q: %w", name, err)
	}
	key, err := schemas.KeyField(clean)
	if err != nil {
		return nil, nil, err
	}
	ds, err := ingest.NewDataset(name, raw, key)
	return ds, raw, err
}
