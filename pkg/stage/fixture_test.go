package stage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
)

// item is the record the test stages consume and produce.
type item struct {
	ID      int64  `avro:"id"`
	Payload string `avro:"payload"`
}

var itemSchema = avro.MustParse(`{"type":"record","name":"Item","namespace":"datamill.test","fields":[
	{"name":"id","type":"long"},{"name":"payload","type":"string"}]}`)

// fixture is one stage's topics, codecs and clients on the test's broker
// and registry.
type fixture struct {
	kcfg              kafka.Config
	registryURL       string
	in, out, dlq      string
	inCodec, outCodec *serde.Codec[item]
	dlqCodec          *serde.Codec[schemas.DeadLetter]
	client            *kgo.Client
	admin             *kadm.Client
	partitions        int32
	instances         atomic.Int32
	log               *zap.Logger
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureOn(t, testkit.Kafka(t))
}

// newFixtureOn is newFixture on the broker of kcfg, the admin's settings.
func newFixtureOn(t *testing.T, kcfg kafka.Config) *fixture {
	t.Helper()
	f := &fixture{partitions: 3}
	f.kcfg = kcfg
	f.kcfg.Partitions = f.partitions
	f.registryURL = testkit.Registry(t)
	f.in, f.out, f.dlq = testkit.Name(t, "in"), testkit.Name(t, "out"), testkit.Name(t, "dlq")
	f.log = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	f.connect(t)
	if err := kafka.EnsureTopics(t.Context(), f.client, f.kcfg, f.in, f.out, f.dlq); err != nil {
		t.Fatal(err)
	}
	return f
}

// connect builds the fixture's codecs and clients (also in a child process).
func (f *fixture) connect(t *testing.T) {
	if err := f.dial(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.client.Close)
}

func (f *fixture) dial() error {
	ctx := context.Background()
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: f.registryURL})
	if err != nil {
		return err
	}
	if f.inCodec, err = serde.NewCodec[item](ctx, reg, f.in, itemSchema); err != nil {
		return err
	}
	if f.outCodec, err = serde.NewCodec[item](ctx, reg, f.out, itemSchema); err != nil {
		return err
	}
	if f.dlqCodec, err = serde.NewCodec[schemas.DeadLetter](ctx, reg, f.dlq, schemas.MustSchema("deadletter")); err != nil {
		return err
	}
	if f.client, err = kafka.NewClient(f.kcfg, f.log); err != nil {
		return err
	}
	f.admin = kadm.NewClient(f.client)
	return nil
}

func decodeDeadLetter(f *fixture, b []byte) (schemas.DeadLetter, error) {
	var dl schemas.DeadLetter
	err := f.dlqCodec.Decode(b, &dl)
	return dl, err
}

func testConfig(instance string) Config {
	return Config{
		BatchMax: 50, DLQMaxRate: 0.5, DLQWindow: 1000, DLQMinRecords: 100, DLQOnFlood: FloodAlert,
		Retries: 3, RetryBackoff: 10 * time.Millisecond, MaxPause: 200 * time.Millisecond,
		SessionTimeout: 6 * time.Second, TransactionTimeout: 10 * time.Second, InstanceID: instance,
	}
}

// spec returns the stage spec of the fixture with handler h.
func (f *fixture) spec(h Handler[item, item]) Spec[item, item] {
	return Spec[item, item]{
		Stage: "tester", Dataset: "items", Input: f.in, Output: f.out, DeadLetters: f.dlq,
		Group:   f.in + ".group",
		Decoder: f.inCodec, Encoder: f.outCodec, DeadLetterEncoder: f.dlqCodec,
		Handler: h,
	}
}

// runner builds a runner with a fresh instance id and its own metrics.
func (f *fixture) runner(t testing.TB, spec Spec[item, item], cfg Config) *Runner[item, item] {
	if cfg.InstanceID == "" {
		cfg.InstanceID = fmt.Sprintf("i%d", f.instances.Add(1))
	}
	r, err := NewRunner(spec, cfg, f.kcfg, f.log, NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// start runs r until the returned stop function is called; stop returns
// Run's error.
func start(t *testing.T, r interface{ Run(context.Context) error }) (stop func() error) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var stopped bool
	var err error
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case err = <-done:
			case <-time.After(60 * time.Second):
				t.Errorf("runner did not stop within 60 s of its context ending")
			}
		}
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// produce writes items to the input topic, keyed by id.
func (f *fixture) produce(t *testing.T, items ...item) {
	t.Helper()
	recs := make([]*kgo.Record, 0, len(items))
	for i := range items {
		b, err := f.inCodec.Encode(&items[i])
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: f.in, Key: []byte(fmt.Sprint(items[i].ID)), Value: b})
	}
	if err := f.client.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatalf("produce %d inputs: %v", len(recs), err)
	}
}

