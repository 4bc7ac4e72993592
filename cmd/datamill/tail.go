package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
)

// Defaults of the CLI's connections: the endpoints `datamill dev` prints.
const (
	defaultBrokers  = "127.0.0.1:19092"
	defaultRegistry = "http://127.0.0.1:18081"
)

func tail(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fromBeginning := fs.Bool("from-beginning", false, "read the topic from its start instead of only new records")
	maxRecords := fs.Int("max", 0, "stop after this many records (0: until Ctrl-C)")
	idle := fs.Duration("idle", 0, "stop when no record arrived for this long (0: never)")
	var dataset string
	datasetFlag(fs, &dataset, "with a step: the dataset whose topic of that step to read")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: datamill tail <topic|step> [flags]\n\nPrints a topic's committed records as JSON lines, decoding Avro values through\nthe schema registry; dead letters show their headers and their original record.\nA step (%s) instead of a topic reads that step's\ntopic of --dataset: `tail clean --dataset orders` reads clean.orders.\nKAFKA_BROKERS and SCHEMA_REGISTRY_URL default to those of datamill dev;\nthe other KAFKA_* variables (TLS, SASL) and the registry's\nSCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD[_FILE] are the services'.\nDATASETS_DIR adds the user's datasets.\n\nflags:\n", strings.Join(steps(), ", "))
		fs.PrintDefaults()
	}
	topic, rest := firstArg(args)
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if topic == "" || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if slices.Contains(steps(), topic) {
		ds, err := lookUp(environ, stderr, dataset)
		if err != nil {
			return fmt.Errorf("tail: --dataset: %w", err)
		}
		topic = kafka.Topic(topic, ds.Name)
	} else if flagSet(fs, "dataset") {
		return fmt.Errorf("tail: --dataset %s goes with a step (%s), not with the topic %s", dataset, strings.Join(steps(), ", "), topic)
	}
	env := config.ToMap(environ)
	kcfg, err := cliKafka(env)
	if err != nil {
		return fmt.Errorf("tail: %w", err)
	}
	reg, err := cliRegistry(env)
	if err != nil {
		return err
	}
	start := kgo.NewOffset().AtEnd()
	if *fromBeginning {
		start = kgo.NewOffset().AtStart()
	}
	cl, err := kafka.NewClient(kcfg, zap.NewNop(),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(start),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	enc := json.NewEncoder(stdout)
	printed := 0
	for {
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if *idle > 0 {
			pollCtx, cancel = context.WithTimeout(ctx, *idle)
		}
		fetches := cl.PollFetches(pollCtx)
		idled := pollCtx.Err() != nil
		cancel()
		if ctx.Err() != nil || idled && fetches.NumRecords() == 0 {
			return nil
		}
		if err := fetches.Err0(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("read %s: %w", topic, err)
		}
		for _, rec := range fetches.Records() {
			if err := enc.Encode(describe(ctx, reg, rec)); err != nil {
				return err
			}
			printed++
			if *maxRecords > 0 && printed >= *maxRecords {
				return nil
			}
		}
	}
}

// steps lists the steps of the pipeline that name a dataset's topics.
func steps() []string {
	return []string{kafka.Raw, kafka.Clean, kafka.DLQ, kafka.Persisted, kafka.Scored}
}

// flagSet reports whether the flag called name was given.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// firstArg splits the positional argument before the flags from the rest.
func firstArg(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

// describe turns a record into what tail prints.
func describe(ctx context.Context, reg *serde.Registry, rec *kgo.Record) map[string]any {
	out := map[string]any{
		"topic": rec.Topic, "partition": rec.Partition, "offset": rec.Offset,
		"timestamp": rec.Timestamp.UTC().Format(time.RFC3339Nano),
		"key":       jsonValue(rec.Key),
	}
	// Keys are Avro strings in the wire format; other keys show as they are.
	if len(rec.Key) > 5 && rec.Key[0] == 0 {
		if _, k, err := reg.DecodeAny(ctx, rec.Key); err == nil {
			out["key"] = jsonValue(k)
		}
	}
	if len(rec.Headers) > 0 {
		h := map[string]string{}
		for _, kv := range rec.Headers {
			h[kv.Key] = string(kv.Value)
		}
		out["headers"] = h
	}
	id, v, err := reg.DecodeAny(ctx, rec.Value)
	if err != nil {
		out["value_raw"] = jsonValue(rec.Value)
		out["decode_error"] = err.Error()
		return out
	}
	out["schema_id"] = id
	// A dead letter keeps the original record's bytes: show them decoded too.
	if m, ok := v.(map[string]any); ok {
		if orig, ok := m["value"].([]byte); ok && m["source_topic"] != nil {
			if _, ov, err := reg.DecodeAny(ctx, orig); err == nil {
				m["original"] = jsonValue(ov)
			}
		}
	}
	out["value"] = jsonValue(v)
	return out
}

// jsonValue makes Avro's generic values printable as JSON: bytes as text
// when they are UTF-8 (else base64), decimals as decimal strings, times
// in RFC 3339.
func jsonValue(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case []byte:
		if utf8.Valid(x) {
			return string(x)
		}
		return "base64:" + base64.StdEncoding.EncodeToString(x)
	case *big.Rat:
		return x.FloatString(2)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return out
	}
	return v
}
