package stage

import (
	"context"
	"fmt"
	"hash/maphash"
	"runtime"
	"strconv"
	"testing"
	"time"

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

// BenchmarkDedupeStateMemory reports the heap the dedupe state takes per
// key, the cleaner's memory at a million users.
func BenchmarkDedupeStateMemory(b *testing.B) {
	const keys = 1_000_000
	d := newDedupe("state", kafka.Config{}, nil)
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		state := digests{}
		for k := range keys {
			state[d.hash(strconv.AppendInt(nil, int64(k), 10))] = maphash.String(d.seed, "0123456789abcdef")
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/keys, "B/key")
		runtime.KeepAlive(state)
	}
}
