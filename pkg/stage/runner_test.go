package stage

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
)

func TestPoisonRecordsGoToDeadLettersWhileTheBatchGoesOn(t *testing.T) {
	f := newFixture(t)
	in := items(0, 60)
	in[7].Payload, in[33].Payload = "poison", "poison"
	f.produce(t, in...)
	garbage := []byte{0xde, 0xad, 0xbe, 0xef}
	f.produceRaw(t, "garbage", garbage)

	r := f.runner(t, f.spec(PerRecord(echo)), testConfig(""))
	stop := start(t, r)
	f.waitDrained(t, r.spec.Group, 30*time.Second)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	wantEchoed(t, f.decodeOutputs(t, f.readCommitted(t, f.out)), 60, map[int64]bool{7: true, 33: true})

	dead := f.readCommitted(t, f.dlq)
	if len(dead) != 3 {
		t.Fatalf("got %d dead letters, want 3", len(dead))
	}
	var garbageSeen int
	for _, d := range dead {
		h := headers(d)
		if h[HeaderStage] != "tester" || h[HeaderSourceTopic] != f.in || h[HeaderSourcePartition] == "" || h[HeaderSourceOffset] == "" {
			t.Errorf("dead letter headers = %v, want stage, source topic, partition and offset", h)
		}
		dl, err := decodeDeadLetter(f, d.Value)
		if err != nil {
			t.Fatalf("decode dead letter: %v", err)
		}
		if dl.SourceTopic != f.in || dl.Stage != "tester" || dl.Dataset != "items" {
			t.Errorf("envelope = %+v", dl)
		}
		if dl.Key != nil && string(*dl.Key) == "garbage" {
			garbageSeen++
			if !cmp.Equal(dl.Value, garbage) {
				t.Errorf("dead letter value = %x, want the original bytes %x", dl.Value, garbage)
			}
			if !contains(dl.Reasons, "decode") || !contains([]string{h[HeaderReason]}, "decode") {
				t.Errorf("reasons = %v / header %q, want a decode reason", dl.Reasons, h[HeaderReason])
			}
			continue
		}
		if !cmp.Equal(dl.Reasons, []string{"payload: poison", "id: cursed"}) {
			t.Errorf("reasons = %v, want both reasons of the rejection", dl.Reasons)
		}
		var orig item
		if err := f.inCodec.Decode(dl.Value, &orig); err != nil || orig.Payload != "poison" {
			t.Errorf("dead letter keeps %+v (%v), want the original poison record", orig, err)
		}
	}
	if garbageSeen != 1 {
		t.Errorf("saw the undecodable record %d times in the dead letters, want 1", garbageSeen)
	}
	if got, want := r.Counts(), (Counts{In: 61, Out: 58, DeadLettered: 3}); got != want {
		t.Errorf("counts = %+v, want %+v (in = out + dead letters)", got, want)
	}
	m := r.metrics
	for name, tc := range map[string]struct {
		got  float64
		want float64
	}{
		"records in":            {testutil.ToFloat64(m.in.WithLabelValues("tester", "items")), 61},
		"records out":           {testutil.ToFloat64(m.out.WithLabelValues("tester", "items")), 58},
		"dead-lettered payload": {testutil.ToFloat64(m.dead.WithLabelValues("tester", "items", "payload")), 2},
		"dead-lettered decode":  {testutil.ToFloat64(m.dead.WithLabelValues("tester", "items", "decode")), 1},
	} {
		if tc.got != tc.want {
			t.Errorf("metric %s = %v, want %v", name, tc.got, tc.want)
		}
	}
	if n := testutil.CollectAndCount(m.batchSeconds); n == 0 {
		t.Error("no batch latency observed")
	}
}

func TestTransientFailuresAreRetriedNeverDeadLettered(t *testing.T) {
	f := newFixture(t)
	f.produce(t, items(0, 40)...)
	var calls atomic.Int32
	var outage atomic.Bool
	outage.Store(true)
	h := PerRecord(func(ctx context.Context, m Message[item]) ([]Output[item], error) {
		calls.Add(1)
		if outage.Load() {
			return nil, errFlaky
		}
		return echo(ctx, m)
	})
	var readiness []bool
	var mu sync.Mutex
	spec := f.spec(h)
	spec.OnReady = func(ready bool, _ string) {
		mu.Lock()
		readiness = append(readiness, ready)
		mu.Unlock()
	}
	r := f.runner(t, spec, testConfig(""))
	stop := start(t, r)
	// Let the outage outlast the retries so the stage pauses and replays.
	deadline := time.Now().Add(20 * time.Second)
	for calls.Load() < int32(3*testConfig("").Retries) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	outage.Store(false)
	f.waitDrained(t, spec.Group, 30*time.Second)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	wantEchoed(t, f.decodeOutputs(t, f.readCommitted(t, f.out)), 40, nil)
	if dead := f.readCommitted(t, f.dlq); len(dead) != 0 {
		t.Errorf("a transient failure dead-lettered %d records", len(dead))
	}
	mu.Lock()
	defer mu.Unlock()
	if !contains(boolStrings(readiness), "false") || readiness[len(readiness)-1] != true {
		t.Errorf("readiness went %v, want not ready during the outage and ready again after", readiness)
	}
}

func boolStrings(bs []bool) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		if b {
			out[i] = "true"
		} else {
			out[i] = "false"
		}
	}
	return out
}

