package main

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/lake"
	"github.com/datamill/datamill/pkg/logging"
	"github.com/datamill/datamill/pkg/progress"
	"github.com/datamill/datamill/pkg/serde"
)

const replayUsage = `usage: datamill replay <dataset> --from-lake [--since T] [--until T] [--dry-run]

Publishes the raw events of a dataset archived in the lake back into
raw.<dataset>: each with its original key, Kafka timestamp and event id, its
value encoded with the raw schema its object was written with, in offset
order per original partition. The cleaner and the loader recognise events
they have seen by their ids, so replaying history into a pipeline that
already holds part of it changes nothing of that part; into a fresh one, it
rebuilds the tables (after a rule change, say).

--since and --until select the events whose Kafka timestamp lies in
[since, until): RFC 3339 (2024-05-01T12:30:00Z), or YYYY-MM-DD, or
YYYY-MM-DDTHH, in UTC. Objects whose hour lies outside are not read.

The lake is read with the lake's variables (S3_ENDPOINT, S3_BUCKET,
S3_PREFIX, S3_ACCESS_KEY[_FILE], S3_SECRET_KEY[_FILE], S3_CA_FILE; a reader's
credentials are enough); KAFKA_BROKERS and SCHEMA_REGISTRY_URL default to
those of datamill dev, the other KAFKA_* variables (TLS, SASL) and the registry's basic auth are the
services'; DATASETS_DIR adds the user's datasets.

flags:`

// replayChunk is how many records replay publishes before it waits for
// their acknowledgements: what a produce error can leave unsure.
const replayChunk = 5000

func replay(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fromLake := fs.Bool("from-lake", false, "read the events from the lake (S3_*): the only source so far, required")
	since := fs.String("since", "", "replay events whose Kafka timestamp is at or after T")
	until := fs.String("until", "", "replay events whose Kafka timestamp is before T")
	dryRun := fs.Bool("dry-run", false, "count what would be replayed, publish nothing")
	fs.Usage = func() {
		fmt.Fprintln(stderr, replayUsage)
		fs.PrintDefaults()
	}
	dataset, rest := firstArg(args)
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
	if !*fromLake {
		return errors.New("replay: say where from: --from-lake (the only source so far)")
	}
	var w window
	var err error
	if w.since, err = parseWhen(*since); err != nil {
		return fmt.Errorf("replay: --since: %w", err)
	}
	if w.until, err = parseWhen(*until); err != nil {
		return fmt.Errorf("replay: --until: %w", err)
	}
	if !w.since.IsZero() && !w.until.IsZero() && !w.since.Before(w.until) {
		return fmt.Errorf("replay: --since %s is not before --until %s", *since, *until)
	}

	env := config.ToMap(environ)
	cat, err := openCatalog(env, stderr)
	if err != nil {
		return err
	}
	if _, err := cat.Dataset(dataset); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	lcfg, err := readLakeConfig(env)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	store, err := lake.OpenStore(ctx, lcfg)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	r := &replayer{store: store, dataset: dataset, topic: kafka.Topic(kafka.Raw, dataset), window: w}
	r.where = fmt.Sprintf("s3://%s/%s", lcfg.Bucket, lake.DatasetPrefix(lcfg.Prefix, dataset))
	objects, err := r.list(ctx, lcfg.Prefix)
	if err != nil {
		return err
	}

	if !*dryRun {
		kcfg, err := cliKafka(env)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		reg, err := cliRegistry(env)
		if err != nil {
			return err
		}
		// Idempotent (franz-go's default) and acknowledged by every
		// in-sync replica: a retried batch is never written twice.
		cl, err := kafka.NewClient(kcfg, zap.NewNop(), kgo.RequiredAcks(kgo.AllISRAcks()))
		if err != nil {
			return err
		}
		defer cl.Close()
		if _, err := kafka.Partitions(ctx, cl, r.topic); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		r.reg = reg
		r.codecs = map[string]*serde.Codec[map[string]any]{}
		r.publish = func(ctx context.Context, recs []*kgo.Record) error {
			return cl.ProduceSync(ctx, recs...).FirstErr()
		}
	}

	var total int64
	for _, o := range objects {
		total += o.size
	}
	// Progress: a bar on a terminal, else a line every 10 s on stderr.
	log, err := logging.New(stderr, "datamill-replay", "info", "console")
	if err != nil {
		return err
	}
	r.bar = progress.New(stderr, log, "replay "+dataset, total, 10*time.Second)
	err = r.run(ctx, objects)
	r.bar.Finish()
	r.report(stdout, *dryRun, err)
	return err
}

