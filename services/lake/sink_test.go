package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/lake"
	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/services/lake/migrations"
)

// harness is a sink's world in a test: an in-process broker, registry,
// S3 and a throwaway database with the manifest.
type harness struct {
	kafka   kafka.Config
	lake    lake.Config
	store   *lake.Store
	db      *pgxpool.Pool
	codec   *serde.Codec[map[string]any]
	topic   string
	produce *kgo.Client
	// registryURL and databaseURL reach the registry and the database.
	registryURL, databaseURL string
	regs                     map[*sink]*prometheus.Registry // each sink's metrics
}

func newHarness(t testing.TB, partitions int32, encrypted bool) *harness {
	t.Helper()
	ctx := t.Context()
	h := &harness{
		kafka:       testkit.Kafka(t),
		lake:        startS3(t, encrypted),
		topic:       kafka.Topic(kafka.Raw, "users"),
		registryURL: testkit.Registry(t), databaseURL: testkit.Postgres(t),
		regs: map[*sink]*prometheus.Registry{},
	}
	h.kafka.Partitions = partitions
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: h.registryURL})
	if err != nil {
		t.Fatal(err)
	}
	d, err := schemas.BuiltIn().Dataset("users")
	if err != nil {
		t.Fatal(err)
	}
	if h.codec, err = serde.NewCodec[map[string]any](ctx, reg, h.topic, d.Raw); err != nil {
		t.Fatal(err)
	}
	if h.db, err = pg.Open(ctx, pg.Config{URL: h.databaseURL, MaxConns: 4}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.db.Close)
	if _, err := pg.Migrate(ctx, h.db, "lake", migrations.FS); err != nil {
		t.Fatal(err)
	}
	if h.store, err = lake.OpenStore(ctx, h.lake); err != nil {
		t.Fatal(err)
	}
	if h.produce, err = kafka.NewClient(h.kafka, zap.NewNop(), kgo.RecordPartitioner(kgo.ManualPartitioner())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.produce.Close)
	if err := kafka.EnsureTopics(ctx, h.produce, h.kafka, h.topic); err != nil {
		t.Fatal(err)
	}
	return h
}

// sink returns a sink of the users dataset in group with cfg's limits.
func (h *harness) sink(t testing.TB, group string, cfg sinkConfig) *sink {
	t.Helper()
	reg := prometheus.NewRegistry()
	s := &sink{
		dataset: "users", group: group, cfg: cfg, kafka: h.kafka, prefix: h.lake.Prefix,
		store: h.store, db: h.db, codec: h.codec, maxBuffer: cfg.MaxBuffer, writtenBy: "test",
		log:     zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
		metrics: newMetrics(reg),
	}
	h.regs[s] = reg
	return s
}

// metric returns the value of the counter or gauge name of labels among
// the sink's metrics, 0 when it has none.
func (h *harness) metric(t testing.TB, s *sink, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := h.regs[s].Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// limits are a test's sink limits: small objects, a quick idle cut.
func limits(records int) sinkConfig {
	return sinkConfig{
		MaxRecords: records, MaxBytes: 16 << 20, FlushInterval: 100 * time.Millisecond,
		MaxBuffer: 32 << 20, SessionTimeout: 2 * time.Second,
	}
}

// running is a sink's run in a goroutine.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func start(t testing.TB, s *sink) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.run(ctx) }()
	t.Cleanup(func() { _ = r.stop(t) })
	return r
}

// stop ends the run and returns its error.
func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

// wait returns the run's error once it returned by itself.
func (r *running) wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("the sink did not return within 60 s")
		return nil
	}
}

// produced is what a test produced: the event ids and keys by partition
// and offset.
type produced map[int32]map[int64]string