// produceRaw writes a value that is not a valid encoded item.
func (f *fixture) produceRaw(t *testing.T, key string, value []byte) {
	t.Helper()
	if err := f.client.ProduceSync(t.Context(), &kgo.Record{Topic: f.in, Key: []byte(key), Value: value}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// items returns n items with ids from first.
func items(first, n int) []item {
	out := make([]item, n)
	for i := range out {
		out[i] = item{ID: int64(first + i), Payload: fmt.Sprintf("p%d", first+i)}
	}
	return out
}

// echo is the test transform: payload gets a "!" appended; payload
// "poison" is rejected.
func echo(_ context.Context, m Message[item]) ([]Output[item], error) {
	if m.Value.Payload == "poison" {
		return nil, Reject("payload: poison", "id: cursed")
	}
	return []Output[item]{{Key: m.Key, Value: item{ID: m.Value.ID, Payload: m.Value.Payload + "!"}}}, nil
}

// committed returns the group's committed offset per input partition.
func (f *fixture) committed(t testing.TB, group string) map[int32]int64 {
	resp, err := f.admin.FetchOffsets(context.Background(), group)
	if errors.Is(err, kerr.GroupIDNotFound) || kerr.IsRetriable(err) {
		// No group yet, or its coordinator is still loading (a fresh
		// broker): nothing committed that the test can see.
		return map[int32]int64{}
	}
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	out := map[int32]int64{}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Topic == f.in && o.Err == nil {
			out[o.Partition] = o.At
		}
	})
	return out
}

// committedTotal sums the group's committed offsets, asking again until
// they add up to want or within passes. A real broker writes a
// transaction's offset commit after EndTxn has answered, so a fetch
// right after a commit may still see the previous offsets.
func (f *fixture) committedTotal(t *testing.T, group string, want int64, within time.Duration) int64 {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var total int64
		for _, off := range f.committed(t, group) {
			total += off
		}
		if total == want || time.Now().After(deadline) {
			return total
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitDrained waits until the group has committed the end of every input
// partition: every input is then processed and its outputs committed.
func (f *fixture) waitDrained(t *testing.T, group string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ends, err := f.admin.ListEndOffsets(t.Context(), f.in)
		if err != nil {
			t.Fatal(err)
		}
		got := f.committed(t, group)
		done := true
		ends.Each(func(o kadm.ListedOffset) {
			if got[o.Partition] != o.Offset {
				done = false
			}
		})
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s did not drain %s within %v: committed %v", group, f.in, within, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const sentinel = "datamill.test.sentinel"

// readCommitted returns every committed record of topic, as a
// read_committed consumer sees it. It appends a sentinel to each partition
// and reads until it has seen them all, so it returns exactly what was
// committed before the call.
func (f *fixture) readCommitted(t *testing.T, topic string) []*kgo.Record {
	t.Helper()
	for p := range f.partitions {
		rec := &kgo.Record{Topic: topic, Partition: p, Value: []byte(sentinel)}
		cl, err := kafka.NewClient(f.kcfg, f.log, kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		err = cl.ProduceSync(t.Context(), rec).FirstErr()
		cl.Close()
		if err != nil {
			t.Fatalf("produce sentinel to %s/%d: %v", topic, p, err)
		}
	}
	cl, err := kafka.NewClient(f.kcfg, f.log,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var out []*kgo.Record
	seen := map[int32]bool{}
	for len(seen) < int(f.partitions) {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: saw the sentinels of partitions %v only: %v", topic, seen, ctx.Err())
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if string(r.Value) == sentinel {
				seen[r.Partition] = true
				return
			}
			if !seen[r.Partition] {
				out = append(out, r)
			}
		})
	}
	return out
}

// decodeOutputs decodes output records and fails on any id seen twice.
func (f *fixture) decodeOutputs(t *testing.T, recs []*kgo.Record) map[int64]item {
	t.Helper()
	got := map[int64]item{}
	for _, r := range recs {
		var v item
		if err := f.outCodec.Decode(r.Value, &v); err != nil {
			t.Fatalf("decode output at %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
		}
		if _, dup := got[v.ID]; dup {
			t.Errorf("output id %d appears twice", v.ID)
		}
		got[v.ID] = v
	}
	return got
}

// wantEchoed checks that outputs hold exactly the echo of ids [0, n) minus
// skip.
func wantEchoed(t *testing.T, got map[int64]item, n int, skip map[int64]bool) {
	t.Helper()
	var missing []int64
	for id := range int64(n) {
		if skip[id] {
			if _, ok := got[id]; ok {
				t.Errorf("id %d should not be in the output", id)
			}
			continue
		}
		v, ok := got[id]
		if !ok {
			missing = append(missing, id)
			continue
		}
		if want := fmt.Sprintf("p%d!", id); v.Payload != want {
			t.Errorf("id %d payload = %q, want %q", id, v.Payload, want)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d ids missing from the output, first %v", len(missing), missing[:min(len(missing), 10)])
	}
	if extra := len(got) - (n - len(skip)); extra > 0 {
		t.Errorf("%d unexpected ids in the output", extra)
	}
}

// errFlaky is the transient failure of a flaky test dependency.
var errFlaky = errors.New("dependency unavailable")

func headers(r *kgo.Record) map[string]string {
	h := map[string]string{}
	for _, kv := range r.Headers {
		h[kv.Key] = string(kv.Value)
	}
	return h
}

func contains(s []string, sub string) bool {
	for _, x := range s {
		if strings.Contains(x, sub) {
			return true
		}
	}
	return false
}
