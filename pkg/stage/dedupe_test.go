package stage

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/hashfile"
	"github.com/datamill/datamill/pkg/kafka"
)

// digestSpec is the fixture's echo stage with a Digest: an output repeats
// when its payload does.
func (f *fixture) digestSpec(h Handler[item, item]) Spec[item, item] {
	spec := f.spec(h)
	spec.Digest = func(v item) string { return v.Payload }
	spec.StateTopic = f.in + ".state"
	return spec
}

// outputs decodes output records in order, per id.
func (f *fixture) outputs(t *testing.T) map[int64][]string {
	t.Helper()
	got := map[int64][]string{}
	for _, r := range f.readCommitted(t, f.out) {
		var v item
		if err := f.outCodec.Decode(r.Value, &v); err != nil {
			t.Fatalf("decode output: %v", err)
		}
		got[v.ID] = append(got[v.ID], v.Payload)
	}
	return got
}

func TestDigestDropsRepeatedContentAcrossBatchesAndOwners(t *testing.T) {
	f := newFixture(t)
	spec := f.digestSpec(PerRecord(echo))
	cfg := testConfig("")
	cfg.BatchMax = 7 // duplicates fall in the same batch and in later ones

	// 40 items, each sent twice in a row, and item 3 changed then changed back.
	var first []item
	for _, it := range items(0, 40) {
		first = append(first, it, it)
	}
	first = append(first, item{ID: 3, Payload: "new"}, item{ID: 3, Payload: "p3"})
	f.produce(t, first...)
	a := f.runner(t, spec, cfg)
	stopA := start(t, a)
	f.waitDrained(t, spec.Group, 30*time.Second)
	if err := stopA(); err != nil {
		t.Fatalf("Run a: %v", err)
	}
	if got, want := a.Counts(), (Counts{In: 82, Out: 42, Duplicates: 40}); got != want {
		t.Errorf("first owner counts = %+v, want %+v", got, want)
	}

	// A new owner knows nothing in memory: it must restore what a
	// committed, take item 5's changed content and drop every identical
	// re-send.
	second := items(0, 40)
	second[5].Payload = "changed"
	f.produce(t, second...)
	b := f.runner(t, spec, cfg)
	stopB := start(t, b)
	f.waitDrained(t, spec.Group, 30*time.Second)
	if err := stopB(); err != nil {
		t.Fatalf("Run b: %v", err)
	}
	if got, want := b.Counts(), (Counts{In: 40, Out: 1, Duplicates: 39}); got != want {
		t.Errorf("second owner counts = %+v, want %+v", got, want)
	}

	got := f.outputs(t)
	for id := range int64(40) {
		want := []string{fmt.Sprintf("p%d!", id)}
		switch id {
		case 3:
			want = append(want, "new!", "p3!")
		case 5:
			want = append(want, "changed!")
		}
		if fmt.Sprint(got[id]) != fmt.Sprint(want) {
			t.Errorf("id %d outputs = %v, want %v", id, got[id], want)
		}
	}
	if len(got) != 40 {
		t.Errorf("outputs for %d ids, want 40", len(got))
	}
}