// produceRecords produces records from to from+n-1 to each of partitions,
// the ith at at(i) (Kafka timestamp), keyed and with event id p-i, and
// returns them.
func (h *harness) produceRecords(t testing.TB, partitions int32, from, n int, at func(i int) time.Time) produced {
	t.Helper()
	out := produced{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for p := range partitions {
		out[p] = map[int64]string{}
	}
	for p := range partitions {
		for i := from; i < from+n; i++ {
			id := fmt.Sprintf("%d-%d", p, i)
			v, err := h.codec.Encode(&map[string]any{
				"id": id, "city": strings.Repeat("x", 100), "event_id": id, "source": "test", "ingested_at": at(i),
			})
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			h.produce.Produce(t.Context(), &kgo.Record{Topic: h.topic, Partition: p, Key: []byte(id), Value: v, Timestamp: at(i)},
				func(r *kgo.Record, err error) {
					defer wg.Done()
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, err)
						return
					}
					out[r.Partition][r.Offset] = string(r.Key)
				})
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("produce: %v", err)
	}
	return out
}

// awaitArchived waits until the manifest reaches the end of every
// partition of want.
func (h *harness) awaitArchived(t testing.TB, want produced) {
	t.Helper()
	ends := map[int32]int64{}
	for p, offsets := range want {
		ends[p] = slices.Max(slicesKeys(offsets)) + 1
	}
	h.awaitEnds(t, ends)
}