// readLakeConfig reads the lake's variables of env. Unlike a service, the
// CLI takes every one but S3_ENDPOINT as optional.
func readLakeConfig(env map[string]string) (lake.Config, error) {
	environ := make([]string, 0, len(env))
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	// Through pkg/config, the one reader of <VAR>_FILE secrets; it
	// validates too.
	cfg, err := config.Parse[lake.Config](environ)
	if err != nil {
		return cfg, fmt.Errorf("lake %w", err)
	}
	if !cfg.Enabled() {
		return cfg, errors.New("S3_ENDPOINT is not set: say where the lake is (S3_ENDPOINT, S3_BUCKET, S3_ACCESS_KEY, S3_SECRET_KEY or their _FILE variants)")
	}
	return cfg, nil
}

// window is the [since, until) of --since and --until; a zero end is open.
type window struct{ since, until time.Time }

// contains reports whether t lies in the window.
func (w window) contains(t time.Time) bool {
	return (w.since.IsZero() || !t.Before(w.since)) && (w.until.IsZero() || t.Before(w.until))
}

// meetsHour reports whether the hour starting at h shares a moment with
// the window.
func (w window) meetsHour(h time.Time) bool {
	return (w.since.IsZero() || h.Add(time.Hour).After(w.since)) && (w.until.IsZero() || h.Before(w.until))
}

func (w window) String() string {
	show := func(t time.Time, open string) string {
		if t.IsZero() {
			return open
		}
		return t.UTC().Format(time.RFC3339)
	}
	return "[" + show(w.since, "the start") + ", " + show(w.until, "the end") + ")"
}

// parseWhen reads a time of --since or --until: RFC 3339, YYYY-MM-DD or
// YYYY-MM-DDTHH (UTC). Empty is the zero time.
func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want RFC 3339 (2024-05-01T12:30:00Z), YYYY-MM-DD or YYYY-MM-DDTHH", s)
}

// archivedObject is one object of the dataset, as its key describes it.
type archivedObject struct {
	key       string
	size      int64
	topicID   string // the first 8 hex digits of the topic id
	partition int32
	start     int64
	hour      time.Time // dt and hour of the key
}

