package stage

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/datamill/datamill/pkg/testkit"
)

// readiness records what a runner last told Spec.OnReady.
type readiness struct {
	mu     sync.Mutex
	ready  bool
	reason string
}

func (s *readiness) set(ready bool, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ready, s.reason = ready, reason
}

func (s *readiness) get() (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready, s.reason
}

// launched is a runner running in the background.
type launched struct {
	cancel context.CancelFunc
	done   chan error
}

func launch(t *testing.T, r *Runner[item, item]) *launched {
	ctx, cancel := context.WithCancel(t.Context())
	l := &launched{cancel: cancel, done: make(chan error, 1)}
	go func() { l.done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-l.done
	})
	return l
}

// running fails the test when Run returned.
func (l *launched) running(t *testing.T) {
	t.Helper()
	select {
	case err := <-l.done:
		l.done <- err
		t.Fatalf("Run returned %v; the runner must stay up", err)
	default:
	}
}

// stop ends Run and returns its error.
func (l *launched) stop(t *testing.T) error {
	t.Helper()
	l.cancel()
	select {
	case err := <-l.done:
		l.done <- err
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("runner did not stop within 60 s of its context ending")
		return nil
	}
}

// eventually polls cond until it holds, failing after within.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// poison returns n items that echo rejects, with ids from first.
func poison(first, n int) []item {
	out := items(first, n)
	for i := range out {
		out[i].Payload = "poison"
	}
	return out
}

func skipRange(first, n int) map[int64]bool {
	skip := map[int64]bool{}
	for id := range n {
		skip[int64(first+id)] = true
	}
	return skip
}

func TestDeadLetterFloodIsAnAlertByDefault(t *testing.T) {
	f := newFixture(t)
	// Good records, then one request's worth of records the stage
	// rejects, then good ones again.
	f.produce(t, items(0, 100)...)
	f.produce(t, poison(100, 2000)...)

	cfg := testConfig("alert")
	cfg.BatchMax = 2000
	var ready readiness
	spec := f.spec(PerRecord(echo))
	spec.OnReady = ready.set
	core, logs := observer.New(zapcore.WarnLevel)
	r, err := NewRunner(spec, cfg, f.kcfg, zap.New(core), NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	run := launch(t, r)
	f.waitDrained(t, r.spec.Group, 60*time.Second)
	run.running(t)

	flood := func() float64 { return testutil.ToFloat64(r.metrics.flood.WithLabelValues("tester", "items")) }
	eventually(t, 10*time.Second, "the flood gauge shows the flood", func() bool { return flood() == 1 })
	if got := testutil.ToFloat64(r.metrics.floods.WithLabelValues("tester", "items")); got != 1 {
		t.Errorf("floods_total = %v, want 1", got)
	}
	if ok, reason := ready.get(); !ok || !strings.Contains(reason, "dead-letter flood") {
		t.Errorf("readiness = %v %q, want ready with the flood as its detail", ok, reason)
	}
	if dead := f.readCommitted(t, f.dlq); len(dead) != 2000 {
		t.Errorf("%d dead letters committed, want every one of the 2000 rejected records", len(dead))
	}

	// The stage goes on: later good records flow, and once they fill the
	// window the flood ends.
	f.produce(t, items(2100, 1500)...)
	f.waitDrained(t, r.spec.Group, 60*time.Second)
	run.running(t)
	eventually(t, 10*time.Second, "the flood gauge and the readiness detail clear when the rate drops", func() bool {
		ok, reason := ready.get()
		return flood() == 0 && ok && reason == ""
	})
	if err := run.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}

	wantEchoed(t, f.decodeOutputs(t, f.readCommitted(t, f.out)), 3600, skipRange(100, 2000))
	if got, want := r.Counts(), (Counts{In: 3600, Out: 1600, DeadLettered: 2000}); got != want {
		t.Errorf("counts = %+v, want %+v (in = out + dead letters)", got, want)
	}
	for msg, want := range map[string]int{
		"dead-letter flood; the stage goes on and commits its dead letters": 1,
		"dead-letter flood ended": 1,
	} {
		if got := logs.FilterMessage(msg).Len(); got != want {
			t.Errorf("logged %q %d times, want %d", msg, got, want)
		}
	}
}