func TestRebalancesLoseAndDoubleNothing(t *testing.T) {
	f := newFixture(t)
	// A slow handler keeps batches in flight while members join and leave.
	slow := PerRecord(func(ctx context.Context, m Message[item]) ([]Output[item], error) {
		if m.Value.ID%25 == 0 {
			time.Sleep(20 * time.Millisecond)
		}
		return echo(ctx, m)
	})
	spec := f.spec(slow)
	const n = 3000
	f.produce(t, items(0, n/3)...)
	a := f.runner(t, spec, testConfig(""))
	stopA := start(t, a)
	waitCounts(t, a, 200)

	b := f.runner(t, spec, testConfig("")) // joins: rebalance
	stopB := start(t, b)
	f.produce(t, items(n/3, n/3)...)
	waitCounts(t, b, 100)

	if err := stopA(); err != nil { // leaves: rebalance
		t.Fatalf("Run a: %v", err)
	}
	c := f.runner(t, spec, testConfig("")) // joins: rebalance
	stopC := start(t, c)
	f.produce(t, items(2*n/3, n/3)...)
	f.waitDrained(t, spec.Group, 60*time.Second)
	for _, stop := range []func() error{stopB, stopC} {
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
	wantEchoed(t, f.decodeOutputs(t, f.readCommitted(t, f.out)), n, nil)
	total := a.Counts().In + b.Counts().In + c.Counts().In
	if total != n {
		t.Errorf("members committed %d inputs in all (a %d, b %d, c %d), want exactly %d", total, a.Counts().In, b.Counts().In, c.Counts().In, n)
	}
}

func waitCounts(t *testing.T, r *Runner[item, item], atLeast int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for r.Counts().In < atLeast {
		if time.Now().After(deadline) {
			t.Fatalf("runner committed %d inputs within 30 s, want at least %d", r.Counts().In, atLeast)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestShutdownFinishesAndCommitsTheBatchInFlight(t *testing.T) {
	f := newFixture(t)
	f.produce(t, items(0, 30)...)
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	h := func(ctx context.Context, batch []Message[item]) (Result[item], error) {
		once.Do(func() {
			close(entered)
			<-release
		})
		return PerRecord(echo)(ctx, batch)
	}
	cfg := testConfig("")
	cfg.BatchMax = 1000
	r := f.runner(t, f.spec(h), cfg)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no batch reached the handler")
	}
	cancel() // SIGTERM while the batch is in the handler
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after shutdown")
	}
	inFlight := r.Counts().In
	if inFlight == 0 {
		t.Fatal("the batch in flight was not committed at shutdown")
	}
	if committed := f.committedTotal(t, r.spec.Group, inFlight, 15*time.Second); committed != inFlight {
		t.Errorf("group committed %d offsets, want the %d records of the finished batch", committed, inFlight)
	}
	if got := len(f.readCommitted(t, f.out)); int64(got) != inFlight {
		t.Errorf("%d outputs committed, want %d", got, inFlight)
	}
}

func TestFloodWindow(t *testing.T) {
	w := floodWindow{size: 100, minRecords: 50, maxRate: 0.5}
	if w.exceeds(10, 10) {
		t.Error("below the minimum sample the stage must go on")
	}
	w.add(40, 0)
	if !w.exceeds(60, 60) {
		t.Error("60 dead of 100 must exceed 0.5")
	}
	if w.exceeds(60, 50) {
		t.Error("50 dead of 100 must not exceed 0.5")
	}
	for range 10 {
		w.add(100, 0)
	}
	if w.in > 200 {
		t.Errorf("window kept %d records, want about its size", w.in)
	}
}

func TestClassify(t *testing.T) {
	tests := map[string]struct {
		err  error
		want Class
	}{
		"reject":    {Reject("age: negative"), ClassPermanent},
		"wrapped":   {errors.Join(errors.New("ctx"), Permanent(errors.New("bad"))), ClassPermanent},
		"duplicate": {ErrDuplicate, ClassDuplicate},
		"network":   {errFlaky, ClassTransient},
	}
	for name, tc := range tests {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("%s: Classify(%v) = %v, want %v", name, tc.err, got, tc.want)
		}
	}
}

func TestConfigIsDocumented(t *testing.T) {
	testkit.Documented(t, Config{})
}

// No wait between a batch's retries is longer than STAGE_MAX_PAUSE, however
// large STAGE_RETRY_BACKOFF is.
func TestRetriesWaitNoLongerThanTheMaxPause(t *testing.T) {
	cfg := testConfig("i1")
	cfg.RetryBackoff, cfg.MaxPause = time.Hour, 10*time.Millisecond
	r, err := NewRunner(Spec[item, item]{
		Stage: "tester", Dataset: "items", Input: "in", Output: "out", DeadLetters: "dlq",
		Decoder: nopCodec{}, Encoder: nopCodec{}, DeadLetterEncoder: nopDeadLetters{}, Handler: PerRecord(echo),
	}, cfg, kafka.Config{}, zap.NewNop(), NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	calls := 0
	err = r.retry(ctx, func() error {
		if calls++; calls < cfg.Retries {
			return errFlaky
		}
		return nil
	})
	if err != nil || calls != cfg.Retries {
		t.Errorf("retry after %d calls = %v, want success at call %d, well within the test's 30 s", calls, err, cfg.Retries)
	}
}

type nopCodec struct{}

func (nopCodec) Decode([]byte, *item) error                       { return nil }
func (nopCodec) AppendEncode(dst []byte, _ *item) ([]byte, error) { return dst, nil }

type nopDeadLetters struct{}

func (nopDeadLetters) AppendEncode(dst []byte, _ *schemas.DeadLetter) ([]byte, error) {
	return dst, nil
}