// awaitEnds waits until the manifest of each partition of ends reaches
// its offset.
func (h *harness) awaitEnds(t testing.TB, ends map[int32]int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	id := h.topicID(t)
	for {
		missing := ""
		for p, want := range ends {
			end, _, _, err := resume(t.Context(), h.db, h.topic, id, p)
			if err != nil {
				t.Fatal(err)
			}
			if end < want {
				missing = fmt.Sprintf("partition %d archived up to %d, want %d", p, end, want)
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not archived within 60 s: %s", missing)
		}
		time.Sleep(50 * time.Millisecond) // a poll interval, under a deadline
	}
}

// topicID returns the topic id of the harness's topic, in hex.
func (h *harness) topicID(t testing.TB) string {
	t.Helper()
	details, err := kadm.NewClient(h.produce).ListTopics(t.Context(), h.topic)
	if err == nil {
		err = details.Error()
	}
	if err != nil {
		t.Fatalf("topic id of %s: %v", h.topic, err)
	}
	id := details[h.topic].ID
	return hex.EncodeToString(id[:])
}

func slicesKeys[K comparable, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// verify reads the whole lake back and checks that every produced record
// is in exactly one object, under a key of its hour, that each partition's
// objects tile it from its first offset without gap or overlap, and that
// the manifest lists exactly the objects stored. It returns the number of
// objects stored.
func (h *harness) verify(t testing.TB, want produced) int {
	t.Helper()
	ctx := t.Context()
	seen := map[int32]map[int64]int{}
	type span struct{ start, end int64 }
	spans := map[int32][]span{}
	stored := map[string]lake.Meta{}
	for obj, err := range h.store.List(ctx, lake.DatasetPrefix(h.lake.Prefix, "users")) {
		if err != nil {
			t.Fatalf("list the lake: %v", err)
		}
		r, size, err := h.store.Get(ctx, obj.Key)
		if err != nil {
			t.Fatalf("get %s: %v", obj.Key, err)
		}
		f, err := lake.Open(r, size)
		if err != nil {
			t.Fatalf("open %s: %v", obj.Key, err)
		}
		m := f.Meta
		stored[obj.Key] = m
		spans[m.Partition] = append(spans[m.Partition], span{m.Start, m.End})
		n := int64(0)
		for row, err := range f.Rows() {
			if err != nil {
				t.Fatalf("rows of %s: %v", obj.Key, err)
			}
			n++
			e := row.Envelope
			if e.Offset < m.Start || e.Offset >= m.End {
				t.Errorf("%s [%d, %d) holds offset %d", obj.Key, m.Start, m.End, e.Offset)
			}
			if wantKey := lake.Key(h.lake.Prefix, "users", h.topic, m.TopicID, m.Partition, m.Start, e.Timestamp); wantKey != obj.Key {
				t.Errorf("record %d/%d at %s is in %s, want %s (its hour)", e.Partition, e.Offset, e.Timestamp, obj.Key, wantKey)
			}
			id := want[e.Partition][e.Offset]
			if got := string(e.Key); got != id {
				t.Errorf("record %d/%d: key %q, want %q", e.Partition, e.Offset, got, id)
			}
			if got := fmt.Sprint(row.Record["event_id"]); got != id {
				t.Errorf("record %d/%d: event_id %q, want %q", e.Partition, e.Offset, got, id)
			}
			if e.SchemaID != h.codec.ID() {
				t.Errorf("record %d/%d: schema id %d, want %d", e.Partition, e.Offset, e.SchemaID, h.codec.ID())
			}
			if seen[e.Partition] == nil {
				seen[e.Partition] = map[int64]int{}
			}
			seen[e.Partition][e.Offset]++
		}
		if n != m.Records {
			t.Errorf("%s: %d rows, its metadata says %d", obj.Key, n, m.Records)
		}
	}
	for p, offsets := range want {
		for off := range offsets {
			if c := seen[p][off]; c != 1 {
				t.Errorf("record %d/%d is in %d objects, want 1", p, off, c)
			}
		}
		for off, c := range seen[p] {
			if _, ok := offsets[off]; !ok {
				t.Errorf("record %d/%d (%d times) was never produced", p, off, c)
			}
		}
		s := spans[p]
		slices.SortFunc(s, func(a, b span) int { return int(a.start - b.start) })
		first, last := slices.Min(slicesKeys(offsets)), slices.Max(slicesKeys(offsets))
		if len(s) == 0 || s[0].start != first || s[len(s)-1].end != last+1 {
			t.Errorf("partition %d: objects %v, want them to tile [%d, %d)", p, s, first, last+1)
			continue
		}
		for i := 1; i < len(s); i++ {
			if s[i].start != s[i-1].end {
				t.Errorf("partition %d: object [%d, %d) follows [%d, %d): a gap or an overlap", p, s[i].start, s[i].end, s[i-1].start, s[i-1].end)
			}
		}
	}
	rows, err := h.db.Query(ctx, `select key, start_offset, end_offset, records from lake_objects`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	listed := 0
	for rows.Next() {
		var key string
		var start, end, records int64
		if err := rows.Scan(&key, &start, &end, &records); err != nil {
			t.Fatal(err)
		}
		listed++
		m, ok := stored[key]
		if !ok {
			t.Errorf("the manifest lists %s, which is not stored", key)
			continue
		}
		if m.Start != start || m.End != end || m.Records != records {
			t.Errorf("manifest %s: [%d, %d) %d records, the object says [%d, %d) %d", key, start, end, records, m.Start, m.End, m.Records)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if listed != len(stored) {
		t.Errorf("the manifest lists %d objects, the lake stores %d", listed, len(stored))
	}
	return len(stored)
}

// across returns timestamps from 10:50 UTC a minute apart: records 10
// and up lie in the next hour.
func across(i int) time.Time {
	return time.Date(2026, 3, 1, 10, 50, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)
}

func objects(s *sink, outcome string) float64 {
	return testutil.ToFloat64(s.metrics.objects.WithLabelValues("users", outcome))
}

func TestArchivesEveryRecordOnce(t *testing.T) {
	h := newHarness(t, 4, true)
	want := h.produceRecords(t, 4, 0, 25, across)
	cfg := limits(7)
	cfg.FlushInterval = time.Hour // no idle cut: the tails wait for the shutdown
	cfg.SpoolDir = t.TempDir()
	s := h.sink(t, testkit.Name(t, "lake"), cfg)
	r := start(t, s)
	h.awaitEnds(t, map[int32]int64{0: 24, 1: 24, 2: 24, 3: 24})
	if err := r.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	h.verify(t, want)
	// 25 records a partition, 10 before 11:00 and 15 after, 7 at most
	// an object: 7+3 and 7+7+1 (the last cut at shutdown), five objects
	// a partition.
	if got := objects(s, "written"); got != 20 {
		t.Errorf("objects written: %v, want 20 (cut at 7 records and at the hour)", got)
	}
	if got := objects(s, "adopted"); got != 0 {
		t.Errorf("objects adopted: %v, want 0", got)
	}
	in := h.metric(t, s, "datamill_stage_records_in_total", map[string]string{"stage": stageName, "dataset": "users"})
	if in != 100 {
		t.Errorf("stage records in: %v, want 100", in)
	}
	if left, err := os.ReadDir(cfg.SpoolDir); err != nil || len(left) > 0 {
		t.Errorf("spool directory after the run: %v (%v), want it empty", left, err)
	}
}

func TestCrashLeavesEveryRecordInOneObject(t *testing.T) {
	crash := errors.New("crash")
	tests := map[string]struct {
		at func(f *faults, hook func(string) error)
		// crashed checks the crash left what it should.
		crashed     func(t *testing.T, h *harness, group string)
		wantAdopted float64
	}{
		// The object is stored, neither in the manifest nor committed:
		// the next run cuts from the same start, finds the key taken
		// and adopts the object, whatever its own cut.
		"between upload and manifest": {
			at: func(f *faults, h func(string) error) { f.afterUpload = h },
			crashed: func(t *testing.T, h *harness, _ string) {
				if stored, listed := h.count(t); stored != listed+1 {
					t.Fatalf("after the crash the lake stores %d objects and the manifest lists %d, want one unlisted", stored, listed)
				}
			},
			wantAdopted: 1,
		},
		// The manifest has the object, the group's offset is behind it:
		// the next run starts from the manifest.
		"between manifest and commit": {
			at: func(f *faults, h func(string) error) { f.afterManifest = h },
			crashed: func(t *testing.T, h *harness, group string) {
				if stored, listed := h.count(t); stored != listed {
					t.Fatalf("after the crash the lake stores %d objects and the manifest lists %d, want the same", stored, listed)
				}
				offsets, err := kadm.NewClient(h.produce).FetchOffsets(t.Context(), group)
				if err != nil {
					t.Fatal(err)
				}
				behind, id := false, h.topicID(t)
				for p := range int32(2) {
					end, _, _, err := resume(t.Context(), h.db, h.topic, id, p)
					if err != nil {
						t.Fatal(err)
					}
					if o, ok := offsets.Lookup(h.topic, p); !ok || o.At < end {
						behind = true
					}
				}
				if !behind {
					t.Fatal("after the crash every committed offset is the manifest's end, want one behind")
				}
			},
			wantAdopted: 0,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, 2, true)
			want := h.produceRecords(t, 2, 0, 30, across)
			group := testkit.Name(t, "lake")
			crashing := h.sink(t, group, limits(4))
			cuts := 0
			tc.at(&crashing.faults, func(string) error {
				if cuts++; cuts == 2 {
					return crash
				}
				return nil
			})
			if err := start(t, crashing).wait(t); !errors.Is(err, crash) {
				t.Fatalf("the crashing run returned %v, want the crash", err)
			}
			tc.crashed(t, h, group)
			// Another cut size: the adopted object does not end where
			// the fresh run would have cut.
			fresh := h.sink(t, group, limits(6))
			r := start(t, fresh)
			h.awaitArchived(t, want)
			if err := r.stop(t); err != nil {
				t.Fatalf("run: %v", err)
			}
			h.verify(t, want)
			if got := objects(fresh, "adopted"); got != tc.wantAdopted {
				t.Errorf("objects adopted by the fresh run: %v, want %v", got, tc.wantAdopted)
			}
		})
	}
}

// count returns how many objects the lake stores and the manifest lists.
func (h *harness) count(t testing.TB) (stored, listed int) {
	t.Helper()
	for _, err := range h.store.List(t.Context(), lake.DatasetPrefix(h.lake.Prefix, "users")) {
		if err != nil {
			t.Fatal(err)
		}
		stored++
	}
	if err := h.db.QueryRow(t.Context(), `select count(*) from lake_objects`).Scan(&listed); err != nil {
		t.Fatal(err)
	}
	return stored, listed
}

func TestTwoOwnersArchiveEveryRecordOnce(t *testing.T) {
	tests := map[string]struct {
		sameGroup bool
	}{
		// A rebalance: the second member takes partitions from the
		// first, which then leaves and hands them all over.
		"one group, a member leaves midway": {sameGroup: true},
		// Every partition owned twice at once, as when an owner lost its
		// partitions without noticing: the sinks race for every key.
		"two groups, every partition owned twice": {sameGroup: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, 4, true)
			want := h.produceRecords(t, 4, 0, 20, across)
			groupA, groupB := testkit.Name(t, "lake"), testkit.Name(t, "lake")
			if tc.sameGroup {
				groupB = groupA
			}
			cfgA, cfgB := limits(5), limits(5)
			cfgB.FlushInterval = 30 * time.Millisecond // cuts elsewhere than A
			cfgB.MaxBuffer = 3000
			a, b := h.sink(t, groupA, cfgA), h.sink(t, groupB, cfgB)
			ra, rb := start(t, a), start(t, b)
			more := h.produceRecords(t, 4, 20, 20, across)
			for p, offsets := range more {
				for o, id := range offsets {
					want[p][o] = id
				}
			}
			if tc.sameGroup {
				h.awaitEnds(t, map[int32]int64{0: 10, 1: 10, 2: 10, 3: 10})
				if err := ra.stop(t); err != nil {
					t.Fatalf("run a: %v", err)
				}
			}
			h.awaitArchived(t, want)
			for _, r := range []*running{ra, rb} {
				if err := r.stop(t); err != nil {
					t.Fatalf("run: %v", err)
				}
			}
			stored := h.verify(t, want)
			if written := objects(a, "written") + objects(b, "written"); written != float64(stored) {
				t.Errorf("the sinks wrote %v objects, the lake stores %d", written, stored)
			}
		})
	}
}

func TestUnencryptedUploadStopsTheSink(t *testing.T) {
	h := newHarness(t, 1, false)
	h.produceRecords(t, 1, 0, 5, across)
	err := start(t, h.sink(t, testkit.Name(t, "lake"), limits(3))).wait(t)
	if !errors.Is(err, lake.ErrNotEncrypted) {
		t.Fatalf("run returned %v, want %v", err, lake.ErrNotEncrypted)
	}
	if stored, listed := h.count(t); stored != 0 || listed != 0 {
		t.Errorf("after the refused upload the lake stores %d objects and the manifest lists %d, want none", stored, listed)
	}
}

func TestBufferedBytesStayUnderTheCap(t *testing.T) {
	h := newHarness(t, 64, true)
	want := h.produceRecords(t, 64, 0, 10, across)
	cfg := limits(1000)
	cfg.MaxBuffer = 4096 // about three partitions. ten records
	s := h.sink(t, testkit.Name(t, "lake"), cfg)
	r := start(t, s)
	h.awaitArchived(t, want)
	if err := r.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	h.verify(t, want)
	if s.peak > cfg.MaxBuffer || s.peak == 0 {
		t.Errorf("at most %d bytes buffered, want some and at most LAKE_MAX_BUFFER=%d", s.peak, cfg.MaxBuffer)
	}
	if got := h.metric(t, s, "datamill_lake_buffered_bytes", nil); got != 0 {
		t.Errorf("buffered bytes after shutdown: %v, want 0", got)
	}
}

func TestUndecodableRecordIsLeftOutOfItsObject(t *testing.T) {
	h := newHarness(t, 1, true)
	want := h.produceRecords(t, 1, 0, 3, across)
	bad := &kgo.Record{Topic: h.topic, Partition: 0, Key: []byte("bad"), Value: []byte("not avro")}
	if err := h.produce.ProduceSync(t.Context(), bad).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for o, id := range h.produceRecords(t, 1, 3, 3, across)[0] {
		want[0][o] = id
	}
	s := h.sink(t, testkit.Name(t, "lake"), limits(100))
	r := start(t, s)
	h.awaitArchived(t, want)
	if err := r.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	// The objects tile [0, 7), the bad record's offset 3 included, and
	// hold the six good records once.
	h.verify(t, want)
	if got := h.metric(t, s, "datamill_lake_records_skipped_total", map[string]string{"reason": "undecodable"}); got != 1 {
		t.Errorf("records skipped: %v, want 1", got)
	}
}

func TestTransactionalTopicTiles(t *testing.T) {
	h := newHarness(t, 1, true)
	txn, err := kafka.NewClient(h.kafka, zap.NewNop(), kgo.TransactionalID(testkit.Name(t, "txn")),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	want := produced{0: {}}
	// Committed, aborted, committed, committed: markers and aborted
	// records take offsets the sink never reads.
	for n, commit := range []bool{true, false, true, true} {
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		var recs []*kgo.Record
		for i := range 4 {
			id := fmt.Sprintf("0-%d", n*4+i)
			v, err := h.codec.Encode(&map[string]any{"id": id, "event_id": id, "source": "test", "ingested_at": across(n*4 + i)})
			if err != nil {
				t.Fatal(err)
			}
			r := &kgo.Record{Topic: h.topic, Partition: 0, Key: []byte(id), Value: v, Timestamp: across(n*4 + i)}
			if err := txn.ProduceSync(t.Context(), r).FirstErr(); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, r)
		}
		if err := txn.EndTransaction(t.Context(), kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
		if commit {
			for _, r := range recs {
				want[0][r.Offset] = string(r.Key)
			}
		}
	}
	s := h.sink(t, testkit.Name(t, "lake"), limits(3))
	r := start(t, s)
	h.awaitArchived(t, want)
	if err := r.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	// Every committed record once, none of the aborted, and the
	// objects' ranges tile the partition across markers and aborted
	// records.
	h.verify(t, want)
}

// recreate deletes the harness's topic and creates it again: same name, a
// new topic id, offsets from 0. The producer is a new client, the old one
// knowing the old topic.
func (h *harness) recreate(t testing.TB) {
	t.Helper()
	ctx := t.Context()
	resp, err := kadm.NewClient(h.produce).DeleteTopics(ctx, h.topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("delete %s: %v", h.topic, err)
	}
	h.produce.Close()
	if h.produce, err = kafka.NewClient(h.kafka, zap.NewNop(), kgo.RecordPartitioner(kgo.ManualPartitioner())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.produce.Close)
	if err := kafka.EnsureTopics(ctx, h.produce, h.kafka, h.topic); err != nil {
		t.Fatalf("create %s again: %v", h.topic, err)
	}
}

// eventsStored reads the whole lake back and counts the rows of each
// event id; it returns the objects by key with their metadata.
func (h *harness) eventsStored(t testing.TB) (map[string]int, map[string]lake.Meta) {
	t.Helper()
	ctx := t.Context()
	events, metas := map[string]int{}, map[string]lake.Meta{}
	for obj, err := range h.store.List(ctx, lake.DatasetPrefix(h.lake.Prefix, "users")) {
		if err != nil {
			t.Fatalf("list the lake: %v", err)
		}
		r, size, err := h.store.Get(ctx, obj.Key)
		if err != nil {
			t.Fatalf("get %s: %v", obj.Key, err)
		}
		f, err := lake.Open(r, size)
		if err != nil {
			t.Fatalf("open %s: %v", obj.Key, err)
		}
		metas[obj.Key] = f.Meta
		for row, err := range f.Rows() {
			if err != nil {
				t.Fatalf("rows of %s: %v", obj.Key, err)
			}
			events[fmt.Sprint(row.Record["event_id"])]++
		}
	}
	return events, metas
}

// A topic deleted and created again numbers its offsets from 0: the sink
// must not resume it from the old topic's manifest nor adopt the old
// topic's objects whose keys the new cuts would take.
func TestRecreatedTopicIsArchivedBesideTheOldOne(t *testing.T) {
	h := newHarness(t, 2, true)
	group := testkit.Name(t, "lake")
	old := h.produceRecords(t, 2, 0, 25, across)
	r := start(t, h.sink(t, group, limits(7)))
	h.awaitArchived(t, old)
	if err := r.stop(t); err != nil {
		t.Fatalf("first run: %v", err)
	}
	_, before := h.eventsStored(t)

	h.recreate(t)
	// A broker that kept the group's offsets of the deleted topic (kfake
	// drops them) would have it at the old end: committed here, so that
	// the sink must not trust them.
	var stale kadm.Offsets
	for p := range int32(2) {
		stale.Add(kadm.Offset{Topic: h.topic, Partition: p, At: 25, LeaderEpoch: -1})
	}
	if err := kadm.NewClient(h.produce).CommitAllOffsets(t.Context(), group, stale); err != nil {
		t.Fatalf("commit the old offsets: %v", err)
	}
	// Offsets from 0 again, in the same hours as the old topic's: the
	// old objects' keys are where the new cuts would go without the
	// topic id. More records than the old topic had: an old committed
	// offset (25), were it trusted, would skip some.
	fresh := h.produceRecords(t, 2, 1000, 40, func(i int) time.Time { return across(i - 1000) })
	s := h.sink(t, group, limits(7))
	r = start(t, s)
	deadline := time.Now().Add(30 * time.Second)
	for {
		events, _ := h.eventsStored(t)
		missing := 0
		for _, offsets := range fresh {
			for _, id := range offsets {
				if events[id] == 0 {
					missing++
				}
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records of the new topic not archived within 30 s", missing)
		}
		time.Sleep(100 * time.Millisecond) // a poll interval, under a deadline
	}
	h.awaitArchived(t, fresh) // the manifest of the new topic id
	if err := r.stop(t); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if stored, listed := h.count(t); stored != listed {
		t.Errorf("the lake stores %d objects, the manifest lists %d", stored, listed)
	}
	events, after := h.eventsStored(t)
	for _, want := range []produced{old, fresh} {
		for p, offsets := range want {
			for o, id := range offsets {
				if events[id] != 1 {
					t.Errorf("record %d/%d (%s) is in %d rows, want 1", p, o, id, events[id])
				}
			}
		}
	}
	for key, m := range before {
		if got, ok := after[key]; !ok || got.Start != m.Start || got.End != m.End || got.Records != m.Records {
			t.Errorf("old object %s: %+v, want it untouched (%+v)", key, got, m)
		}
	}
	if got := objects(s, "adopted"); got != 0 {
		t.Errorf("objects adopted by the second run: %v, want 0", got)
	}
}

// The eco samples' stored bytes are the lake's: what storedBytes reports
// after a run is the size of every object the store lists.
func TestStoredBytesAreTheObjectsSizes(t *testing.T) {
	h := newHarness(t, 2, true)
	h.produceRecords(t, 2, 0, 30, across)
	cfg := limits(8)
	cfg.SpoolDir = t.TempDir()
	s := h.sink(t, testkit.Name(t, "lake"), cfg)
	r := start(t, s)
	h.awaitEnds(t, map[int32]int64{0: 29, 1: 29})
	if err := r.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	var listed int64
	for obj, err := range h.store.List(t.Context(), lake.DatasetPrefix(h.lake.Prefix, "users")) {
		if err != nil {
			t.Fatal(err)
		}
		listed += obj.Size
	}
	got, err := storedBytes(t.Context(), h.db)
	if err != nil {
		t.Fatal(err)
	}
	if listed == 0 || got != listed {
		t.Errorf("stored bytes %d, the objects listed hold %d", got, listed)
	}
}