func TestDeadLetterFloodStopWaitsForResume(t *testing.T) {
	f := newFixture(t)
	cfg := testConfig("")
	cfg.BatchMax = 2000
	cfg.DLQOnFlood = FloodStop
	spec := f.spec(PerRecord(echo))
	spec.ControlTopic = testkit.Name(t, "control")
	var ready1 readiness
	spec.OnReady = ready1.set

	if _, err := Resume(t.Context(), f.kcfg, f.log, spec.ControlTopic, spec.Group, "test"); !errors.Is(err, ErrNotStopped) {
		t.Fatalf("Resume before any stop = %v, want ErrNotStopped", err)
	}

	r1 := f.runner(t, spec, cfg)
	run1 := launch(t, r1)
	f.produce(t, items(0, 100)...)
	f.waitDrained(t, spec.Group, 60*time.Second)
	f.produce(t, poison(100, 2000)...)

	stopped := func(r *Runner[item, item]) func() bool {
		return func() bool { return testutil.ToFloat64(r.metrics.stopped.WithLabelValues("tester", "items")) == 1 }
	}
	eventually(t, 60*time.Second, "the runner stops on the flood", stopped(r1))
	run1.running(t)
	if ok, reason := ready1.get(); ok || !strings.Contains(reason, "datamill resume tester items") {
		t.Errorf("readiness while stopped = %v %q, want not ready, saying how to resume", ok, reason)
	}
	wantNothingOfTheFlood := func() {
		t.Helper()
		var committed int64
		for _, off := range f.committed(t, spec.Group) {
			committed += off
		}
		if committed != 100 {
			t.Errorf("group committed %d offsets, want the 100 before the flood", committed)
		}
		ends, err := f.admin.ListEndOffsets(t.Context(), f.dlq)
		if err != nil {
			t.Fatal(err)
		}
		ends.Each(func(o kadm.ListedOffset) {
			if o.Offset != 0 {
				t.Errorf("dead-letter partition %d holds %d records while stopped, want none", o.Partition, o.Offset)
			}
		})
	}
	wantNothingOfTheFlood()

	// A restarted process stays stopped.
	if err := run1.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	var ready2 readiness
	spec.OnReady = ready2.set
	r2 := f.runner(t, spec, cfg)
	run2 := launch(t, r2)
	eventually(t, 30*time.Second, "the restarted runner is stopped", stopped(r2))
	if ok, reason := ready2.get(); ok || !strings.Contains(reason, "datamill resume") {
		t.Errorf("readiness of the restarted runner = %v %q, want not ready, saying how to resume", ok, reason)
	}
	run2.running(t)
	wantNothingOfTheFlood()

	stop, err := Resume(t.Context(), f.kcfg, f.log, spec.ControlTopic, spec.Group, "test")
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	var flooded int64
	for _, end := range stop.Offsets {
		flooded += end
	}
	if !stop.Stopped || !strings.Contains(stop.Reason, "dead-lettered") || flooded <= 100 {
		t.Errorf("Resume lifted %+v, want the stop on the flood with its batch's offsets", stop)
	}
	if _, err := Resume(t.Context(), f.kcfg, f.log, spec.ControlTopic, spec.Group, "test"); !errors.Is(err, ErrNotStopped) {
		t.Errorf("a second Resume = %v, want ErrNotStopped", err)
	}

	// The resumed runner commits the flood to the dead-letter topic
	// instead of stopping on it again, and goes on.
	f.produce(t, items(2100, 50)...)
	f.waitDrained(t, spec.Group, 60*time.Second)
	run2.running(t)
	if stopped(r2)() {
		t.Error("the stopped gauge is still 1 after the resume")
	}
	if ok, _ := ready2.get(); !ok {
		t.Error("the resumed runner is not ready")
	}
	if err := run2.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	wantEchoed(t, f.decodeOutputs(t, f.readCommitted(t, f.out)), 2150, skipRange(100, 2000))
	if dead := f.readCommitted(t, f.dlq); len(dead) != 2000 {
		t.Errorf("%d dead letters committed, want the 2000 of the flood", len(dead))
	}
	c1, c2 := r1.Counts(), r2.Counts()
	if in, out, dead := c1.In+c2.In, c1.Out+c2.Out, c1.DeadLettered+c2.DeadLettered; in != 2150 || out != 150 || dead != 2000 {
		t.Errorf("counts in %d out %d dead %d, want 2150 = 150 + 2000", in, out, dead)
	}
}