func TestDigestStateFollowsPartitionsThroughRebalances(t *testing.T) {
	f := newFixture(t)
	slow := PerRecord(func(ctx context.Context, m Message[item]) ([]Output[item], error) {
		if m.Value.ID%25 == 0 {
			time.Sleep(20 * time.Millisecond)
		}
		return echo(ctx, m)
	})
	spec := f.digestSpec(slow)
	const n = 1500
	f.produce(t, items(0, n)...)
	a := f.runner(t, spec, testConfig(""))
	stopA := start(t, a)
	waitCounts(t, a, 200)
	b := f.runner(t, spec, testConfig("")) // joins: rebalance
	stopB := start(t, b)
	f.produce(t, items(0, n)...) // every item again, identical
	waitCounts(t, b, 100)
	if err := stopA(); err != nil { // leaves: rebalance
		t.Fatalf("Run a: %v", err)
	}
	c := f.runner(t, spec, testConfig("")) // joins: rebalance
	stopC := start(t, c)
	f.produce(t, items(0, n)...) // and once more
	f.waitDrained(t, spec.Group, 90*time.Second)
	for _, stop := range []func() error{stopB, stopC} {
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
	got := f.outputs(t)
	for id := range int64(n) {
		if want := fmt.Sprintf("[p%d!]", id); fmt.Sprint(got[id]) != want {
			t.Fatalf("id %d outputs = %v, want %s: a re-send went through or an item was lost", id, got[id], want)
		}
	}
	var total Counts
	for _, r := range []*Runner[item, item]{a, b, c} {
		cs := r.Counts()
		total.In += cs.In
		total.Out += cs.Out
		total.Duplicates += cs.Duplicates
	}
	if want := (Counts{In: 3 * n, Out: n, Duplicates: 2 * n}); total != want {
		t.Errorf("members committed %+v in all, want %+v", total, want)
	}
}

func TestDigestNeedsPerRecordOutputs(t *testing.T) {
	f := newFixture(t)
	batch := func(_ context.Context, msgs []Message[item]) (Result[item], error) {
		return Result[item]{Outputs: []Output[item]{{Key: msgs[0].Key, Value: msgs[0].Value}}}, nil
	}
	f.produce(t, items(0, 1)...)
	err := f.runner(t, f.digestSpec(batch), testConfig("")).Run(t.Context())
	if err == nil || !contains([]string{err.Error()}, "PerRecord") {
		t.Fatalf("Run = %v, want an error naming PerRecord", err)
	}
}

func TestStateTopicMustMatchTheInputsPartitions(t *testing.T) {
	f := newFixture(t)
	state := f.in + ".state"
	wrong := kafka.Config{Brokers: f.kcfg.Brokers, Partitions: f.partitions + 1, ReplicationFactor: -1}
	if err := kafka.EnsureTopics(t.Context(), f.client, wrong, state); err != nil {
		t.Fatal(err)
	}
	err := f.runner(t, f.digestSpec(PerRecord(echo)), testConfig("")).Run(t.Context())
	if err == nil || !contains([]string{err.Error()}, "partitions") {
		t.Fatalf("Run = %v, want an error about the partition counts", err)
	}
}

// TestRunnerKeepsItsStateOnDiskInADirectoryOfItsOwn: the state lives in
// files under STAGE_STATE_DIR while the runner runs and is gone when it
// stops; a directory left by a runner that died is removed, a live one's
// is not.
func TestRunnerKeepsItsStateOnDiskInADirectoryOfItsOwn(t *testing.T) {
	f := newFixture(t)
	spec := f.digestSpec(PerRecord(echo))
	cfg := testConfig("")
	cfg.StateDir = t.TempDir()

	dead := filepath.Join(cfg.StateDir, "datamill-state-dead")
	if err := os.MkdirAll(dead, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"lock", "partition-0"} {
		if err := os.WriteFile(filepath.Join(dead, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	live, err := openStateDir(cfg.StateDir, zap.NewNop()) // another runner's, still running
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = live.remove() }()

	f.produce(t, items(0, 30)...)
	r := f.runner(t, spec, cfg)
	stop := start(t, r)
	f.waitDrained(t, spec.Group, 30*time.Second)

	if _, err := os.Stat(dead); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the dead runner's directory: Stat = %v, want it removed", err)
	}
	if _, err := os.Stat(live.path); err != nil {
		t.Errorf("the live runner's directory: %v, want it kept", err)
	}
	dirs, _ := filepath.Glob(filepath.Join(cfg.StateDir, stateDirPattern))
	var files []string
	for _, dir := range dirs {
		if dir != live.path {
			files, _ = filepath.Glob(filepath.Join(dir, "partition-*"))
		}
	}
	if len(dirs) != 2 || len(files) == 0 {
		t.Errorf("state directories %v with partition files %v; want the live one's and one of the runner's, with its partitions' files", dirs, files)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if dirs, _ := filepath.Glob(filepath.Join(cfg.StateDir, stateDirPattern)); len(dirs) != 1 || dirs[0] != live.path {
		t.Errorf("after the runner stopped: state directories %v, want only the live one's %s", dirs, live.path)
	}
	if got, want := r.Counts(), (Counts{In: 30, Out: 30}); got != want {
		t.Errorf("counts = %+v, want %+v", got, want)
	}
}

// BenchmarkDedupe reports what the dedupe state costs a record, keepNew
// then commit of 2,000-record batches (half of them repeats) against the
// state of a million keys, and the Go heap that state holds per key.
func BenchmarkDedupe(b *testing.B) {
	const keys, batch = 1_000_000, 2000
	d, err := newDedupe("state", kafka.Config{}, zap.NewNop(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = d.close() }()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	state, err := hashfile.Create(d.dir.file(0))
	if err != nil {
		b.Fatal(err)
	}
	d.parts[0] = state
	key := func(k int) []byte { return strconv.AppendInt(nil, int64(k), 10) }
	for k := range keys {
		if err := state.Put(d.hash(key(k)), maphash.String(d.seed, "same")); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / keys

	from := make([]*kgo.Record, batch)
	outs := make([]Output[string], batch)
	for i := range from {
		from[i] = &kgo.Record{Partition: 0}
	}
	next := 0
	b.ResetTimer()
	for b.Loop() {
		for i := range outs {
			k := next % keys
			next++
			v := "same" // a repeat: dropped
			if i%2 == 0 {
				v = strconv.Itoa(next) // new content: kept, then committed
			}
			outs[i] = Output[string]{Key: key(k), Value: v, from: i + 1}
		}
		_, _, _, c, err := keepNew(d, outs, from, func(v string) string { return v })
		if err != nil {
			b.Fatal(err)
		}
		d.commit(c)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/record")
	b.ReportMetric(heap, "heap-B/key")
}