// parseObjectKey reads the topic id, partition, start offset and hour of a
// key lake.Key made:
// …/dt=YYYY-MM-DD/hour=HH/<topic>-<topic id, 8 hex>-<partition>-<start>.parquet.
func parseObjectKey(key string) (archivedObject, error) {
	o := archivedObject{key: key}
	dir, file := path.Split(key)
	base, ok := strings.CutSuffix(file, ".parquet")
	parts := strings.Split(base, "-")
	if !ok || len(parts) < 4 {
		return o, fmt.Errorf("object %s: not named <topic>-<topic id>-<partition>-<start>.parquet", key)
	}
	id := parts[len(parts)-3]
	if _, err := hex.DecodeString(id); err != nil || len(id) != 8 {
		return o, fmt.Errorf("object %s: %q is not the 8 hex digits of a topic id", key, id)
	}
	p, err1 := strconv.ParseInt(parts[len(parts)-2], 10, 32)
	start, err2 := strconv.ParseInt(parts[len(parts)-1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return o, fmt.Errorf("object %s: partition and start offset: %w", key, err)
	}
	o.topicID, o.partition, o.start = id, int32(p), start
	var dt, hour string
	for _, seg := range strings.Split(strings.Trim(dir, "/"), "/") {
		if v, ok := strings.CutPrefix(seg, "dt="); ok {
			dt = v
		}
		if v, ok := strings.CutPrefix(seg, "hour="); ok {
			hour = v
		}
	}
	if o.hour, err1 = time.Parse("2006-01-02T15", dt+"T"+hour); err1 != nil {
		return o, fmt.Errorf("object %s: no dt=YYYY-MM-DD/hour=HH in the key", key)
	}
	return o, nil
}

// replayer publishes a dataset's lake objects back into its raw topic.
type replayer struct {
	store   *lake.Store
	dataset string
	topic   string
	where   string // the dataset's place in the lake, for messages
	window  window
	bar     *progress.Bar

	// publish sends records and returns once every one is acknowledged;
	// nil in a dry run.
	publish func(ctx context.Context, recs []*kgo.Record) error
	reg     *serde.Registry
	codecs  map[string]*serde.Codec[map[string]any] // by the raw schema's canonical form

	objects, skipped int
	bytes            int64
	records          int64 // read in the window
	published        int64 // acknowledged
	parts            map[int32]*partReplay
}

// partReplay is what was replayed of one original partition.
type partReplay struct {
	records     int64
	first, last int64 // offsets of the first and last record replayed
	next        int64 // the offset after the last one read of topic
	topic       string
}

// list lists the dataset's objects in the order replay reads them:
// partition, then topic (a raw topic deleted and created again has a new
// topic id and numbers its offsets from 0 again; its objects are replayed
// after those of the topic before it, the one whose first object's hour is
// earlier), then start offset.
func (r *replayer) list(ctx context.Context, prefix string) ([]archivedObject, error) {
	var objects []archivedObject
	for o, err := range r.store.List(ctx, lake.DatasetPrefix(prefix, r.dataset)) {
		if err != nil {
			return nil, fmt.Errorf("replay: list %s: %w", r.where, err)
		}
		lo, err := parseObjectKey(o.Key)
		if err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		lo.size = o.Size
		objects = append(objects, lo)
	}
	if len(objects) == 0 {
		return nil, fmt.Errorf("replay: the lake holds nothing of %s: no object under %s", r.dataset, r.where)
	}
	type incarnation struct {
		id        string
		partition int32
	}
	began := map[incarnation]time.Time{}
	for _, o := range objects {
		in := incarnation{o.topicID, o.partition}
		if t, ok := began[in]; !ok || o.hour.Before(t) {
			began[in] = o.hour
		}
	}
	slices.SortFunc(objects, func(a, b archivedObject) int {
		ta, tb := began[incarnation{a.topicID, a.partition}], began[incarnation{b.topicID, b.partition}]
		return cmp.Or(cmp.Compare(a.partition, b.partition), ta.Compare(tb), cmp.Compare(a.topicID, b.topicID), cmp.Compare(a.start, b.start))
	})
	return objects, nil
}

// run replays objects, in their order. A produce error stops it: what was
// acknowledged before stays published, and the error says where it
// stopped.
func (r *replayer) run(ctx context.Context, objects []archivedObject) error {
	r.parts = map[int32]*partReplay{}
	var pending []*kgo.Record
	var pendingFrom map[int32]int64 // partition → first offset in pending
	flush := func() error {
		if len(pending) == 0 || r.publish == nil {
			pending = pending[:0]
			return nil
		}
		if err := r.publish(ctx, pending); err != nil {
			var at []string
			for _, p := range slices.Sorted(maps.Keys(pendingFrom)) {
				at = append(at, fmt.Sprintf("partition %d from offset %d", p, pendingFrom[p]))
			}
			return fmt.Errorf("replay: publish %d records to %s: %w; stopped there, the records before are published (unsure: %s); replaying again is safe, events keep their ids",
				len(pending), r.topic, err, strings.Join(at, ", "))
		}
		r.published += int64(len(pending))
		pending, pendingFrom = pending[:0], nil
		return nil
	}
	for _, o := range objects {
		if !r.window.meetsHour(o.hour) {
			r.skipped++
			r.bytes += o.size
			r.bar.Set(r.bytes, r.records)
			continue
		}
		err := r.object(ctx, o, func(rec *kgo.Record, partition int32, offset int64) error {
			if r.publish == nil {
				return nil
			}
			if pendingFrom == nil {
				pendingFrom = map[int32]int64{}
			}
			if _, ok := pendingFrom[partition]; !ok {
				pendingFrom[partition] = offset
			}
			pending = append(pending, rec)
			if len(pending) >= replayChunk {
				return flush()
			}
			return nil
		})
		if err != nil {
			return err
		}
		r.objects++
		r.bytes += o.size
		r.bar.Set(r.bytes, r.records)
	}
	return flush()
}

// object reads one object and hands each of its rows in the window, as a
// record of the raw topic, to emit.
func (r *replayer) object(ctx context.Context, o archivedObject, emit func(rec *kgo.Record, partition int32, offset int64) error) error {
	ra, size, err := r.store.Get(ctx, o.key)
	if err != nil {
		return fmt.Errorf("replay: get %s: %w", o.key, err)
	}
	f, err := lake.Open(ra, size)
	if err != nil {
		return fmt.Errorf("replay: open %s: %w", o.key, err)
	}
	var codec *serde.Codec[map[string]any]
	if r.publish != nil {
		if codec, err = r.codec(ctx, f.Meta.Schema); err != nil {
			return err
		}
	}
	for row, err := range f.Rows() {
		if err != nil {
			return fmt.Errorf("replay: read %s: %w", o.key, err)
		}
		e := row.Envelope
		p := r.parts[e.Partition]
		if p == nil {
			p = &partReplay{first: -1}
			r.parts[e.Partition] = p
		}
		if p.topic != o.topicID {
			// Another topic of the same name: its offsets start again.
			p.topic, p.next = o.topicID, 0
		}
		// The objects of a partition tile its offsets; should two ever
		// overlap, an offset already read is not published twice.
		if e.Offset < p.next {
			continue
		}
		p.next = e.Offset + 1
		if !r.window.contains(e.Timestamp) {
			continue
		}
		var rec *kgo.Record
		if codec != nil {
			value, err := codec.Encode(&row.Record)
			if err != nil {
				return fmt.Errorf("replay: %s offset %d/%d: %w", o.key, e.Partition, e.Offset, err)
			}
			rec = &kgo.Record{Topic: r.topic, Key: e.Key, Value: value, Timestamp: e.Timestamp}
		}
		if err := emit(rec, e.Partition, e.Offset); err != nil {
			return err
		}
		if p.first < 0 {
			p.first = e.Offset
		}
		p.last = e.Offset
		p.records++
		r.records++
	}
	return nil
}

// codec is the codec of raw.<ds> for an object's raw schema, registered
// once per schema.
func (r *replayer) codec(ctx context.Context, s avro.Schema) (*serde.Codec[map[string]any], error) {
	if s == nil {
		return nil, errors.New("replay: an object holds no raw schema")
	}
	fp := s.Fingerprint()
	canon := string(fp[:])
	if c, ok := r.codecs[canon]; ok {
		return c, nil
	}
	c, err := serde.NewCodec[map[string]any](ctx, r.reg, r.topic, s)
	if err != nil {
		return nil, fmt.Errorf("replay: register the raw schema of an object in %s: %w", r.topic, err)
	}
	r.codecs[canon] = c
	return c, nil
}

// report prints what was (or, in a dry run, would be) replayed; after
// err, what was published of what was read.
func (r *replayer) report(w io.Writer, dryRun bool, err error) {
	what := fmt.Sprintf("replayed %d", r.published)
	switch {
	case dryRun:
		what = fmt.Sprintf("would replay %d", r.records)
	case err != nil:
		what = fmt.Sprintf("stopped after publishing %d of %d", r.published, r.records)
	}
	fmt.Fprintf(w, "%s %s records in %s from %d objects of %s (%d outside the window not read) to %s\n",
		what, r.dataset, r.window, r.objects, r.where, r.skipped, r.topic)
	for _, p := range slices.Sorted(maps.Keys(r.parts)) {
		s := r.parts[p]
		if s.records == 0 {
			fmt.Fprintf(w, "  partition %d: 0 records\n", p)
			continue
		}
		fmt.Fprintf(w, "  partition %d: %d records, offsets %d to %d\n", p, s.records, s.first, s.last)
	}
}