func TestFloodConfig(t *testing.T) {
	tests := map[string]struct {
		onFlood string
		wantErr bool
	}{
		"alert":   {FloodAlert, false},
		"stop":    {FloodStop, false},
		"unknown": {"crash", true},
		"empty":   {"", true},
	}
	for name, tc := range tests {
		cfg := testConfig("x")
		cfg.DLQOnFlood = tc.onFlood
		if err := cfg.Validate(); (err != nil) != tc.wantErr {
			t.Errorf("%s: Validate with STAGE_DLQ_ON_FLOOD=%q = %v, want error %v", name, tc.onFlood, err, tc.wantErr)
		}
	}
}

func TestLetThrough(t *testing.T) {
	dead := func(at ...[2]int64) []deadLetter {
		var out []deadLetter
		for _, a := range at {
			out = append(out, deadLetter{rec: &kgo.Record{Partition: int32(a[0]), Offset: a[1]}})
		}
		return out
	}
	tests := map[string]struct {
		acked bool
		until map[int32]int64
		dead  []deadLetter
		want  bool
	}{
		"no resume":                 {false, nil, dead([2]int64{0, 1}), false},
		"resumed in this process":   {true, nil, dead([2]int64{0, 1}), true},
		"before the stop's offsets": {false, map[int32]int64{0: 10, 1: 5}, dead([2]int64{0, 9}, [2]int64{1, 4}), true},
		"at the stop's end":         {false, map[int32]int64{0: 10}, dead([2]int64{0, 10}), false},
		"another partition":         {false, map[int32]int64{0: 10}, dead([2]int64{2, 0}), false},
	}
	for name, tc := range tests {
		r := &Runner[item, item]{acked: tc.acked, ackedUntil: tc.until}
		if got := r.letThrough(tc.dead); got != tc.want {
			t.Errorf("%s: letThrough = %v, want %v", name, got, tc.want)
		}
	}
}

func TestEveryRunnerOfTheGroupStopsAndResumes(t *testing.T) {
	f := newFixture(t)
	cfg := testConfig("")
	cfg.DLQOnFlood = FloodStop
	spec := f.spec(PerRecord(echo))
	spec.ControlTopic = testkit.Name(t, "control")
	var ready readiness
	spec.OnReady = ready.set
	r := f.runner(t, spec, cfg)
	run := launch(t, r)
	f.produce(t, items(0, 10)...)
	f.waitDrained(t, spec.Group, 30*time.Second)

	// Another runner of the group stops on a flood while this one idles.
	other, err := openControl(t.Context(), f.kcfg, f.log, spec.ControlTopic, spec.Group)
	if err != nil {
		t.Fatal(err)
	}
	defer other.close()
	if err := other.write(t.Context(), Control{Stopped: true, Reason: "a flood elsewhere", Offsets: map[int32]int64{0: 1}, At: time.Now(), By: "other"}); err != nil {
		t.Fatal(err)
	}
	stopped := func() float64 { return testutil.ToFloat64(r.metrics.stopped.WithLabelValues("tester", "items")) }
	eventually(t, 30*time.Second, "the idle runner stops", func() bool { return stopped() == 1 })
	if ok, reason := ready.get(); ok || !strings.Contains(reason, "a flood elsewhere") {
		t.Errorf("readiness = %v %q, want not ready with the stop's reason", ok, reason)
	}
	f.produce(t, items(10, 10)...)
	if _, err := Resume(t.Context(), f.kcfg, f.log, spec.ControlTopic, spec.Group, "test"); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	f.waitDrained(t, spec.Group, 60*time.Second)
	run.running(t)
	if stopped() != 0 {
		t.Error("the stopped gauge is still 1 after the resume")
	}
	if err := run.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	wantEchoed(t, f.decodeOutputs(t, f.readCommitted(t, f.out)), 20, nil)
}
