package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/ingest"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/schemas"
)

const produceUsage = `usage: datamill produce <dataset> [file|-] [flags]

Publishes the records of a CSV (with a header row), JSON array or NDJSON file
(or standard input) to raw.<dataset>, Avro-encoded through the schema registry,
with the same deterministic event ids as the extractor, in one Kafka
transaction: consumers reading read_committed, as every datamill stage does,
see all of the input or none of it.

The whole input is read and checked first. Records that cannot be read, that
lack the dataset's key, or that are larger than the topic takes
(max.message.bytes) are listed, and nothing is published; with --skip-refused
they are listed and the others are published.

KAFKA_BROKERS and SCHEMA_REGISTRY_URL default to those of datamill dev, and
the other KAFKA_* variables (TLS, SASL) and SCHEMA_REGISTRY_USERNAME and
SCHEMA_REGISTRY_PASSWORD[_FILE] are the services' (export what dev prints); DATASETS_DIR, when set, adds the user's datasets and replaces built-in files
as it does for the services (SCHEMAS_DIR is its deprecated name).

flags:`

// maxListed is how many refused records an error lists.
const maxListed = 20

func produce(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("produce", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "", "csv, json or ndjson (default: from the file name, else from the first bytes)")
	skip := fs.Bool("skip-refused", false, "publish the records that pass the checks, and list the others on standard error, instead of publishing nothing")
	txnTimeout := fs.Duration("transaction-timeout", 5*time.Minute, "how long the broker keeps the transaction open before it aborts it; the input must be published within it, and at most the broker's transaction.max.timeout.ms, 15m unless configured")
	fs.Usage = func() {
		fmt.Fprintln(stderr, produceUsage)
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
	env := config.ToMap(environ)
	cat, err := openCatalog(env, stderr)
	if err != nil {
		return err
	}
	ds, raw, err := newDataset(cat, dataset)
	if err != nil {
		return err
	}
	key, err := datasetKey(cat, dataset)
	if err != nil {
		return err
	}

	in, source, name, at := io.Reader(os.Stdin), "stdin", "stdin", time.Now()
	if file != "-" {
		f, err := os.Open(file) // #nosec G304 G703 -- the file the operator asks to publish
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
		in, source, name, at = f, "file:"+abs, file, st.ModTime()
	}
	br := bufio.NewReaderSize(in, 1<<16)
	f := ingest.FormatOf(file, peek(br))
	if *format != "" {
		if f, err = ingest.ParseFormat(*format); err != nil {
			return err
		}
	}

	// The schema is registered first: a schema the registry refuses (not
	// BACKWARD compatible) is the one error to hear about, before any
	// record that does not fit it. A registry out of reach is reported
	// after the records' own problems.
	topic := kafka.Topic(kafka.Raw, dataset)
	reg, err := cliRegistry(env)
	if err != nil {
		return err
	}
	codec, regErr := serde.NewCodec[map[string]any](ctx, reg, topic, raw)
	if errors.Is(regErr, schemas.ErrIncompatible) {
		return fmt.Errorf("register the schema of %s: %w; nothing was published", topic, regErr)
	}

	input, err := readBatch(ds, key, raw, source, br, f, at)
	if err != nil {
		return fmt.Errorf("read %s: %w; nothing was published", name, err)
	}
	if len(input.unknown) > 0 {
		fmt.Fprintf(stderr, "datamill: ignoring fields %s has no place for: %s\n", ds.Name, strings.Join(input.unknown, ", "))
	}

	kcfg, err := cliKafka(env)
	if err != nil {
		return fmt.Errorf("%w; nothing was published", err)
	}
	lookup := ctx
	if len(input.refused) > 0 && !*skip {
		// The input is refused whatever the sizes: asking the broker for
		// its limit, to list the records too large as well, may not hold
		// the answer back long.
		var cancel context.CancelFunc
		lookup, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	limit, limitErr := messageLimit(lookup, kcfg, topic)
	if limitErr == nil {
		input.checkSizes(topic, limit)
	}
	switch {
	case len(input.refused) > 0 && !*skip:
		err := errors.New(input.refusal(name, "nothing was published"))
		if limitErr != nil {
			err = fmt.Errorf("%w\n(record sizes were not checked: %w)", err, limitErr)
		}
		return err
	case limitErr != nil:
		return fmt.Errorf("%w; nothing was published", limitErr)
	case len(input.refused) > 0:
		fmt.Fprintln(stderr, "datamill: "+input.refusal(name, "publishing the others"))
	}

	if regErr != nil {
		return fmt.Errorf("register the schema of %s: %w; nothing was published", topic, regErr)
	}
	if err := publish(ctx, kcfg, reg, codec, topic, input.records, transactionalID(dataset, source), *txnTimeout, limit); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "published %d %s records to %s\n", len(input.records), dataset, topic)
	return nil
}

// record is a source record ready to publish: its key, and its value in
// the wire format with the 5-byte header left for the schema id.
type record struct {
	position string
	key      []byte
	value    []byte
}

// refusalKind is why a record is refused.
type refusalKind int

const (
	unreadable refusalKind = iota
	keyless
	tooLarge
)

// refused is a source record that cannot be published.
type refused struct {
	seq      int // the record's place among all records read
	position string
	kind     refusalKind
	reason   string
}

// batch is a whole input read and checked.
type batch struct {
	key     string // the dataset's key field
	records []record
	seqs    []int // each record's place among all records read
	refused []refused
	unknown []string // source fields the dataset has no place for
}

// readBatch reads and checks a whole source into records: every record is
// read, those that cannot be read or lack the key are refused. Later
// records of the source are newer: their ingestion times follow their
// order from at, a microsecond apart. Only a failing stream is an error.
func readBatch(ds *ingest.Dataset, key string, raw avro.Schema, source string, r io.Reader, f ingest.Format, at time.Time) (*batch, error) {
	now := at.Truncate(time.Microsecond)
	b := &batch{key: key}
	unknown := map[string]bool{}
	seq := 0
	err := ingest.Scan(r, f, func(rec ingest.Record) error {
		seq++
		for _, u := range ds.Unknown(rec) {
			unknown[u] = true
		}
		k := ds.Key(rec)
		if k == nil {
			b.refused = append(b.refused, refused{seq: seq, position: rec.Position, kind: keyless, reason: "no " + key})
			return nil
		}
		v := ds.Raw(source, rec, now.Add(time.Duration(len(b.records))*time.Microsecond))
		body, err := avro.Marshal(raw, v)
		if err != nil {
			b.refused = append(b.refused, refused{seq: seq, position: rec.Position, kind: unreadable, reason: "does not fit the raw schema: " + err.Error()})
			return nil
		}
		value := make([]byte, 5+len(body))
		copy(value[5:], body)
		b.records = append(b.records, record{position: rec.Position, key: k, value: value})
		b.seqs = append(b.seqs, seq)
		return nil
	}, func(e *ingest.Error) error {
		seq++
		b.refused = append(b.refused, refused{seq: seq, position: e.Position, kind: unreadable, reason: e.Err.Error()})
		return nil
	})
	var stop *ingest.Error
	if errors.As(err, &stop) {
		seq++
		b.refused = append(b.refused, refused{seq: seq, position: stop.Position, kind: unreadable, reason: stop.Err.Error() + " (reading stopped here)"})
		err = nil
	}
	b.unknown = slices.Sorted(maps.Keys(unknown))
	return b, err
}

// checkSizes refuses, and takes out of the records, those larger than
// limit, the most bytes a record batch of topic may hold.
func (b *batch) checkSizes(topic string, limit int) {
	records, seqs := b.records[:0], b.seqs[:0]
	for i, r := range b.records {
		if n := batchBytes(5+varintLen(len(r.key))+len(r.key), len(r.value)); n > limit {
			b.refused = append(b.refused, refused{
				seq: b.seqs[i], position: r.position, kind: tooLarge,
				reason: fmt.Sprintf("too large: %d bytes as a Kafka record, %s takes at most %d", n, topic, limit),
			})
			continue
		}
		records, seqs = append(records, r), append(seqs, b.seqs[i])
	}
	b.records, b.seqs = records, seqs
	slices.SortStableFunc(b.refused, func(x, y refused) int { return x.seq - y.seq })
}

// refusal lists the refused records of the input called name, the first
// maxListed of them, and says how many of each kind there are and what
// becomes of the input.
func (b *batch) refusal(name, outcome string) string {
	var counts [3]int
	for _, r := range b.refused {
		counts[r.kind]++
	}
	var kinds []string
	for kind, label := range []string{"unreadable", "with no " + b.key, "too large"} {
		if counts[kind] > 0 {
			kinds = append(kinds, fmt.Sprintf("%d %s", counts[kind], label))
		}
	}
	noun := "records"
	if len(b.refused) == 1 {
		noun = "record"
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s: %d %s refused (%s); %s:", name, len(b.refused), noun, strings.Join(kinds, ", "), outcome)
	for _, r := range b.refused[:min(len(b.refused), maxListed)] {
		fmt.Fprintf(&sb, "\n  %s: %s", r.position, r.reason)
	}
	if n := len(b.refused) - maxListed; n > 0 {
		fmt.Fprintf(&sb, "\n  … and %d more", n)
	}
	return sb.String()
}

// recordBatchOverhead is the size of a Kafka record batch's header (v2):
// base offset, length, leader epoch, magic, CRC, attributes, last offset
// delta, first and max timestamps, producer id and epoch, base sequence,
// record count.
const recordBatchOverhead = 8 + 4 + 4 + 1 + 4 + 2 + 4 + 8 + 8 + 8 + 2 + 4 + 4

// batchBytes is the size, uncompressed, of a record batch holding one
// record with a key and a value of the given sizes and no headers: what
// the client and the broker hold against their limits. The record's
// timestamp and offset deltas are counted at their widest.
func batchBytes(key, value int) int {
	rec := 1 + binary.MaxVarintLen64 + binary.MaxVarintLen32 + varintLen(key) + key + varintLen(value) + value + 1
	return recordBatchOverhead + varintLen(rec) + rec
}

func varintLen(n int) int { return len(binary.AppendVarint(nil, int64(n))) }

// The most bytes a record batch may hold when the broker does not say: the
// default of Kafka's message.max.bytes. maxLimit caps what the broker says,
// below what a franz-go client writes to a broker in one request.
const (
	defaultLimit = 1<<20 + 12
	maxLimit     = 64 << 20
)

// messageLimit is the most bytes a record batch of topic may hold: the
// topic's max.message.bytes, else the broker's message.max.bytes, else
// Kafka's default.
func messageLimit(ctx context.Context, kcfg kafka.Config, topic string) (int, error) {
	cl, err := kafka.NewClient(kcfg, zap.NewNop())
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	find := func(rcs kadm.ResourceConfigs, name, key string) (int, bool) {
		rc, err := rcs.On(name, nil)
		if err != nil || rc.Err != nil {
			return 0, false
		}
		for _, c := range rc.Configs {
			if c.Key == key && c.Value != nil {
				if n, err := strconv.Atoi(*c.Value); err == nil && n > 0 {
					return min(n, maxLimit), true
				}
			}
		}
		return 0, false
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("describe topic %s: %w", topic, err)
	}
	if n, ok := find(rcs, topic, "max.message.bytes"); ok {
		return n, nil
	}
	brokers, err := adm.ListBrokers(ctx)
	if err != nil || len(brokers) == 0 {
		return defaultLimit, nil
	}
	id := strconv.Itoa(int(brokers[0].NodeID))
	if rcs, err := adm.DescribeBrokerConfigs(ctx, brokers[0].NodeID); err == nil {
		if n, ok := find(rcs, id, "message.max.bytes"); ok {
			return n, nil
		}
	}
	return defaultLimit, nil
}

// transactionalID names the producer of a source: a run publishing the same
// file again fences an earlier run of it that died with its transaction
// open, which aborts that transaction at once instead of at its timeout.
func transactionalID(dataset, source string) string {
	var tag []byte
	if source == "stdin" {
		tag = make([]byte, 8)
		_, _ = rand.Read(tag)
	} else {
		sum := sha256.Sum256([]byte(source))
		tag = sum[:8]
	}
	return "datamill-produce-" + dataset + "-" + hex.EncodeToString(tag)
}

// publish produces records to topic, keyed, with codec's header, in one
// transaction, and commits it. On any error the transaction is aborted, so nothing of it is
// ever visible to read_committed consumers.
func publish(ctx context.Context, kcfg kafka.Config, reg *serde.Registry, codec *serde.Codec[map[string]any], topic string, records []record, txnID string, timeout time.Duration, limit int) error {
	keyCodec, err := serde.NewKeyCodec(ctx, reg, topic)
	if err != nil {
		return fmt.Errorf("register the key schema of %s: %w; nothing was published", topic, err)
	}
	header := codec.AppendHeader(nil)
	recs := make([]*kgo.Record, len(records))
	for i, r := range records {
		copy(r.value, header)
		recs[i] = &kgo.Record{Topic: topic, Key: keyCodec.Append(nil, r.key), Value: r.value}
	}
	cl, err := kafka.NewClient(kcfg, zap.NewNop(),
		kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(timeout),
		kgo.ProducerBatchMaxBytes(int32(max(limit, 512))), // #nosec G115 -- messageLimit caps it at maxLimit
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	start := time.Now()
	// hint says what to do about an error that comes from the
	// transaction's timeout.
	hint := func(err error) error {
		switch {
		case errors.Is(err, kerr.InvalidTransactionTimeout):
			return fmt.Errorf("%w: lower --transaction-timeout (%v)", err, timeout)
		case time.Since(start) >= timeout:
			return fmt.Errorf("%w: the transaction was open longer than --transaction-timeout (%v), after which the broker aborts it; pass a longer one or split the input", err, timeout)
		}
		return err
	}
	if err := cl.BeginTransaction(); err != nil {
		return fmt.Errorf("begin a transaction on %s: %w; nothing was published", topic, hint(err))
	}
	// Ending a transaction is not cut short: an interrupted end leaves its
	// outcome unknown.
	end, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	abort := func(err error) error {
		aerr := cl.AbortBufferedRecords(end)
		if aerr == nil {
			aerr = cl.EndTransaction(end, kgo.TryAbort)
		}
		if aerr != nil {
			// Unended, the transaction is aborted by the broker at its
			// timeout: it never becomes visible.
			return fmt.Errorf("%w; nothing was published (the transaction is aborted within %v)", err, timeout)
		}
		return fmt.Errorf("%w; the transaction was aborted, nothing was published", err)
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return abort(hint(fmt.Errorf("publish %d records to %s: %w", len(recs), topic, err)))
	}
	if err := cl.EndTransaction(end, kgo.TryCommit); err != nil {
		err = hint(err)
		var kerror *kerr.Error
		if errors.As(err, &kerror) && kerror != kerr.UnknownServerError {
			// The broker refused the commit: aborting is safe.
			return abort(fmt.Errorf("commit %d records to %s: %w", len(recs), topic, err))
		}
		_ = cl.EndTransaction(end, kgo.TryAbort)
		return fmt.Errorf("commit %d records to %s: %w; whether the commit went through is unknown: publishing the same file again is safe, its records keep their event ids", len(recs), topic, err)
	}
	return nil
}

// peek returns the first bytes of r without consuming them.
func peek(r *bufio.Reader) []byte {
	b, _ := r.Peek(512)
	return b
}

// openCatalog opens the datasets the environment names: the built-in ones
// and DATASETS_DIR's, or those of SCHEMAS_DIR, its deprecated name, with a
// warning on stderr.
func openCatalog(env map[string]string, stderr io.Writer) (*schemas.Catalog, error) {
	cfg := schemas.Config{Dir: env["DATASETS_DIR"], SchemasDir: env["SCHEMAS_DIR"]}
	if _, variable, err := cfg.Directory(); err == nil && variable == "SCHEMAS_DIR" {
		fmt.Fprintln(stderr, "warning: SCHEMAS_DIR is deprecated: name the directory in DATASETS_DIR")
	}
	return cfg.Open()
}

// newDataset prepares a dataset of cat for reading sources.
func newDataset(cat *schemas.Catalog, name string) (*ingest.Dataset, avro.Schema, error) {
	d, err := cat.Dataset(name)
	if err != nil {
		return nil, nil, err
	}
	ds, err := ingest.NewDataset(name, d.Raw, d.Key)
	return ds, d.Raw, err
}

// datasetKey is the key field of a dataset of cat, as its clean schema
// declares it.
func datasetKey(cat *schemas.Catalog, name string) (string, error) {
	d, err := cat.Dataset(name)
	if err != nil {
		return "", err
	}
	return d.Key, nil
}
